"""The resident web chat: Rasa's `socketio` channel, with a page and server-issued sessions.

It keeps the standard socket.io protocol of Rasa's own channel (path `/socket.io`, events
`user_uttered` and `bot_uttered`) so any socket.io client can talk to it, but every connection
must present a session token this server issued.

- `GET /webhooks/socketio/chat` serves the page (`bot/webchat/static/`), with a strict CSP (with
  `WEBCHAT_SECURE_ONLY`, production, its sockets may only be `wss:`).
- `POST /webhooks/socketio/session` issues a signed session token; the conversation is bound to
  that server-issued session, never to an id the browser invents. The page keeps the token for
  its tab, and on the device only if the resident ticks 「この端末で続きを保存する」 (then a
  resident who comes back days later continues the same conversation). One client address gets at
  most `WEBCHAT_SESSIONS_PER_CLIENT` new sessions per `WEBCHAT_SESSIONS_WINDOW_SECONDS` (429
  after that), counted across replicas; behind the reverse proxy the address is its `X-Real-IP`,
  believed only from `WEBCHAT_TRUSTED_PROXIES`.
- The socket (`/socket.io`) accepts connections only from the allowed origins
  (`WEBCHAT_ALLOWED_ORIGINS`; with `WEBCHAT_SECURE_ONLY` the channel refuses to start with an
  origin that is not https or is a loopback host) and only with a valid token.
- Typed text is taken in by `guard.intake`: personal details are masked before Rasa sees,
  stores or logs anything (`/personal_detail_removed` goes first when something was removed), and
  it is always text (bot/channels/guard.py); a button's payload is accepted only if the
  assistant offered that button to this session in its latest answer (remembered in the shared
  state for `WEBCHAT_OFFERED_BUTTONS_SECONDS`, forgotten when the next answer starts), or is one
  of the page's own buttons (`PAGE_PAYLOADS`: the plain-mode switch, issue 16) or a split
  answer's 「もっと詳しく」 button (`MORE_DETAILS_PAYLOAD`: it names a response, nothing else).
- A session sending more than `RATE_LIMIT_MESSAGES` per `RATE_LIMIT_SECONDS` (`session_start`
  included) is told once to wait (`too_many_messages`); further messages in that window are
  dropped. The count is shared by the replicas through bot/shared_state.py; the rate limit, the
  intake and the hand-over to Rasa are the steps every channel shares (bot/channels/common.py),
  every system intent sent is in bot/channels/system_intents.py.
- At most `WEBCHAT_MAX_IN_FLIGHT` messages are being answered at once by one replica; a message
  over that gets a `busy` event (the page asks the resident to wait and send again) and does not
  reach Rasa.
- Shared screens (issue #14): the page's 「会話を終わる」 sends `session_end`; the session goes on
  a revocation list in the shared state for the rest of its token's lifetime, so no replica
  accepts the token again (checked on every connect and every message; refused while the shared
  state cannot be reached), and every tab of it gets `session_ended`. A page that resumes a token
  kept from an earlier visit sends `session_resume` instead of `session_start`; Rasa then gets
  `/session_resumed` and asks who is at the screen before listing or withdrawing consents.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, Dict, List

from rasa.core.channels.channel import InputChannel, OutputChannel, UserMessage
from rasa.core.channels.socketio import SocketBlueprint
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse
from socketio import AsyncServer

from bot.channels.common import (
    MAX_TYPED_CHARACTERS,
    WEB,
    OnNewMessage,
    SharedStateChannel,
    add_health_route,
    admit,
    hand_to_rasa,
    memo_token,
    rate_key,
    take_in,
    unmasked,
)
from bot.channels.origins import insecure_origins, split_origins
from bot.channels.system_intents import GREET, MESSAGE_TOO_LONG, SESSION_RESUMED, system_message
from bot.privacy import Masked
from bot.settings import Settings, get_settings
from bot.shared_state import SharedState, within_budget
from bot.webchat.furigana import with_furigana
from bot.webchat.memo import PAYLOAD_KEY as MEMO_PAYLOAD
from bot.webchat.memo import add_memo_routes, is_memo
from bot.webchat.memo_counter import add_counter_memo_route

logger = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent.parent / "webchat" / "static"
STATIC_FILES = {
    "chat.js": "text/javascript; charset=utf-8",
    "chat.css": "text/css; charset=utf-8",
    "vendor/socket.io.min.js": "text/javascript; charset=utf-8",
}
SOCKET_PATH = "/socket.io"
MAX_TOKEN_CHARACTERS = 200
# The system intents (bot/channels/system_intents.py) the web chat sends.
GREETING = unmasked(system_message(GREET))
RESUMED = unmasked(system_message(SESSION_RESUMED))
TOO_LONG = unmasked(system_message(MESSAGE_TOO_LONG))
# Socket events the page receives.
ENDED = "session_ended"
BUSY = "busy"
# The page's own fixed buttons (issue 16: the plain-mode switch), accepted as intents whatever the
# last answer offered; entity-free, so they carry nothing the resident could not type.
PAGE_PAYLOADS = frozenset({"/plain_japanese_on", "/plain_japanese_off"})
# The 「もっと詳しく」 button of a split answer (issue 16), accepted even after a later answer
# replaced the offers (another tab, a second message in the same turn): it names one response and
# carries nothing else, and action_more_details shows a rest only for a split response of the
# domain (any other name gets "which topic?").
MORE_DETAILS_PAYLOAD = re.compile(r'/ask_more_details\{"more_of": "utter_[a-z0-9_]{1,60}"\}')
EXPIRES = re.compile(r"[0-9]{1,12}")
# A Host header the CSP may name: a DNS name or an IP literal, with an optional port.
SAFE_HOST = re.compile(r"(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


class SessionTokens:
    """Signed, expiring session tokens: `<session>.<expires>.<signature>`."""

    def __init__(self, secret: bytes, days: int) -> None:
        self._secret = secret
        self._seconds = days * 86_400

    def _sign(self, session: str, expires: int) -> str:
        return _b64(
            hmac.new(self._secret, f"{session}.{expires}".encode(), hashlib.sha256).digest()
        )

    def issue(self, now: float | None = None) -> tuple[str, int]:
        """A new session and its token.

        Returns:
            (token, expiry as a Unix time).
        """
        expires = int((now or time.time()) + self._seconds)
        session = secrets.token_hex(16)
        return f"{session}.{expires}.{self._sign(session, expires)}", expires

    def session_of(self, token: Any, now: float | None = None) -> str | None:
        """The session a token stands for, or None if it is forged, malformed or expired.

        Any text is refused rather than raising: the signature is compared as bytes (non-ASCII
        text would make `hmac.compare_digest` on str raise) and the expiry must be ASCII digits
        (`str.isdigit` accepts "²", which `int` refuses).
        """
        checked = self.check(token, now)
        return checked[0] if checked else None

    def check(self, token: Any, now: float | None = None) -> tuple[str, int] | None:
        """The session a token stands for and its expiry, or None (see `session_of`)."""
        if not isinstance(token, str) or len(token) > MAX_TOKEN_CHARACTERS:
            return None
        parts = token.split(".")
        if len(parts) != 3 or not EXPIRES.fullmatch(parts[1]):
            return None
        session, expires, signature = parts[0], int(parts[1]), parts[2]
        expected = self._sign(session, expires).encode("ascii")
        if not hmac.compare_digest(expected, signature.encode("utf-8", "replace")):
            return None
        return (session, expires) if expires > (now or time.time()) else None

    def client_key(self, address: str) -> str:
        """A keyed hash of a client address: what the shared state counts, never the address."""
        digest = hmac.new(self._secret, f"client:{address}".encode(), hashlib.sha256)
        return digest.hexdigest()[:32]


def tokens_from(settings: Settings) -> SessionTokens | None:
    """The token signer, from WEBCHAT_SESSION_SECRET or derived from SUBJECT_PSEUDONYM_KEY."""
    if settings.webchat_session_secret is not None:
        secret = settings.webchat_session_secret.get_secret_value().encode()
    elif settings.subject_pseudonym_key is not None:
        key = settings.subject_pseudonym_key.get_secret_value().encode()
        secret = hmac.new(key, b"webchat-session-tokens", hashlib.sha256).digest()
    else:
        return None
    return SessionTokens(secret, settings.webchat_session_days)


RETENTION_PLACEHOLDER = "{{RETENTION_DAYS}}"


def retention_days_text(settings: Settings) -> str:
    """The retention period as the page states it ("90", or "7.5" for a fraction of days).

    Args:
        settings: This process's settings (RETENTION_DAYS).

    Returns:
        The number of days, as the greeting states it too.
    """
    days = float(settings.retention_days)
    return str(int(days)) if days.is_integer() else str(days)


class WebChatOutput(OutputChannel):
    """Sends the assistant's answers to every tab of one session, remembering its buttons."""

    @classmethod
    def name(cls) -> str:
        """The channel's name."""
        return "socketio"

    def __init__(
        self, sio: AsyncServer, session: str, state: SharedState, offer_seconds: float
    ) -> None:
        self.sio, self.session, self.state = sio, session, state
        self.offer_seconds = offer_seconds

    async def _emit(self, message: Dict[str, Any]) -> None:
        # The readings of the text's kanji go along as data (issue 16: the page's furigana).
        await self.sio.emit("bot_uttered", with_furigana(message), room=self.session)

    async def send_text_message(self, recipient_id: str, text: str, **kwargs: Any) -> None:
        """Send text."""
        await self._emit({"text": text})

    async def send_text_with_buttons(
        self, recipient_id: str, text: str, buttons: List[Dict[str, Any]], **kwargs: Any
    ) -> None:
        """Send text with quick-reply buttons (their payloads are remembered as offered)."""
        replies = [
            {"title": str(b.get("title", "")), "payload": str(b.get("payload", ""))}
            for b in buttons
        ]
        try:
            await self.state.offer(
                self.session, [r["payload"] for r in replies], self.offer_seconds
            )
        except Exception as error:  # the buttons then only work as text
            logger.error("Offered buttons not saved: %s", type(error).__name__)
        await self._emit({"text": text, "quick_replies": replies})

    async def send_custom_json(
        self, recipient_id: str, json_message: Dict[str, Any], **kwargs: Any
    ) -> None:
        """A consultation memo (issue 18) becomes a link to its print page; nothing else is sent."""
        await send_memo_link(self, json_message.get(MEMO_PAYLOAD))

    async def send_image_url(self, recipient_id: str, image: str, **kwargs: Any) -> None:
        """Images are not used by this assistant; say nothing rather than break the page."""

    async def send_attachment(self, recipient_id: str, attachment: str, **kwargs: Any) -> None:
        """Attachments are not used by this assistant."""


