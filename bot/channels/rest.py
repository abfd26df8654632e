"""Rasa's REST channel (`make run`, the tests, the benchmark), refusing malformed bodies.

Rasa's own `rest` channel answers a body that is not a JSON object, or whose `sender` or
`message` is not text, with a 500 and a stack trace. This one answers 400 before Rasa sees it,
and 413 for a message over `MAX_MESSAGE_CHARACTERS`. It is a development and integration channel:
it passes `/intent` text through as Rasa does, so the production profile does not serve it
(credentials.prod.yml) — residents reach the assistant only through LINE and the web chat.

Ordinary text is taken in as in the other channels (`guard.intake`, issue 19): personal details
are masked before Rasa sees, stores or logs the message (Rasa's own error logs of the message
included), and `/personal_detail_removed` goes first when something was removed. Text starting
with "/" (after Rasa's strip) is an intent here, as in Rasa's channel: the intent passes, but
whatever text it carries is masked too (`mask_intent_message`): each entity value, read with
Rasa's own pattern and JSON as Rasa reads it, and anything Rasa could not read as an entity.
"""

from __future__ import annotations

import asyncio
import json
import re
from contextvars import ContextVar
from typing import Any, Awaitable, Callable, Dict

from rasa.core.channels.channel import InputChannel, UserMessage
from rasa.core.channels.rest import RestInput as RasaRestInput
from rasa.shared.constants import INTENT_MESSAGE_PREFIX
from rasa.shared.core.training_data.story_reader.yaml_story_reader import YAMLStoryReader
from rasa.shared.nlu.constants import ENTITIES, INTENT_NAME_KEY
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot.channels.common import hand_to_rasa
from bot.channels.guard import removal_notice
from bot.privacy import DetailKind, Masked, mask_personal

MAX_MESSAGE_CHARACTERS = 5000
MAX_SENDER_CHARACTERS = 200
# The kinds of detail masked out of the message this request is handling: set where Rasa's
# handler reads the message (`_extract_message`), read where it hands the message on, both in
# the request's own task, so no request sees another's.
_REMOVED: ContextVar[frozenset[DetailKind]] = ContextVar("rest_removed", default=frozenset())


_IDENTIFIER = re.compile(r"[A-Za-z0-9_\-.]+")


# The assistant's own ids in its button payloads: a consent id (canonical lower-case UUID) and a
# catalogue id (offer, item). They are never personal and must reach the actions whole.
_OWN_ID = re.compile(
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[a-z][a-z0-9_]{0,63}"
)


def _mask_value(value: Any, kinds: set[DetailKind]) -> Any:
    """An entity value with the text in it masked (strings, and strings in lists or objects)."""
    if isinstance(value, str) and _OWN_ID.fullmatch(value):
        return value
    if isinstance(value, str):
        masked = mask_personal(value)
        kinds.update(masked.kinds)
        return masked.text
    if isinstance(value, list):
        return [_mask_value(item, kinds) for item in value]
    if isinstance(value, dict):
        return {key: _mask_value(item, kinds) for key, item in value.items()}
    return value


def mask_intent_message(text: str) -> Masked:
    """An "/intent{entities}" message with the text it carries masked, the intent kept.

    Read with Rasa's own pattern (`YAMLStoryReader`): the intent name stays when it is one
    (letters, digits, "_", "-", "."), each entity value of the JSON object is masked, and what
    Rasa would not read as an intent or entities (a name that is not one, text after the object,
    an object that is not JSON) is masked as text.

    Args:
        text: The message, starting with "/" after Rasa's strip.

    Returns:
        The message to hand Rasa and the kinds of detail removed.
    """
    stripped = text.strip()
    match = YAMLStoryReader._regex_message_pattern().match(stripped)
    if match is None:
        return mask_personal(text)
    kinds: set[DetailKind] = set()

    def as_text(part: str) -> str:
        masked = mask_personal(part)
        kinds.update(masked.kinds)
        return masked.text

    name = match.group(INTENT_NAME_KEY)
    if not _IDENTIFIER.fullmatch(name.strip()):
        name = as_text(name)
    entities = match.group(ENTITIES) or ""
    if entities:
        try:
            parsed = json.loads(entities)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            entities = json.dumps(_mask_value(parsed, kinds), ensure_ascii=False)
        else:
            entities = as_text(entities)
    confidence = match.group("confidence") or ""
    rest = as_text(match.group("rest") or "")
    return Masked(f"{INTENT_MESSAGE_PREFIX}{name}{confidence}{entities}{rest}", frozenset(kinds))


def taken_in(text: str) -> Masked:
    """A typed message as Rasa should receive it.

    Args:
        text: The body's `message`.

    Returns:
        An "/intent" with the values it carries masked (`mask_intent_message`), else the text
        masked (`mask_personal`), with the kinds of detail removed.
    """
    if text.strip().startswith(INTENT_MESSAGE_PREFIX):
        return mask_intent_message(text)
    return mask_personal(text)


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

    def _extract_message(self, req: Request) -> str | None:
        """The message Rasa handles: ordinary text masked, an "/intent" with its values masked.

        The masking was done off the event loop by the body check (`taken_in`); it is done here
        only for a request that did not pass through it.
        """
        text: Any = super()._extract_message(req)
        _REMOVED.set(frozenset())
        if not isinstance(text, str):  # the body check has refused it already
            return None
        masked = getattr(req.ctx, "taken_in", None)
        if not isinstance(masked, Masked):
            masked = taken_in(text)
        _REMOVED.set(masked.kinds)
        return masked.text

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        """Rasa's REST routes, each POST body checked first, each message taken in."""

        async def taking_in(message: UserMessage) -> Any:
            notice = removal_notice(_REMOVED.get())
            _REMOVED.set(frozenset())
            if notice is not None:
                await hand_to_rasa(
                    on_new_message,
                    [notice],
                    message.output_channel,
                    message.sender_id,
                    message.input_channel,
                    lambda: message.metadata,
                )
            return await on_new_message(message)

        blueprint: Blueprint = super().blueprint(taking_in)

        @blueprint.middleware("request")  # type: ignore[misc]
        async def check_body(request: Request) -> HTTPResponse | None:
            if request.method != "POST":
                return None
            problem = body_problem(request.body)
            if problem is None:  # masked in a worker thread: long text never stalls the loop
                message = json.loads(request.body).get("message")
                request.ctx.taken_in = await asyncio.to_thread(taken_in, message)
                return None
            status, reason = problem
            return response.json({"reason": reason}, status=status)

        return blueprint
