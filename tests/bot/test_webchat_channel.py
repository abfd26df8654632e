"""The web chat channel driven through its own socket.io handlers and routes, without a server.

`WebChat` builds the channel's blueprint with a fake `on_new_message` and calls the handlers the
blueprint registered on its socket.io server (`connect`, `session_start`, `user_uttered`) and the
routes (`/session`, `/chat`), so each test sees exactly what a browser would make the channel do.
"""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace
from typing import Any, Awaitable, Callable, Dict, List

import pytest
from rasa.core.channels.channel import UserMessage

from bot.channels.origins import insecure_origins
from bot.channels.webchat import WebChatInput
from bot.settings import Settings
from bot.shared_state import MemoryState

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
        token = json.loads(answer.body)["token"]
        return bool(await self.handler("connect")(sid, {}, {"token": token}))

    async def utter(self, sid: str, data: Any) -> None:
        await self.handler("user_uttered")(sid, data)


async def offer_levels(message: UserMessage) -> None:
    """The assistant answers with one button."""
    buttons = [{"title": "情報のレベル", "payload": "/ask_data_levels"}]
    await message.output_channel.send_text_with_buttons(message.sender_id or "", "どうぞ", buttons)


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


# -- tokens: any text is refused, never an error (item 4) ---------------------------------------


@pytest.mark.parametrize(
    "token",
    [
        "a.9999999999.é",  # non-ASCII signature: compare_digest on str raised TypeError
        "a.9999999999.署名",
        "é.9999999999.c2ln",
        "a.²³.c2ln",  # str.isdigit accepts superscripts, int() does not
        "a.١٢٣.c2ln",  # Arabic-Indic digits
        "a..c2ln",
        "a.1.2.3",
        "x" * 500,
        "",
    ],
)
def test_a_strange_token_is_refused_not_an_error(token: str) -> None:
    tokens = WebChatInput(settings()).tokens
    assert tokens is not None
    assert tokens.session_of(token) is None


@pytest.mark.parametrize("auth", [{"token": "a.9999999999.é"}, ["token"], "token", None, {}])
async def test_the_socket_refuses_strange_auth_without_an_error(auth: Any) -> None:
    chat = WebChat()
    assert await chat.handler("connect")("s1", {}, auth) is False


def test_an_issued_token_is_accepted_and_a_tampered_one_refused() -> None:
    tokens = WebChatInput(settings()).tokens
    assert tokens is not None
    token, _ = tokens.issue()
    session = tokens.session_of(token)
    assert session is not None and token.startswith(session)
    assert tokens.session_of(token[:-1] + ("A" if token[-1] != "A" else "B")) is None


# -- sessions: a budget per client address, shared by the replicas (item 2) ---------------------


def status_of(answer: Any) -> int:
    return int(answer.status)


async def test_new_sessions_per_client_are_limited() -> None:
    chat = WebChat(settings(webchat_sessions_per_client=3))
    statuses = [status_of(await chat.new_token("198.51.100.7")) for _ in range(5)]
    assert statuses == [200, 200, 200, 429, 429]
    refused = await chat.new_token("198.51.100.7")
    assert json.loads(refused.body) == {"reason": "too_many_sessions"}
    assert status_of(await chat.new_token("198.51.100.8")) == 200  # another client


async def test_the_session_budget_holds_across_replicas() -> None:
    shared = MemoryState()
    config = settings(webchat_sessions_per_client=2)
    first, second = WebChat(config, state=shared), WebChat(config, state=shared)
    assert status_of(await first.new_token("198.51.100.9")) == 200
    assert status_of(await second.new_token("198.51.100.9")) == 200
    assert status_of(await first.new_token("198.51.100.9")) == 429
    assert status_of(await second.new_token("198.51.100.9")) == 429


async def test_the_client_is_the_proxy_s_x_real_ip_only_from_a_trusted_proxy() -> None:
    chat = WebChat(settings(webchat_sessions_per_client=1))
    route = chat.route("/session")

    def request(peer: str, real_ip: str) -> Any:
        return SimpleNamespace(headers={"x-real-ip": real_ip}, ip=peer, host="h")

    # behind nginx (peer 127.0.0.1): each resident's own address counts
    assert status_of(await route(request("127.0.0.1", "203.0.113.1"))) == 200
    assert status_of(await route(request("127.0.0.1", "203.0.113.2"))) == 200
    assert status_of(await route(request("127.0.0.1", "203.0.113.1"))) == 429
    # a client that is not the proxy cannot choose its address by sending the header
    assert status_of(await route(request("203.0.113.50", "203.0.113.60"))) == 200
    assert status_of(await route(request("203.0.113.50", "203.0.113.61"))) == 429


async def test_the_shared_state_never_holds_the_client_address() -> None:
    shared = MemoryState()
    chat = WebChat(settings(), state=shared)
    await chat.new_token("203.0.113.77")
    assert shared._counts and all("203.0.113.77" not in key for key in shared._counts)


