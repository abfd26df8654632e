"""The consultation memo for the city counter (issue 18): the Rasa side's endpoint for /staff.

Driven through the web chat channel's own blueprint (the harness of test_webchat_channel.py),
with a fake consent service client: the token is required (and the endpoint closed without a
strong one), a call through the public proxy is refused, an unknown or level-1 offer is 404, and
the page is exactly the chat's memo page for the offer, made by the same function, without
handing anything to Rasa. The console's side: tests/backend/test_counter_memo.py; both with the
real servers and Chromium's print: tests/e2e/test_counter_memo.py.
"""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace
from typing import Any, Dict, Iterator

import pytest
import yaml

from actions.consent_client import ConsentRefused, ConsentServiceUnavailable
from actions.memo import build_memo
from actions.offer_facts import offer_facts
from bot.settings import get_settings
from bot.shared_state import MemoryState
from bot.webchat import memo_counter
from bot.webchat.memo import render_memo
from tests.actions.test_consent_notice import LEVEL1, LEVEL2
from tests.bot.test_webchat_channel import WebChat
from tests.conftest import PROJECT_ROOT

ROUTE = memo_counter.ROUTE
TOKEN = "counter-memo-test-token-0123456789abcdefghijklmnop"
TERMS = "2026-11-30"
TODAY = dt.date(2026, 12, 1)
# A level-2 offer nobody can consent to now (e.g. its ethics approval lapsed): no memo either.
CLOSED = {**LEVEL2, "offer_id": "closed_level2_offer", "consentable": False}


@pytest.fixture(scope="module")
def domain() -> Dict[str, Any]:
    return dict(yaml.safe_load((PROJECT_ROOT / "domain.yml").read_text(encoding="utf-8")))


class FakeClient:
    """The consent service's client, serving the two catalogue offers (or failing)."""

    def __init__(self, down: bool = False) -> None:
        self.down = down
        self.asked: list[str] = []

    def offer(self, offer_id: str) -> Dict[str, Any]:
        self.asked.append(offer_id)
        if self.down:
            raise ConsentServiceUnavailable("down")
        offers = {o["offer_id"]: o for o in (LEVEL1, LEVEL2, CLOSED)}
        if offer_id not in offers:
            raise ConsentRefused(404, "unknown_offer")
        return dict(offers[offer_id])

    def terms_version(self) -> str:
        return TERMS


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch) -> FakeClient:
    fake = FakeClient()
    monkeypatch.setattr(memo_counter.consent_client, "get_client", lambda: fake)
    monkeypatch.setattr(memo_counter, "city_today", lambda: TODAY)
    return fake


@pytest.fixture(autouse=True)
def api_token(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("RASA_API_TOKEN", TOKEN)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def request(domain: Dict[str, Any] | None, token: str | None = TOKEN, **args: str) -> Any:
    headers = {"authorization": f"Bearer {token}"} if token is not None else {}
    agent = SimpleNamespace(domain=SimpleNamespace(as_dict=lambda: domain)) if domain else None
    return SimpleNamespace(
        headers=headers,
        args=args,
        ip="127.0.0.1",
        app=SimpleNamespace(ctx=SimpleNamespace(agent=agent)),
    )


async def call(req: Any, offer_id: str) -> Any:
    chat = WebChat(state=MemoryState())
    answer = await chat.route(ROUTE)(req, offer_id)
    assert chat.received == []  # nothing reaches Rasa: no conversation, no event
    return answer


async def test_the_page_is_the_chats_memo_page_for_the_offer(domain, client) -> None:
    answer = await call(request(domain), LEVEL2["offer_id"])
    assert answer.status == 200
    memo = build_memo(domain, offer_facts(domain, LEVEL2, TERMS), TODAY)
    assert answer.body.decode("utf-8") == render_memo(memo)
    assert answer.headers["Cache-Control"] == "no-store"
    assert client.asked == [LEVEL2["offer_id"]]


async def test_plain_and_furigana_are_asked_for_by_the_counter(domain, client) -> None:
    answer = await call(request(domain, plain="1", furigana="1"), LEVEL2["offer_id"])
    memo = build_memo(domain, offer_facts(domain, LEVEL2, TERMS, True), TODAY, plain=True)
    assert answer.body.decode("utf-8") == render_memo(memo, with_furigana=True)


@pytest.mark.parametrize("token", [None, "", "wrong", TOKEN[:-1], TOKEN + "x"])
async def test_refused_without_the_token(domain, client, token) -> None:
    answer = await call(request(domain, token=token), LEVEL2["offer_id"])
    assert answer.status == 401
    assert client.asked == []


async def test_a_basic_or_query_token_is_not_the_token(domain, client) -> None:
    req = request(domain, token=None, token_param=TOKEN)
    req.headers = {"authorization": f"Basic {TOKEN}"}
    assert (await call(req, LEVEL2["offer_id"])).status == 401


@pytest.mark.parametrize("configured", ["", "short-token"])
async def test_closed_without_a_strong_token_here(
    domain, client, monkeypatch: pytest.MonkeyPatch, configured: str
) -> None:
    monkeypatch.setenv("RASA_API_TOKEN", configured)
    get_settings.cache_clear()
    answer = await call(request(domain, token=configured), LEVEL2["offer_id"])
    assert answer.status == 403
    assert client.asked == []


async def test_not_served_through_the_public_proxy(domain, client) -> None:
    req = request(domain)
    req.headers["x-real-ip"] = "198.51.100.7"
    assert (await call(req, LEVEL2["offer_id"])).status == 404
    assert client.asked == []


@pytest.mark.parametrize(
    "offer_id", ["no_such_offer", LEVEL1["offer_id"], CLOSED["offer_id"], "../v1", "X" * 80]
)
async def test_an_unknown_level1_or_closed_offer_is_404(domain, client, offer_id) -> None:
    answer = await call(request(domain), offer_id)
    assert answer.status == 404


async def test_the_consent_service_down_is_503(domain, client) -> None:
    client.down = True
    assert (await call(request(domain), LEVEL2["offer_id"])).status == 503


async def test_no_model_loaded_is_503(client) -> None:
    assert (await call(request(None), LEVEL2["offer_id"])).status == 503
