"""The web chat channel driven through its own socket.io handlers and routes, without a server.

`WebChat` builds the channel's blueprint with a fake `on_new_message` and calls the handlers the
blueprint registered on its socket.io server (`connect`, `session_start`, `user_uttered`) and the
routes (`/session`, `/chat`), so each test sees exactly what a browser would make the channel do.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from types import SimpleNamespace
from typing import Any, Awaitable, Callable, Dict, List

import pytest
from rasa.core.channels.channel import UserMessage

from bot.channels.webchat import WebChatInput
from bot.settings import Settings

Reply = Callable[[UserMessage], Awaitable[None]]


def settings(**values: Any) -> Settings:
    base: Dict[str, Any] = {
        "subject_pseudonym_key": "test-pseudonym-key",
        "redis_url": "",
        "webchat_allowed_origins": "https://chat.example.test",
    }
    return Settings(_env_file=None, **{**base, **values})


class WebChat:
    """One channel instance (a replica) and what it handed to Rasa and emitted."""

    def __init__(self, config: Settings | None = None, reply: Reply | None = None, **kw: Any):
        self.channel = WebChatInput(config or settings(), **kw)
        self.received: List[UserMessage] = []
        self.reply = reply
        self.blueprint = self.channel.blueprint(self._on_new_message)
        self.sio = self.blueprint.ctx.sio
        self.sessions: Dict[str, Dict[str, Any]] = {}
        self.emitted: List[tuple[str, Any, Any]] = []

        async def get_session(sid: str, namespace: str | None = None) -> Dict[str, Any]:
            return self.sessions.setdefault(sid, {})

        async def save_session(sid: str, data: Dict[str, Any], namespace: Any = None) -> None:
            self.sessions[sid] = data

        async def enter_room(sid: str, room: str, namespace: Any = None) -> None:
            return None

        async def emit(event: str, data: Any = None, to: Any = None, room: Any = None,
                       **kwargs: Any) -> None:  # fmt: skip
            self.emitted.append((event, data, to or room))

        self.sio.get_session = get_session
        self.sio.save_session = save_session
        self.sio.enter_room = enter_room
        self.sio.emit = emit

    async def _on_new_message(self, message: UserMessage) -> None:
        self.received.append(message)
        if self.reply is not None:
            await self.reply(message)

    @property
    def texts(self) -> List[str]:
        return [m.text or "" for m in self.received]

    def handler(self, event: str) -> Callable[..., Awaitable[Any]]:
        return self.sio.handlers["/"][event]  # type: ignore[no-any-return]

    def route(self, uri: str) -> Callable[..., Awaitable[Any]]:
        for route in self.blueprint._future_routes:
            if route.uri == uri:
                return route.handler  # type: ignore[no-any-return]
        raise KeyError(uri)

    async def new_token(self, ip: str = "192.0.2.1", origin: str | None = None) -> Any:
        headers = {"origin": origin} if origin else {}
        request = SimpleNamespace(headers=headers, ip=ip, host="chat.example.test")
        return await self.route("/session")(request)

    async def connect(self, sid: str, ip: str = "192.0.2.1") -> bool:
        answer = await self.new_token(ip)
        token = __import__("json").loads(answer.body)["token"]
        return bool(await self.handler("connect")(sid, {}, {"token": token}))

    async def utter(self, sid: str, data: Any) -> None:
        await self.handler("user_uttered")(sid, data)


async def offer_levels(message: UserMessage) -> None:
    """The assistant answers with one button."""
    buttons = [{"title": "情報のレベル", "payload": "/ask_data_levels"}]
    await message.output_channel.send_text_with_buttons(message.sender_id or "", "どうぞ", buttons)


def token_secret(config: Settings) -> bytes:
    key = config.subject_pseudonym_key.get_secret_value().encode()  # type: ignore[union-attr]
    return hmac.new(key, b"webchat-session-tokens", hashlib.sha256).digest()


async def test_typed_text_reaches_rasa_as_text() -> None:
    chat = WebChat()
    assert await chat.connect("s1")
    await chat.utter("s1", {"message": "情報銀行って何？"})
    assert chat.texts == ["情報銀行って何？"]


def test_harness_sees_the_handlers() -> None:
    chat = WebChat()
    assert {"connect", "session_start", "user_uttered"} <= set(chat.sio.handlers["/"])
    assert asyncio.iscoroutinefunction(chat.route("/session"))


@pytest.mark.parametrize("text", ["/ask_data_levels", " /ask_data_levels", "\u3000/affirm"])
async def test_a_payload_that_was_not_offered_is_only_text(text: str) -> None:
    chat = WebChat()
    assert await chat.connect("s1")
    await chat.utter("s1", {"payload": text})
    [typed] = chat.texts
    assert typed.startswith("／"), typed


async def test_an_offered_payload_becomes_the_intent() -> None:
    chat = WebChat(reply=offer_levels)
    assert await chat.connect("s1")
    await chat.utter("s1", {"message": "こんにちは"})
    await chat.utter("s1", {"payload": "/ask_data_levels"})
    assert chat.texts == ["こんにちは", "/ask_data_levels"]
