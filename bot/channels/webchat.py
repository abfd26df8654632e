"""The resident web chat: Rasa's `socketio` channel, with a page and server-issued sessions.

It keeps the standard socket.io protocol of Rasa's own channel (path `/socket.io`, events
`user_uttered` and `bot_uttered`) so any socket.io client can talk to it, but every connection
must present a session token this server issued.

- `GET /webhooks/socketio/chat` serves the page (`bot/webchat/static/`), with a strict CSP.
- `POST /webhooks/socketio/session` issues a signed session token; the conversation is bound to
  that server-issued session, never to an id the browser invents. The page keeps the token, so a
  resident who comes back days later continues the same conversation.
- The socket (`/socket.io`) accepts connections only from the allowed origins
  (`WEBCHAT_ALLOWED_ORIGINS`) and only with a valid token.
- Typed text is always text (a leading "/" is made full-width); a button's payload is accepted
  only if the assistant offered that button to this session.
- A session sending more than `RATE_LIMIT_MESSAGES` per `RATE_LIMIT_SECONDS` is told once to wait
  (`too_many_messages`); further messages in that window are dropped. The count is shared by the
  replicas through bot/shared_state.py.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Dict, List, Set

from rasa.core.channels.channel import InputChannel, OutputChannel, UserMessage
from rasa.core.channels.socketio import SocketBlueprint
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse
from socketio import AsyncServer

from bot.channels.guard import typed_text
from bot.settings import Settings, get_settings
from bot.shared_state import SharedState, rate_verdict, shared_state

logger = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent.parent / "webchat" / "static"
STATIC_FILES = {
    "chat.js": "text/javascript; charset=utf-8",
    "chat.css": "text/css; charset=utf-8",
    "vendor/socket.io.min.js": "text/javascript; charset=utf-8",
}
SOCKET_PATH = "/socket.io"
MAX_TYPED_CHARACTERS = 1000
MAX_SESSIONS_REMEMBERED = 50_000
GREETING = "/greet"
TOO_LONG = "/message_too_long"
TOO_MANY = "/too_many_messages"


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
        """The session a token stands for, or None if it is forged, malformed or expired."""
        if not isinstance(token, str) or len(token) > 200:
            return None
        parts = token.split(".")
        if len(parts) != 3 or not parts[1].isdigit():
            return None
        session, expires, signature = parts[0], int(parts[1]), parts[2]
        if not hmac.compare_digest(self._sign(session, expires), signature):
            return None
        return session if expires > (now or time.time()) else None


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


class OfferedButtons:
    """The payloads of the buttons last sent to each session (bounded memory)."""

    def __init__(self, size: int = MAX_SESSIONS_REMEMBERED) -> None:
        self._offered: OrderedDict[str, Set[str]] = OrderedDict()
        self._size = size

    def remember(self, session: str, payloads: List[str]) -> None:
        """Record what was offered in the assistant's latest answer to `session`."""
        self._offered.pop(session, None)
        self._offered[session] = set(payloads)
        while len(self._offered) > self._size:
            self._offered.popitem(last=False)

    def was_offered(self, session: str, payload: str) -> bool:
        """Whether `payload` is one of the buttons last offered to `session`."""
        return payload in self._offered.get(session, set())


class WebChatOutput(OutputChannel):
    """Sends the assistant's answers to every tab of one session."""

    @classmethod
    def name(cls) -> str:
        """The channel's name."""
        return "socketio"

    def __init__(self, sio: AsyncServer, session: str, offered: OfferedButtons) -> None:
        self.sio, self.session, self.offered = sio, session, offered
        self._payloads: List[str] = []

    async def _emit(self, message: Dict[str, Any]) -> None:
        await self.sio.emit("bot_uttered", message, room=self.session)

    async def send_text_message(self, recipient_id: str, text: str, **kwargs: Any) -> None:
        """Send text."""
        await self._emit({"text": text})

    async def send_text_with_buttons(
        self, recipient_id: str, text: str, buttons: List[Dict[str, Any]], **kwargs: Any
    ) -> None:
        """Send text with quick-reply buttons."""
        replies = [
            {"title": str(b.get("title", "")), "payload": str(b.get("payload", ""))}
            for b in buttons
        ]
        self._payloads += [r["payload"] for r in replies]
        self.offered.remember(self.session, self._payloads)
        await self._emit({"text": text, "quick_replies": replies})

    async def send_image_url(self, recipient_id: str, image: str, **kwargs: Any) -> None:
        """Images are not used by this assistant; say nothing rather than break the page."""

    async def send_attachment(self, recipient_id: str, attachment: str, **kwargs: Any) -> None:
        """Attachments are not used by this assistant."""


