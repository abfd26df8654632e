"""The consultation memo for the city counter (相談メモ, issue 18): the same page, for `/staff`.

Residents without a printer get the memo printed at the city counter. The staff console
(`backend/`, its own environment) may not import the Rasa side, so it asks this endpoint over
HTTP, as it asks `POST /model/parse` (STAFF_RASA_URL, RASA_API_TOKEN), and serves the page it
gets back:

- `GET /webhooks/socketio/counter/memo/<offer_id>[?plain=1][&furigana=1]`, with
  `Authorization: Bearer <RASA_API_TOKEN>`: the print page of the memo of that level-2 offer,
  made by `actions.memo.offer_memo` — the very function `action_doctor_memo` makes the chat's
  memo with (offer from the consent service's `/v1/offers/{id}`, terms in force, wording of the
  loaded model's domain) — and rendered by `render_memo`, the chat page's template.

Answers: 200 the page; 401 without the token or with a wrong one; 403 when RASA_API_TOKEN is
not set here or is too weak (the endpoint is closed); 404 for an unknown offer or one without
level-2 data; 404 for any request that came through the public proxy (nginx sets `X-Real-IP` on
everything it passes, and the console reaches a replica directly on the internal network), so
the token is never tried from the internet; 503 when no model is loaded or the consent service
cannot be reached.

Nothing here touches a conversation: no tracker is read or written, no message is handed to
Rasa, so no event reaches the event broker or the console's analytics. The memo holds nothing
about any resident (there is none).

Why `bot/` imports `actions/` here (the one place it does): the builder, the offer facts and the
consent service's one client live in `actions/` and need nothing of the action server but its
code, which the Rasa server runs in the same environment (`.venv`); importing them keeps one
copy of each, so the counter's memo cannot drift from the chat's. `actions/` never imports
`bot.webchat`, so there is no cycle.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from typing import Any, Dict

from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from actions import consent_client
from actions.consent_client import ConsentRefused, ConsentServiceUnavailable
from actions.memo import city_today, offer_memo
from bot.settings import get_settings
from bot.startup import strong_token
from bot.webchat.memo import render_memo

logger = logging.getLogger(__name__)

ROUTE = "/counter/memo/<offer_id:str>"
HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "X-Robots-Tag": "noindex",
}


def _refusal(status: int, reason: str) -> HTTPResponse:
    return response.json({"reason": reason}, status=status, headers=HEADERS)


def authorised(request: Request) -> HTTPResponse | None:
    """Check the counter's call: None when it may be answered, else the refusal to send.

    Args:
        request: The call.

    Returns:
        None, or 404 (came through the public proxy), 403 (no strong RASA_API_TOKEN here:
        closed) or 401 (token missing or wrong).
    """
    if request.headers.get("x-real-ip"):  # through nginx's public listener: not served there
        return _refusal(404, "not_found")
    configured = get_settings().rasa_api_token
    expected = configured.get_secret_value() if configured is not None else ""
    if not strong_token(expected):
        return _refusal(403, "counter_memo_closed")
    scheme, _, given = str(request.headers.get("authorization") or "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.encode(), expected.encode()):
        return _refusal(401, "unauthorized")
    return None


def loaded_domain(request: Request) -> Dict[str, Any] | None:
    """The loaded model's domain, as the action server receives it (None before a model)."""
    agent = getattr(getattr(request.app, "ctx", None), "agent", None)
    domain = getattr(agent, "domain", None)
    return domain.as_dict() if domain is not None else None


def add_counter_memo_route(blueprint: Blueprint) -> None:
    """Serve the counter's memo page from the web chat's blueprint (`/webhooks/socketio`).

    Args:
        blueprint: The web chat channel's blueprint.
    """

    @blueprint.route(ROUTE, methods=["GET"])  # type: ignore[misc]
    async def counter_memo(request: Request, offer_id: str) -> HTTPResponse:
        refused = authorised(request)
        if refused is not None:
            return refused
        if not consent_client.valid_offer_id(offer_id):
            return _refusal(404, "unknown_offer")
        domain = loaded_domain(request)
        if domain is None:
            return _refusal(503, "no_model")
        plain = request.args.get("plain") == "1"
        client = consent_client.get_client()
        try:
            # The client blocks (requests, with retries): in a thread, never on the loop.
            memo = await asyncio.to_thread(
                offer_memo, domain, client, offer_id, city_today(), plain
            )
        except (ConsentServiceUnavailable, ConsentRefused) as error:
            logger.error("Counter memo not made: %s", type(error).__name__)
            return _refusal(503, "consent_service_unavailable")
        if memo is None:
            return _refusal(404, "unknown_offer")
        with_furigana = request.args.get("furigana") == "1"
        return response.html(render_memo(memo, with_furigana), headers=HEADERS)
