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
  bot/shared_state.py, for `LINE_EVENT_CLAIM_SECONDS` while it is answered, then remembered
  `LINE_EVENT_REMEMBER_SECONDS`, 24 h); events in `standby` mode are skipped. Rasa's answer is
  kept there (for 10 claims) before it is sent: a replica that dies after Rasa answered leaves
  it to the one the redelivery reaches, which sends it rather than ask Rasa a turn it has taken.
- An event older than `LINE_EVENT_MAX_AGE_SECONDS` (its `timestamp`, 300 s) is not answered
  unless LINE marks it a redelivery (`deliveryContext.isRedelivery`), and none older than the
  remembered 24 h is: a signed body replayed later gets no answer (logged without ids).
- A resident sending more than `RATE_LIMIT_MESSAGES` per `RATE_LIMIT_SECONDS` is told once to
  wait (`too_many_messages`); further messages in that window are dropped. The rate limit, the
  intake and the hand-over to Rasa are the steps every channel shares (bot/channels/common.py);
  every system intent sent is in bot/channels/system_intents.py.
- Text typed by a resident is taken in by `guard.intake`: personal details are masked before
  Rasa sees, stores or logs anything, and when something was removed Rasa first gets
  `/personal_detail_removed` (the resident is told once per conversation); it is always text
  (bot/channels/guard.py); only postbacks the assistant
  signed for this resident, or the rich menu's own payloads, become intents
  (bot/channels/line_messages.py); any other postback is only text.
- Stickers, images, location and other non-text messages, and over-long text, get a polite text
  answer (`non_text_message` / `message_too_long`); `follow` gets the greeting.
- `unfollow` (the resident blocked or removed the account) becomes `/line_unfollowed`: the
  assistant ends the resident's notice subscriptions (issue 17) and nothing at all is sent to
  LINE for it (no reply, no push, no loading indicator: LINE would refuse them anyway).
- With `NOTICE_PUBLIC_KEY` set, every message Rasa gets carries the metadata
  `{"notice_recipient": <the LINE user id sealed to the notice sender's key>}`
  (bot/notice_seal.py): a subscription hands it to the consent service, and only the sender can
  open it. Sealing is randomised, so no raw id and no stable value enters the tracker.
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

from bot.channels.common import (
    LINE,
    MAX_TYPED_CHARACTERS,
    SharedStateChannel,
    add_health_route,
    admit,
    hand_to_rasa,
    intake_of,
    memo_token,
    rate_key,
    take_in,
    unmasked,
)
from bot.channels.line_api import LineApi
from bot.channels.line_messages import (
    accepted_postback,
    postback_key,
    sign_postback,
    signature_is_valid,
    to_line_messages,
    verify_postback,
)
from bot.channels.origins import split_origins
from bot.channels.system_intents import (
    GREET,
    LINE_UNFOLLOWED,
    MESSAGE_TOO_LONG,
    NON_TEXT_MESSAGE,
    system_message,
)
from bot.notice_seal import seal
from bot.privacy import Masked
from bot.pseudonym import pseudonym
from bot.settings import Settings, get_settings
from bot.shared_state import Claim, wait_for_claim
from bot.webchat.memo import PAYLOAD_KEY as MEMO_PAYLOAD
from bot.webchat.memo import is_memo

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 1_000_000
# LINE does not promise how long a reply token lives; past this, answer by push instead.
REPLY_TOKEN_SECONDS = 50.0
# An event's answer is kept in the shared state from the moment Rasa gave it until LINE has it: a
# replica that dies after Rasa answered (the conversation saved, a consent perhaps recorded) but
# before LINE had the answer leaves it to the replica the redelivery reaches, which sends it
# instead of asking Rasa again — Rasa, asked again, would answer a turn it has already taken. The
# key holds the event id and the resident's pseudonym; an answer never sent expires with the
# event's id (`LINE_EVENT_REMEMBER_SECONDS`), after which no redelivery is answered anyway.
ANSWER_PREFIX = "line-answer:"
# The system intents (bot/channels/system_intents.py) LINE's events become.
NON_TEXT = unmasked(system_message(NON_TEXT_MESSAGE))
TOO_LONG = unmasked(system_message(MESSAGE_TOO_LONG))
GREETING = unmasked(system_message(GREET))
UNFOLLOWED = unmasked(system_message(LINE_UNFOLLOWED))
# The metadata key of the sealed LINE user id (issue 17, actions/notices.py reads it).
NOTICE_RECIPIENT = "notice_recipient"


def _object(value: Any) -> Dict[str, Any]:
    return value if isinstance(value, dict) else {}


