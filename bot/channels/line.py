"""LINE channel: the city's LINE official account talking to the assistant.

Configure it in `credentials.yml` as `bot.channels.line.LineInput:`; secrets come from settings
(`LINE_CHANNEL_SECRET`, `LINE_CHANNEL_ACCESS_TOKEN`, `LINE_API_BASE_URL`). The webhook URL is
`https://<host>/webhooks/line/webhook` (docs/line.md).

- The `X-Line-Signature` is checked on the raw body, in constant time, before anything is parsed;
  a missing or wrong one gets 401 and only the fact is logged.
- Events are answered before the webhook is acknowledged (within `LINE_ACK_WITHIN_SECONDS`, then
  the rest goes on in the background), so a replica that dies mid-answer leaves the webhook
  unacknowledged and nginx or LINE's redelivery brings it to another replica.
- Each event is answered once across replicas (`webhookEventId` claimed in the shared state,
  bot/shared_state.py); events in `standby` mode are skipped.
- A resident sending more than `RATE_LIMIT_MESSAGES` per `RATE_LIMIT_SECONDS` is told once to
  wait (`too_many_messages`); further messages in that window are dropped.
- Text typed by a resident is always text (a leading "/" is made full-width); only postbacks
  carrying the assistant's own button payloads become intents.
- Stickers, images, location and other non-text messages, and over-long text, get a polite text
  answer (`non_text_message` / `message_too_long`); `follow` gets the greeting.
- Rasa sees a keyed pseudonym of the LINE user id, never the id itself; logs carry neither ids
  nor text.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any, Awaitable, Callable, Dict, Set

from rasa.core.channels.channel import CollectingOutputChannel, InputChannel, UserMessage
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot.channels.guard import typed_text
from bot.channels.line_api import LineApi
from bot.channels.line_messages import postback_payload, signature_is_valid, to_line_messages
from bot.pseudonym import pseudonym
from bot.settings import Settings, get_settings
from bot.shared_state import Claim, SharedState, rate_verdict, shared_state, wait_for_claim

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 1_000_000
MAX_TYPED_CHARACTERS = 1000
# LINE does not promise how long a reply token lives; past this, answer by push instead.
REPLY_TOKEN_SECONDS = 50.0
NON_TEXT = "/non_text_message"
TOO_LONG = "/message_too_long"
GREETING = "/greet"
TOO_MANY = "/too_many_messages"


def event_text(event: Dict[str, Any]) -> str | None:
    """What Rasa should receive for one webhook event, or None to ignore it.

    Args:
        event: One event of the webhook body.

    Returns:
        Text (typed text made safe), an intent for postbacks of our buttons and for non-text
        input, or None for events the assistant does not answer.
    """
    kind = event.get("type")
    if kind == "message":
        message = event.get("message") or {}
        if message.get("type") != "text":
            return NON_TEXT
        text = str(message.get("text") or "")
        if len(text) > MAX_TYPED_CHARACTERS:
            return TOO_LONG
        return typed_text(text) if text.strip() else NON_TEXT
    if kind == "postback":
        data = str((event.get("postback") or {}).get("data") or "")
        return postback_payload(data) or (typed_text(data[:MAX_TYPED_CHARACTERS]) or None)
    if kind == "follow":
        return GREETING
    return None  # unfollow, join, leave, and anything LINE adds later


class LineInput(InputChannel):
    """Rasa input channel for the LINE Messaging API."""

    @classmethod
    def name(cls) -> str:
        """The channel's name: webhooks are served under /webhooks/line/."""
        return "line"

    @classmethod
    def from_credentials(cls, credentials: Dict[str, Any] | None) -> InputChannel:
        """Build the channel from settings (credentials.yml needs no secrets)."""
        return cls(get_settings())

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._tasks: Set[asyncio.Task[bool]] = set()
        self._api: LineApi | None = None
        self._state: SharedState | None = None

    def state(self) -> SharedState:
        """The state shared with the other replicas (created in the running event loop)."""
        if self._state is None:
            self._state = shared_state(self.settings)
        return self._state

    def api(self) -> LineApi:
        """The Messaging API client (created in the running event loop)."""
        if self._api is None:
            token = self.settings.line_channel_access_token
            self._api = LineApi(
                self.settings.line_api_base_url, token.get_secret_value() if token else ""
            )
        return self._api

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        """The health route and the webhook."""
        line_webhook = Blueprint("line_webhook", __name__)

        @line_webhook.route("/", methods=["GET"])  # type: ignore[misc]
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @line_webhook.route("/webhook", methods=["POST"])  # type: ignore[misc]
        async def webhook(request: Request) -> HTTPResponse:
            body: bytes = request.body or b""
            if len(body) > MAX_BODY_BYTES:
                return response.json({"reason": "too_large"}, status=413)
            secret = self.settings.line_channel_secret
            if not signature_is_valid(
                secret.get_secret_value() if secret else "",
                body,
                request.headers.get("x-line-signature"),
            ):
                logger.warning("LINE webhook rejected: missing or invalid signature")
                return response.json({"reason": "invalid_signature"}, status=401)
            try:
                events = json.loads(body)["events"]
                if not isinstance(events, list):
                    raise TypeError
            except (ValueError, KeyError, TypeError):
                return response.json({"reason": "malformed_body"}, status=400)
            wanted = [e for e in events if isinstance(e, dict) and e.get("mode") != "standby"]
            if wanted:
                # One task per webhook, its events in order: LINE batches a resident's quick
                # successive messages, and they must reach Rasa in the order they were sent.
                task = asyncio.ensure_future(self._handle_all(wanted, on_new_message))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
                # Past the deadline it is acknowledged anyway; the answers follow by push.
                try:
                    answered = await asyncio.wait_for(
                        asyncio.shield(task), self.settings.line_ack_within_seconds
                    )
                except asyncio.TimeoutError:
                    answered = True
                if not answered:
                    # Not acknowledged, so that LINE delivers it again (redelivery on) or nginx
                    # tries the other replica; the events' claims were given up.
                    return response.json({"reason": "retry_later"}, status=503)
            return response.json({"status": "ok"})

        return line_webhook

    async def _claim(self, key: str | None) -> bool:
        """Take the event for this replica; False if it was (or is being) answered elsewhere."""
        if key is None:
            return True
        try:
            claim = await wait_for_claim(self.state(), key, self.settings.line_event_claim_seconds)
        except Exception as error:  # shared state unreachable: answering beats silence
            logger.error("LINE event claim failed: %s", type(error).__name__)
            return True
        return claim is Claim.NEW

    async def _settle(self, key: str | None, answered: bool) -> None:
        if key is None:
            return
        try:
            if answered:
                await self.state().finish(key)
            else:
                await self.state().release(key)
        except Exception as error:
            logger.error("LINE event state not saved: %s", type(error).__name__)

    async def _handle_all(
        self,
        events: list[dict[str, Any]],
        on_new_message: Callable[[UserMessage], Awaitable[Any]],
    ) -> bool:
        """Answer the events in order; False if one of them could not be answered."""
        results = [await self._handle(event, on_new_message) for event in events]
        return all(results)

    async def _handle(
        self, event: Dict[str, Any], on_new_message: Callable[[UserMessage], Awaitable[Any]]
    ) -> bool:
        source = event.get("source") or {}
        user_id = source.get("userId")
        text = event_text(event)
        if source.get("type") != "user" or not isinstance(user_id, str) or text is None:
            logger.info("LINE event ignored: %s", event.get("type"))
            return True
        event_id = event.get("webhookEventId")
        key = event_id if isinstance(event_id, str) and event_id else None
        if not await self._claim(key):
            logger.info("LINE event skipped: already answered")
            return True
        answered = False
        try:
            sender = pseudonym(self.settings, "line", user_id)
            verdict = await rate_verdict(self.state(), self.settings, f"line:{sender}")
            if verdict == "drop":
                logger.info("LINE event dropped: over the rate limit")
                answered = True
                return True
            if verdict == "tell":
                text = TOO_MANY
            await self.api().show_loading(user_id)
            collector = CollectingOutputChannel()
            await on_new_message(UserMessage(text, collector, sender, input_channel=self.name()))
            await self._answer(event, user_id, collector.messages)
            answered = True
        except Exception as error:  # one bad event must not stop the others
            logger.error("LINE event failed: %s", type(error).__name__)
        finally:
            await self._settle(key, answered)
        return answered

    async def _answer(
        self,
        event: Dict[str, Any],
        user_id: str,
        messages: list[dict[str, Any]],
    ) -> None:
        batches = to_line_messages(messages)
        if not batches:
            return
        token = event.get("replyToken")
        first, rest = batches[0], batches[1:]
        sent_at = event.get("timestamp")  # milliseconds; a redelivered event's token may be stale
        age = time.time() - sent_at / 1000 if isinstance(sent_at, (int, float)) else 0.0
        fresh = age < REPLY_TOKEN_SECONDS
        if not (isinstance(token, str) and fresh and await self.api().reply(token, first)):
            await self.api().push(user_id, first)
        for batch in rest:
            await self.api().push(user_id, batch)