async def test_session_start_counts_against_the_rate_limit() -> None:
    chat = WebChat(settings(rate_limit_messages=2))
    assert await chat.connect("s1")
    for _ in range(5):
        await chat.handler("session_start")("s1")
    assert chat.texts == ["/greet", "/greet", "/too_many_messages"]


async def test_session_start_without_a_session_does_nothing() -> None:
    chat = WebChat()
    await chat.handler("session_start")("nobody")
    assert chat.texts == []


async def test_messages_over_the_replica_s_capacity_get_busy() -> None:
    release = asyncio.Event()

    async def slow(message: UserMessage) -> None:
        await release.wait()

    chat = WebChat(settings(webchat_max_in_flight=2), reply=slow)
    for sid in ("s1", "s2", "s3"):
        assert await chat.connect(sid, ip=f"192.0.2.{sid[-1]}")
    first = asyncio.ensure_future(chat.utter("s1", {"message": "一つ目"}))
    second = asyncio.ensure_future(chat.utter("s2", {"message": "二つ目"}))

    # Masked off the event loop first (issue 19): wait until both are with Rasa, however long
    # the worker threads take to open Sudachi's dictionary.
    async def both_with_rasa() -> None:
        while len(chat.texts) < 2:
            await asyncio.sleep(0.01)

    await asyncio.wait_for(both_with_rasa(), 30)
    try:  # refused at once (before the fix it waited for the slow answers)
        await asyncio.wait_for(chat.utter("s3", {"message": "三つ目"}), 2)
    finally:
        release.set()
    # Each is masked in its own worker thread, so the two may reach Rasa in either order.
    assert sorted(chat.texts) == sorted(["一つ目", "二つ目"])  # the third never reached Rasa
    assert [(event, to) for event, _, to in chat.emitted] == [("busy", "s3")]
    await asyncio.gather(first, second)
    await chat.utter("s3", {"message": "もう一度"})  # capacity is back
    assert chat.texts[-1] == "もう一度"


async def test_a_failing_message_frees_its_place() -> None:
    async def boom(message: UserMessage) -> None:
        raise RuntimeError("tracker store down")

    chat = WebChat(settings(webchat_max_in_flight=1), reply=boom)
    assert await chat.connect("s1")
    for _ in range(3):
        await chat.utter("s1", {"message": "こんにちは"})
    assert len(chat.texts) == 3 and not chat.emitted


# -- offered buttons: in the shared state, cleared by every answer (item 4) ---------------------


async def test_a_button_offered_by_one_replica_works_on_the_other() -> None:
    shared = MemoryState()
    first = WebChat(settings(), reply=offer_levels, state=shared)
    second = WebChat(settings(), state=shared)
    assert await first.connect("s1")
    second.sessions["s1"] = first.sessions["s1"]  # the page reconnected to the other replica
    await first.utter("s1", {"message": "こんにちは"})
    await second.utter("s1", {"payload": "/ask_data_levels"})
    assert second.texts == ["/ask_data_levels"]


async def test_offered_buttons_are_cleared_by_the_next_answer() -> None:
    answers = [offer_levels]

    async def reply(message: UserMessage) -> None:
        if answers:
            await answers.pop()(message)  # first answer: a button; later ones: none

    chat = WebChat(reply=reply)
    assert await chat.connect("s1")
    await chat.utter("s1", {"message": "こんにちは"})
    await chat.utter("s1", {"message": "ありがとう"})  # answered without buttons
    await chat.utter("s1", {"payload": "/ask_data_levels"})
    assert chat.texts[-1] == "／ask_data_levels"


async def test_a_pressed_button_is_used_once() -> None:
    chat = WebChat(reply=offer_levels)
    assert await chat.connect("s1")
    await chat.utter("s1", {"message": "こんにちは"})
    chat.reply = None
    await chat.utter("s1", {"payload": "/ask_data_levels"})
    await chat.utter("s1", {"payload": "/ask_data_levels"})
    assert chat.texts[1:] == ["/ask_data_levels", "／ask_data_levels"]


async def test_offered_buttons_expire() -> None:
    chat = WebChat(settings(webchat_offered_buttons_seconds=0.2), reply=offer_levels)
    assert await chat.connect("s1")
    await chat.utter("s1", {"message": "こんにちは"})
    chat.reply = None
    await asyncio.sleep(0.4)
    await chat.utter("s1", {"payload": "/ask_data_levels"})
    assert chat.texts[-1] == "／ask_data_levels"


async def test_the_channel_keeps_no_buttons_of_its_own() -> None:
    chat = WebChat(reply=offer_levels)
    assert not hasattr(chat.channel, "offered")


async def test_an_over_long_payload_is_not_looked_up() -> None:
    chat = WebChat()
    assert await chat.connect("s1")
    await chat.utter("s1", {"payload": "/" + "a" * 5000})
    assert chat.texts == ["/message_too_long"]


# -- headers and origins (item 5) ----------------------------------------------------------------