def event_input(
    event: Dict[str, Any], verify: Callable[[str], str | None] | None = None
) -> Masked | str | None:
    """What one webhook event asks Rasa to receive, before any masking.

    Args:
        event: One event of the webhook body.
        verify: As for `event_intake`.

    Returns:
        An intent (unmasked: our buttons' postbacks, non-text input), typed text still to be
        taken in by `guard.intake` (a str), or None for events the assistant does not answer.
    """
    kind = event.get("type")
    if kind == "message":
        message = _object(event.get("message"))
        if message.get("type") != "text":
            return NON_TEXT
        text = str(message.get("text") or "")
        if len(text) > MAX_TYPED_CHARACTERS:
            return TOO_LONG
        return text if text.strip() else NON_TEXT
    if kind == "postback":
        data = str(_object(event.get("postback")).get("data") or "")
        payload = accepted_postback(data, verify)
        if payload:
            return unmasked(payload)
        return data[:MAX_TYPED_CHARACTERS] if data.strip() else None
    if kind == "follow":
        return GREETING
    if kind == "unfollow":
        return UNFOLLOWED
    return None  # join, leave, and anything LINE adds later


def event_intake(
    event: Dict[str, Any], verify: Callable[[str], str | None] | None = None
) -> Masked | None:
    """What Rasa should receive for one webhook event, or None to ignore it.

    Args:
        event: One event of the webhook body.
        verify: Checks a postback's signature for the event's resident (see
            `line_messages.accepted_postback`); None accepts only the rich menu's payloads.

    Returns:
        Typed text taken in by `guard.intake` (personal details masked, never an intent) with
        the kinds of detail removed; an intent, unmasked, for postbacks of our buttons and for
        non-text input; or None for events the assistant does not answer.
    """
    taken = event_input(event, verify)
    return None if taken is None else intake_of(taken)


def event_text(
    event: Dict[str, Any], verify: Callable[[str], str | None] | None = None
) -> str | None:
    """The text of `event_intake` alone (the masked text or the intent), or None."""
    taken = event_intake(event, verify)
    return None if taken is None else taken.text


def event_age(event: Dict[str, Any], now: float | None = None) -> float | None:
    """Seconds since LINE sent the event (its `timestamp`, in ms), or None without one."""
    sent_at = event.get("timestamp")
    if isinstance(sent_at, bool) or not isinstance(sent_at, (int, float)):
        return None
    return (time.time() if now is None else now) - sent_at / 1000


def is_too_old(event: Dict[str, Any], settings: Settings, now: float | None = None) -> bool:
    """Whether the event must not be answered for its age.

    Args:
        event: One event of the webhook body.
        settings: `LINE_EVENT_MAX_AGE_SECONDS` and `LINE_EVENT_REMEMBER_SECONDS`.
        now: The current Unix time (default: now).

    Returns:
        True without a timestamp, when older than the remembered event ids (a replay could not
        be recognised), or when older than the maximum age and not a redelivery.
    """
    age = event_age(event, now)
    if age is None or age > settings.line_event_remember_seconds:
        return True
    redelivery = _object(event.get("deliveryContext")).get("isRedelivery") is True
    return age > settings.line_event_max_age_seconds and not redelivery


