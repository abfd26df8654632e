"""Rasa's REST channel (`make run`, the tests, the benchmark), refusing malformed bodies.

Rasa's own `rest` channel answers a body that is not a JSON object, or whose `sender` or
`message` is not text, with a 500 and a stack trace. This one answers 400 before Rasa sees it,
and 413 for a message over `MAX_MESSAGE_CHARACTERS`. It is a development and integration channel:
it passes `/intent` text through as Rasa does, so the production profile does not serve it
(credentials.prod.yml) — residents reach the assistant only through LINE and the web chat.
"""

from __future__ import annotations

import json
from typing import Any, Awaitable, Callable, Dict

from rasa.core.channels.channel import InputChannel, UserMessage
from rasa.core.channels.rest import RestInput as RasaRestInput
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

MAX_MESSAGE_CHARACTERS = 5000
MAX_SENDER_CHARACTERS = 200


def body_problem(raw: bytes) -> tuple[int, str] | None:
    """Why a webhook body cannot be handled, as (status, reason), or None if it can."""
    try:
        body = json.loads(raw or b"")
    except (ValueError, UnicodeDecodeError):
        return 400, "malformed_body"
    if not isinstance(body, dict):
        return 400, "malformed_body"
    sender, message = body.get("sender", "default"), body.get("message")
    if not isinstance(sender, str) or not sender or len(sender) > MAX_SENDER_CHARACTERS:
        return 400, "invalid_sender"
    if not isinstance(message, str):
        return 400, "invalid_message"
    if len(message) > MAX_MESSAGE_CHARACTERS:
        return 413, "message_too_long"
    if not isinstance(body.get("input_channel", ""), str) or not isinstance(
        body.get("metadata", {}), dict
    ):
        return 400, "malformed_body"
    return None


class RestInput(RasaRestInput):
    """Rasa's REST channel behind a check of the body."""

    @classmethod
    def from_credentials(cls, credentials: Dict[str, Any] | None) -> InputChannel:
        """The channel takes no credentials."""
        return cls()

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        """Rasa's REST routes, each POST body checked first."""
        blueprint: Blueprint = super().blueprint(on_new_message)

        @blueprint.middleware("request")  # type: ignore[misc]
        async def check_body(request: Request) -> HTTPResponse | None:
            if request.method != "POST":
                return None
            problem = body_problem(request.body)
            if problem is None:
                return None
            status, reason = problem
            return response.json({"reason": reason}, status=status)

        return blueprint