class WebChatInput(InputChannel):
    """Rasa input channel serving the resident web chat."""

    @classmethod
    def name(cls) -> str:
        """Served under /webhooks/socketio/ (the contract's name for the web channel)."""
        return "socketio"

    @classmethod
    def from_credentials(cls, credentials: Dict[str, Any] | None) -> InputChannel:
        """Build the channel from settings."""
        return cls(get_settings())

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.tokens = tokens_from(settings)
        self.origins = [o.strip() for o in settings.webchat_allowed_origins.split(",") if o.strip()]
        self.offered = OfferedButtons()
        self._state: SharedState | None = None

    async def _rate_verdict(self, session: str) -> str:
        if self._state is None:
            self._state = shared_state(self.settings)
        return await rate_verdict(self._state, self.settings, f"web:{session}")

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        """The page, its files, the session endpoint and the socket."""
        sio = AsyncServer(async_mode="sanic", cors_allowed_origins=self.origins)
        webchat: Blueprint = SocketBlueprint(sio, SOCKET_PATH, "socketio_webchat", __name__)

        @webchat.route("/", methods=["GET"])  # type: ignore[misc]
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @webchat.route("/chat", methods=["GET"])  # type: ignore[misc]
        async def page(request: Request) -> HTTPResponse:
            html = (STATIC / "index.html").read_text(encoding="utf-8")
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

        @webchat.route("/session", methods=["POST"])  # type: ignore[misc]
        async def session(request: Request) -> HTTPResponse:
            origin = request.headers.get("origin")
            if origin is not None and origin not in self.origins:
                return response.json({"reason": "origin_not_allowed"}, status=403)
            if self.tokens is None:
                return response.json({"reason": "sessions_not_configured"}, status=503)
            token, expires = self.tokens.issue()
            return response.json({"token": token, "expires_at": expires})

        @sio.on("connect")  # type: ignore[misc]
        async def connect(sid: str, environ: Dict[str, Any], auth: Dict[str, Any] | None) -> bool:
            session = self.tokens.session_of((auth or {}).get("token")) if self.tokens else None
            if session is None:
                logger.info("Web chat connection refused: no valid session token")
                return False
            await sio.save_session(sid, {"session": session})
            await sio.enter_room(sid, session)
            return True

        @sio.on("session_start")  # type: ignore[misc]
        async def session_start(sid: str, _data: Any = None) -> None:
            await self._handle(sio, sid, GREETING, on_new_message)

        @sio.on("user_uttered")  # type: ignore[misc]
        async def user_uttered(sid: str, data: Any) -> None:
            if not isinstance(data, dict):
                return
            session = (await sio.get_session(sid)).get("session", "")
            payload, message = data.get("payload"), data.get("message")
            if isinstance(payload, str) and payload:
                text = (
                    payload if self.offered.was_offered(session, payload) else typed_text(payload)
                )
            elif isinstance(message, str) and message.strip():
                text = TOO_LONG if len(message) > MAX_TYPED_CHARACTERS else typed_text(message)
            else:
                return
            verdict = await self._rate_verdict(session)
            if verdict == "drop":
                return
            await self._handle(sio, sid, TOO_MANY if verdict == "tell" else text, on_new_message)

        return webchat

    async def _handle(
        self,
        sio: AsyncServer,
        sid: str,
        text: str,
        on_new_message: Callable[[UserMessage], Awaitable[Any]],
    ) -> None:
        session = (await sio.get_session(sid)).get("session")
        if not session:
            return
        output = WebChatOutput(sio, session, self.offered)
        try:
            await on_new_message(UserMessage(text, output, session, input_channel=self.name()))
        except Exception as error:  # one bad message must not end the socket
            logger.error("Web chat message failed: %s", type(error).__name__)

    def _security_headers(self, request: Request) -> Dict[str, str]:
        host = request.host
        return {
            "Content-Security-Policy": (
                "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                f"connect-src 'self' ws://{host} wss://{host}; frame-ancestors 'none'; "
                "base-uri 'none'; form-action 'none'"
            ),
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-cache",
        }

    def get_output_channel(self) -> OutputChannel | None:
        """Answers are only sent in reply to a socket message."""
        return None