class LineInput(SharedStateChannel, InputChannel):
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
        self._state = None
        key = settings.subject_pseudonym_key
        self._postback_key = postback_key(key.get_secret_value()) if key else None

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
        add_health_route(line_webhook)

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

    async def _claim(self, key: str | None) -> Claim | None:
        """Take the event for this replica.

        Returns:
            `Claim.NEW` (answer it here), `Claim.DONE` (answered elsewhere: skip it), or None
            when the event has no id or the shared state is unreachable (answer it: answering
            beats silence, but there is no shared state to keep its answer in).
        """
        if key is None:
            return None
        try:
            return await wait_for_claim(self.state(), key, self.settings.line_event_claim_seconds)
        except Exception as error:
            logger.error("LINE event claim failed: %s", type(error).__name__)
            return None

    async def _keep_answer(self, kept_key: str | None, messages: list[dict[str, Any]]) -> None:
        """Keep the event's answer for the replica a redelivery reaches, should this one die."""
        if kept_key is None:
            return
        seconds = self.settings.line_event_remember_seconds
        try:
            await self.state().keep(kept_key, json.dumps(messages), seconds)
        except Exception as error:  # the answer still goes out; only a fail-over would lose it
            logger.error("LINE answer not kept: %s", type(error).__name__)

    async def _kept_answer(self, kept_key: str | None) -> list[dict[str, Any]] | None:
        """The answer Rasa gave this event on a replica that died before sending it, if any."""
        if kept_key is None:
            return None
        try:
            raw = await self.state().kept(kept_key)
        except Exception as error:  # shared state unreachable: ask Rasa, as before
            logger.error("LINE kept answer not read: %s", type(error).__name__)
            return None
        if raw is None:
            return None
        try:
            messages = json.loads(raw)
        except ValueError:  # not what this channel keeps: ask Rasa rather than fail the event
            logger.error("LINE kept answer unreadable")
            return None
        if isinstance(messages, list) and all(isinstance(m, dict) for m in messages):
            return messages
        return None

    async def _settle(self, key: str | None, kept_key: str | None, answered: bool) -> None:
        if key is None:
            return
        try:
            if answered:
                await self.state().finish(key, self.settings.line_event_remember_seconds)
                if kept_key is not None:  # LINE has it: no copy of the answer stays behind
                    await self.state().forget(kept_key)
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

    def _signer(self, sender: str) -> Callable[[str], str] | None:
        key = self._postback_key
        return None if key is None else lambda payload: sign_postback(key, sender, payload)

    def _verifier(self, sender: str) -> Callable[[str], str | None] | None:
        key = self._postback_key
        return None if key is None else lambda data: verify_postback(key, sender, data)

    async def _handle(
        self, event: Dict[str, Any], on_new_message: Callable[[UserMessage], Awaitable[Any]]
    ) -> bool:
        kind = str(event.get("type"))[:40]
        source = _object(event.get("source"))
        user_id = source.get("userId")
        if source.get("type") != "user" or not isinstance(user_id, str):
            logger.info("LINE event ignored: %s", kind)
            return True
        try:
            sender = pseudonym(self.settings, LINE, user_id)
        except RuntimeError as error:
            logger.error("LINE event failed: %s", type(error).__name__)
            return False
        taken = event_input(event, self._verifier(sender))
        if taken is None:
            logger.info("LINE event ignored: %s", kind)
            return True
        if is_too_old(event, self.settings):
            logger.warning("LINE event refused: too old and not a redelivery (%s)", kind)
            return True
        event_id = event.get("webhookEventId")
        key = event_id if isinstance(event_id, str) and event_id else None
        claim = await self._claim(key)
        if claim is Claim.DONE:
            logger.info("LINE event skipped: already answered")
            return True
        # The answer is kept under the event and the resident together, and only while this
        # replica holds the event's claim (with the shared state unreachable, it is not tried).
        kept_key = f"{ANSWER_PREFIX}{key}:{sender}" if claim is Claim.NEW else None
        answered = False
        try:
            silent = kind == "unfollow"  # LINE takes no message for a resident who left
            kept = await self._kept_answer(kept_key)
            if kept is not None:  # Rasa answered it on a replica that died before sending
                logger.info("LINE event answered from the kept answer")
                await self._answer(event, user_id, sender, kept)
                answered = True
                return True
            # An unfollow ends the resident's notice subscriptions: never held back by the limit.
            # Typed text is masked only once the rate limit let it through, off the event loop.
            admission = await admit(
                self.state,
                self.settings,
                None if silent else rate_key(LINE, sender),
                lambda: take_in(taken),
            )
            if admission.over_limit:
                logger.info("LINE event dropped: over the rate limit")
                answered = True
                return True
            if not admission.texts:
                logger.info("LINE event ignored: %s", kind)
                answered = True
                return True
            if not silent:
                await self.api().show_loading(user_id)
            collector = CollectingOutputChannel()  # one reply: the removal notice, then the answer
            await hand_to_rasa(
                on_new_message,
                admission.texts,
                collector,
                sender,
                self.name(),
                lambda: self._metadata(user_id),  # sealed afresh for each message
            )
            if not silent:
                messages = await self._memo_links(collector.messages)
                await self._keep_answer(kept_key, messages)
                await self._answer(event, user_id, sender, messages)
            answered = True
        except Exception as error:  # one bad event must not stop the others
            logger.error("LINE event failed: %s", type(error).__name__)
        finally:
            await self._settle(key, kept_key, answered)
        return answered

    def _metadata(self, user_id: str) -> Dict[str, Any] | None:
        """The message's metadata: the sealed LINE user id when `NOTICE_PUBLIC_KEY` is set.

        Args:
            user_id: The LINE user id (sealed here, never stored or logged in the clear).

        Returns:
            `{"notice_recipient": sealed}`, or None without a notice key.
        """
        key = self.settings.notice_public_key
        if not key:
            return None
        return {NOTICE_RECIPIENT: seal(user_id, key)}

    async def _memo_links(self, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Keep each consultation memo (issue 18) and put its print page's link beside it.

        The page is the web chat's (`/webhooks/socketio/memo/<token>`), at the first origin of
        `WEBCHAT_ALLOWED_ORIGINS`; with none, the Flex memo goes without a link.
        """
        origins = split_origins(self.settings.webchat_allowed_origins)
        for message in messages:
            custom = message.get("custom")
            if not isinstance(custom, dict) or not is_memo(custom.get(MEMO_PAYLOAD)):
                continue
            if not origins or not origins[0].startswith(("https://", "http://")):
                continue
            token = await memo_token(self.state, lambda: self.settings, custom[MEMO_PAYLOAD])
            if token is None:  # the memo still goes out, without its link
                continue
            custom["doctor_memo_url"] = f"{origins[0].rstrip('/')}/webhooks/socketio/memo/{token}"
        return messages

    async def _answer(
        self,
        event: Dict[str, Any],
        user_id: str,
        sender: str,
        messages: list[dict[str, Any]],
    ) -> None:
        batches = to_line_messages(messages, self._signer(sender))
        if not batches:
            return
        token = event.get("replyToken")
        first, rest = batches[0], batches[1:]
        age = event_age(event)  # a redelivered event's reply token may be stale
        fresh = age is not None and age < REPLY_TOKEN_SECONDS
        if not (isinstance(token, str) and fresh and await self.api().reply(token, first)):
            await self.api().push(user_id, first)
        for batch in rest:
            await self.api().push(user_id, batch)