async def send_memo_link(output: WebChatOutput, memo: Any) -> None:
    """Keep a memo in the shared state and send the page a link to its print page (issue 18).

    Args:
        output: The session's output channel.
        memo: The `doctor_memo` payload of action_doctor_memo (ignored unless well formed).
    """
    if not is_memo(memo):
        return
    token = await memo_token(lambda: output.state, get_settings, memo)
    if token is None:  # no link rather than a broken one
        return
    await output.sio.emit(
        "bot_uttered",
        {"memo_link": {"url": f"memo/{token}", "title": memo["link_label"]}},
        room=output.session,
    )


class WebChatInput(SharedStateChannel, InputChannel):
    """Rasa input channel serving the resident web chat."""

    @classmethod
    def name(cls) -> str:
        """Served under /webhooks/socketio/ (the contract's name for the web channel)."""
        return "socketio"

    @classmethod
    def from_credentials(cls, credentials: Dict[str, Any] | None) -> InputChannel:
        """Build the channel from settings."""
        return cls(get_settings())

    def __init__(self, settings: Settings, state: SharedState | None = None) -> None:
        """Prepare the channel.

        Args:
            settings: The settings.
            state: The state shared with the other replicas (default: from the settings,
                created in the running event loop).

        Raises:
            ValueError: With `WEBCHAT_SECURE_ONLY`, when no origin is allowed or one is not
                https or is a loopback host (production refuses to start).
        """
        self.settings = settings
        self.tokens = tokens_from(settings)
        self.origins = split_origins(settings.webchat_allowed_origins)
        if settings.webchat_secure_only:
            refused = insecure_origins(self.origins)
            if refused or not self.origins:
                raise ValueError(
                    "WEBCHAT_SECURE_ONLY: WEBCHAT_ALLOWED_ORIGINS must list only https origins "
                    f"of public hosts; refused: {', '.join(refused) or '(none set)'}"
                )
        self.trusted_proxies = set(split_origins(settings.webchat_trusted_proxies))
        self._state = state
        self._in_flight = 0

    def client_address(self, request: Request) -> str:
        """The client's address: the proxy's `X-Real-IP` if the peer is a trusted proxy."""
        peer = str(request.ip or "")
        forwarded = request.headers.get("x-real-ip")
        if forwarded and peer in self.trusted_proxies:
            return str(forwarded).strip()[:64]
        return peer

    async def _session_allowed(self, request: Request, tokens: SessionTokens) -> bool:
        """Count a new session for the client; False once it is over its budget."""
        client = tokens.client_key(self.client_address(request))
        return await within_budget(
            self.state(),
            f"websession:{client}",
            self.settings.webchat_sessions_per_client,
            self.settings.webchat_sessions_window_seconds,
        )

    async def _revoked(self, session: str) -> bool | None:
        """Whether the session was ended; None while the shared state cannot say."""
        try:
            return await self.state().is_revoked(session)
        except Exception as error:
            logger.error("Session revocation list unavailable: %s", type(error).__name__)
            return None

    async def _live_session(self, sio: AsyncServer, sid: str) -> str | None:
        """The socket's session, or None if it has none, was ended or cannot be checked.

        An ended session's socket is told `session_ended` and closed; while the revocation list
        cannot be read the message is refused with `busy` (a possibly ended session is not used).
        """
        session = (await sio.get_session(sid)).get("session")
        if not session:
            return None
        revoked = await self._revoked(session)
        if revoked is None:
            await sio.emit(BUSY, {}, to=sid)
            return None
        if revoked:
            logger.info("Web chat message refused: the session was ended")
            await sio.emit(ENDED, {}, to=sid)
            await sio.disconnect(sid)
            return None
        return str(session)

    async def _end_session(self, sio: AsyncServer, sid: str) -> bool:
        """End the socket's session on every replica: revoke it until its token expires."""
        saved = await sio.get_session(sid)
        session, expires = saved.get("session"), saved.get("expires")
        if not session or not isinstance(expires, int):
            return False
        try:
            await self.state().revoke(session, max(1.0, expires - time.time() + 60))
        except Exception as error:
            logger.error("Web chat session not revoked: %s", type(error).__name__)
            return False
        logger.info("Web chat session ended by the resident")
        await sio.emit(ENDED, {}, room=session)
        return True

    async def _was_offered(self, session: str, payload: str) -> bool:
        try:
            return await self.state().was_offered(session, payload)
        except Exception as error:  # unknown: the payload is taken as text
            logger.error("Offered buttons unavailable: %s", type(error).__name__)
            return False

    async def _intake_of(self, session: str, data: Dict[str, Any]) -> Masked | None:
        """What Rasa receives for a `user_uttered` event, or None to ignore it.

        A payload the assistant offered to this session is its intent, unmasked; anything else
        is typed text, taken in by `guard.intake` (personal details masked, never an intent).
        """
        payload, message = data.get("payload"), data.get("message")
        if isinstance(payload, str) and payload:
            if len(payload) > MAX_TYPED_CHARACTERS:
                return TOO_LONG
            if (
                payload in PAGE_PAYLOADS
                or MORE_DETAILS_PAYLOAD.fullmatch(payload)
                or await self._was_offered(session, payload)
            ):
                return unmasked(payload)
            return await take_in(payload)  # Sudachi: off the event loop
        if isinstance(message, str) and message.strip():
            if len(message) > MAX_TYPED_CHARACTERS:
                return TOO_LONG
            return await take_in(message)
        return None

    @staticmethod
    def _has_input(data: Dict[str, Any]) -> bool:
        """Whether a `user_uttered` event carries anything to answer (checked before masking)."""
        payload, message = data.get("payload"), data.get("message")
        return (isinstance(payload, str) and bool(payload)) or (
            isinstance(message, str) and bool(message.strip())
        )

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        """The page, its files, the session endpoint and the socket."""
        sio = AsyncServer(async_mode="sanic", cors_allowed_origins=self.origins)
        webchat: Blueprint = SocketBlueprint(sio, SOCKET_PATH, "socketio_webchat", __name__)
        add_health_route(webchat)

        @webchat.route("/chat", methods=["GET"])  # type: ignore[misc]
        async def page(request: Request) -> HTTPResponse:
            html = (STATIC / "index.html").read_text(encoding="utf-8")
            html = html.replace(RETENTION_PLACEHOLDER, retention_days_text(self.settings))
            return response.html(html, headers=self._security_headers(request))

        @webchat.route("/static/<name:path>", methods=["GET"])  # type: ignore[misc]
        async def static(request: Request, name: str) -> HTTPResponse:
            if name not in STATIC_FILES:
                return response.json({"reason": "not_found"}, status=404)
            return response.raw(
                (STATIC / name).read_bytes(),
                content_type=STATIC_FILES[name],
                headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"},
            )

        add_memo_routes(webchat, self.state, self._security_headers)  # issue 18
        add_counter_memo_route(webchat)  # issue 18: the same memo, printed at the city counter

        @webchat.route("/session", methods=["POST"])  # type: ignore[misc]
        async def session(request: Request) -> HTTPResponse:
            origin = request.headers.get("origin")
            if origin is not None and origin not in self.origins:
                return response.json({"reason": "origin_not_allowed"}, status=403)
            if self.tokens is None:
                return response.json({"reason": "sessions_not_configured"}, status=503)
            if not await self._session_allowed(request, self.tokens):
                logger.info("Web chat session refused: the client is over its budget")
                window = str(self.settings.webchat_sessions_window_seconds)
                return response.json(
                    {"reason": "too_many_sessions"}, status=429, headers={"Retry-After": window}
                )
            token, expires = self.tokens.issue()
            return response.json({"token": token, "expires_at": expires})

        @sio.on("connect")  # type: ignore[misc]
        async def connect(sid: str, environ: Dict[str, Any], auth: Dict[str, Any] | None) -> bool:
            token = auth.get("token") if isinstance(auth, dict) else None
            checked = self.tokens.check(token) if self.tokens else None
            if checked is None:
                logger.info("Web chat connection refused: no valid session token")
                return False
            session, expires = checked
            if await self._revoked(session) is not False:  # ended, or cannot be checked
                logger.info("Web chat connection refused: the session was ended or unchecked")
                return False
            await sio.save_session(sid, {"session": session, "expires": expires})
            await sio.enter_room(sid, session)
            return True

        @sio.on("session_end")  # type: ignore[misc]
        async def session_end(sid: str, _data: Any = None) -> Dict[str, bool]:
            return {"ended": await self._end_session(sio, sid)}

        async def open_session(sid: str, opening: Masked) -> None:
            """Greet a new session or mark a resumed one, within the rate limit."""
            session = await self._live_session(sio, sid)
            if not session:
                return
            admission = await admit(
                self.state, self.settings, rate_key(WEB, session), lambda: take_in(opening)
            )
            if admission.texts:
                await self._handle(sio, sid, session, admission.texts, on_new_message)

        @sio.on("session_resume")  # type: ignore[misc]
        async def session_resume(sid: str, _data: Any = None) -> None:
            await open_session(sid, RESUMED)

        @sio.on("session_start")  # type: ignore[misc]
        async def session_start(sid: str, _data: Any = None) -> None:
            await open_session(sid, GREETING)

        @sio.on("user_uttered")  # type: ignore[misc]
        async def user_uttered(sid: str, data: Any) -> None:
            if not isinstance(data, dict):
                return
            session = await self._live_session(sio, sid)
            if not session:
                return
            if not self._has_input(data):
                return
            # The rate limit first: a flood is refused before any of it is masked.
            admission = await admit(
                self.state,
                self.settings,
                rate_key(WEB, session),
                lambda: self._intake_of(session, data),
            )
            if admission.texts:
                await self._handle(sio, sid, session, admission.texts, on_new_message)

        return webchat

    async def _handle(
        self,
        sio: AsyncServer,
        sid: str,
        session: str,
        texts: Sequence[str],
        on_new_message: OnNewMessage,
    ) -> None:
        """Hand one message to Rasa, unless this replica is already answering too many.

        `texts` are what Rasa receives for it, in order: the removal notice first when personal
        details were taken out (`guard.rasa_texts`), then the text or intent.
        """
        limit = self.settings.webchat_max_in_flight
        if 0 < limit <= self._in_flight:
            logger.warning("Web chat message refused: %d messages in flight", self._in_flight)
            await sio.emit(BUSY, {}, to=sid)
            return
        self._in_flight += 1
        try:
            try:  # the buttons of the previous answer are no longer on offer
                await self.state().clear_offers(session)
            except Exception as error:
                logger.error("Offered buttons not cleared: %s", type(error).__name__)
            output = WebChatOutput(
                sio, session, self.state(), self.settings.webchat_offered_buttons_seconds
            )
            await hand_to_rasa(on_new_message, texts, output, session, self.name())
        except Exception as error:  # one bad message must not end the socket
            logger.error("Web chat message failed: %s", type(error).__name__)
        finally:
            self._in_flight -= 1

    def _security_headers(self, request: Request) -> Dict[str, str]:
        host = str(request.host or "")
        if not SAFE_HOST.fullmatch(host):
            host = ""  # never echo a strange Host header into the policy
        if not host:
            sockets = ""
        elif self.settings.webchat_secure_only:
            sockets = f" wss://{host}"
        else:
            sockets = f" ws://{host} wss://{host}"
        return {
            "Content-Security-Policy": (
                "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                f"connect-src 'self'{sockets}; frame-ancestors 'none'; "
                "base-uri 'none'; form-action 'none'"
            ),
            "X-Content-Type-Options": "nosniff",
            "X-Frame-Options": "DENY",
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-cache",
        }

    def get_output_channel(self) -> OutputChannel | None:
        """Answers are only sent in reply to a socket message."""
        return None