async def page_headers(config: Settings, host: str = "chat.example.test") -> Dict[str, str]:
    chat = WebChat(config)
    answer = await chat.route("/chat")(SimpleNamespace(headers={}, ip="192.0.2.1", host=host))
    return dict(answer.headers)


def connect_src(headers: Dict[str, str]) -> List[str]:
    [directive] = [
        d.strip() for d in headers["Content-Security-Policy"].split(";") if "connect-src" in d
    ]
    return directive.split()[1:]


async def test_production_page_allows_only_secure_sockets() -> None:
    headers = await page_headers(settings(webchat_secure_only=True))
    assert connect_src(headers) == ["'self'", "wss://chat.example.test"]
    assert "ws:" not in headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "no-referrer"


async def test_development_page_allows_plain_sockets_to_its_own_host() -> None:
    headers = await page_headers(settings(), host="localhost:5005")
    assert connect_src(headers) == ["'self'", "ws://localhost:5005", "wss://localhost:5005"]


@pytest.mark.parametrize(
    "host", ["evil; script-src *", "a b", "x'y", "host\r\nX-Injected: 1", "ö.example"]
)
async def test_a_strange_host_header_is_not_echoed_into_the_policy(host: str) -> None:
    headers = await page_headers(settings(), host=host)
    assert connect_src(headers) == ["'self'"]
    assert host not in headers["Content-Security-Policy"]


@pytest.mark.parametrize(
    "origins",
    [
        "http://localhost:5005,http://127.0.0.1:5005",
        "https://chat.example.test,https://localhost",
        "https://127.0.0.1:8443",
        "https://[::1]",
        "http://chat.example.test",
        "https://app.localhost",
        "*",
        "https://0.0.0.0",
        "",
    ],
)
def test_production_refuses_to_start_with_local_or_plain_origins(origins: str) -> None:
    with pytest.raises(ValueError, match="WEBCHAT_ALLOWED_ORIGINS"):
        WebChatInput(settings(webchat_secure_only=True, webchat_allowed_origins=origins))


def test_production_starts_with_https_origins_of_public_hosts() -> None:
    config = settings(
        webchat_secure_only=True,
        webchat_allowed_origins="https://chat.city.funabashi.example, https://city.example:8443",
    )
    assert WebChatInput(config).origins == [
        "https://chat.city.funabashi.example",
        "https://city.example:8443",
    ]


def test_development_may_use_local_origins() -> None:
    config = settings(webchat_allowed_origins="http://localhost:5005,http://127.0.0.1:5005")
    assert len(WebChatInput(config).origins) == 2


@pytest.mark.parametrize(
    ("origin", "refused"),
    [
        ("https://chat.example.test", False),
        ("https://chat.example.test/", False),
        ("https://LOCALHOST", True),
        ("https://127.8.9.10", True),
        ("https://chat.example.test/path", True),
        ("https://user@chat.example.test", True),
        ("ftp://chat.example.test", True),
        ("chat.example.test", True),
    ],
)
def test_insecure_origins(origin: str, refused: bool) -> None:
    assert (insecure_origins([origin]) == [origin]) is refused


async def test_the_page_says_what_this_is_and_how_long_conversations_are_kept() -> None:
    chat = WebChat(settings(retention_days=45))
    answer = await chat.route("/chat")(
        SimpleNamespace(headers={}, ip="192.0.2.1", host="chat.example.test")
    )
    page = answer.body.decode("utf-8")
    assert "実証（デモ）" in page
    assert "会話の記録は45日間保存したあと削除します" in page
    assert "伏せ字" in page
    assert "{{" not in page


async def sent_for_unoffered(payload: str) -> List[str]:
    """What Rasa receives when a new session sends `payload` that no answer offered."""
    chat = WebChat()
    assert await chat.connect("s1")
    await chat.utter("s1", {"payload": payload})
    return chat.texts


# A split answer's 「もっと詳しく」 button (issue 16) stays an intent after its offer was replaced.
@pytest.mark.parametrize("topic", ["utter_data_levels", "utter_info_bank", "utter_unknown"])
async def test_a_more_details_button_is_an_intent_without_being_offered(topic: str) -> None:
    # action_more_details, not the channel, decides whether the name has a rest to show.
    payload = '/ask_more_details{"more_of": "' + topic + '"}'
    assert await sent_for_unoffered(payload) == [payload]


@pytest.mark.parametrize(
    "payload",
    [
        '/ask_more_details{"more_of": "utter_info_bank", "data_item": "genetic"}',
        '/ask_more_details{"more_of": "action_withdraw"}',
        '/ask_more_details{"more_of": "utter_info_bank"}/give_consent',
        '/give_consent{"more_of": "utter_info_bank"}',
        "/ask_more_details",
    ],
)
async def test_a_forged_more_details_payload_stays_text(payload: str) -> None:
    [typed] = await sent_for_unoffered(payload)
    assert not typed.startswith("/"), typed
