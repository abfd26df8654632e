"""The consultation memo's print page (issue 18): link, escaping, expiry, headers.

Driven through the web chat channel's own blueprint (the harness of test_webchat_channel.py):
an answer carrying the `doctor_memo` payload becomes a link; the link's page is the memo, escaped;
after `MEMO_TTL_SECONDS` the same link answers 410 with a page saying how to get a new memo.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from types import SimpleNamespace
from typing import Any, Dict, Iterator

import pytest
import yaml
from rasa.core.channels.channel import UserMessage

from actions.memo import build_memo
from actions.offer_facts import offer_facts
from bot.settings import get_settings
from bot.shared_state import MemoryState
from bot.webchat.memo import TOKEN, is_memo, kept_memo, render_memo
from tests.actions.test_consent_notice import LEVEL2
from tests.bot.test_webchat_channel import WebChat
from tests.conftest import PROJECT_ROOT

ROUTE = "/memo/<token:str>"


@pytest.fixture(scope="module")
def domain() -> Dict[str, Any]:
    return dict(yaml.safe_load((PROJECT_ROOT / "domain.yml").read_text(encoding="utf-8")))


@pytest.fixture
def memo(domain) -> Dict[str, Any]:
    return build_memo(domain, offer_facts(domain, LEVEL2, "2026-11-30"), dt.date(2026, 12, 1))


@pytest.fixture(autouse=True)
def short_ttl(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("MEMO_TTL_SECONDS", "0.3")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def request(**args: str) -> Any:
    return SimpleNamespace(headers={}, ip="192.0.2.1", host="chat.example.test", args=args)


async def link_of(chat: WebChat, memo: Dict[str, Any]) -> str:
    async def answer(message: UserMessage) -> None:
        await message.output_channel.send_text_message(message.sender_id or "", "メモです")
        await message.output_channel.send_custom_json(
            message.sender_id or "", {"doctor_memo": memo}
        )

    chat.reply = answer
    assert await chat.connect("s1")
    await chat.utter("s1", {"message": "先生に見せるメモがほしい"})
    [link] = [data["memo_link"] for _, data, _ in chat.emitted if "memo_link" in (data or {})]
    assert link["title"] == memo["link_label"]
    url = str(link["url"])
    assert url.startswith("memo/") and TOKEN.fullmatch(url.removeprefix("memo/"))
    return url.removeprefix("memo/")


async def test_the_link_serves_the_memo_and_stops_after_its_ttl(memo) -> None:
    chat = WebChat(state=MemoryState())
    token = await link_of(chat, memo)
    page = await chat.route(ROUTE)(request(), token)
    assert page.status == 200
    html = page.body.decode("utf-8")
    text = re.sub(r"<rt>.*?</rt>|<rp>.*?</rp>|<[^>]+>", "", html)
    for line in [memo["title"], memo["terms"], memo["date"], memo["note"]]:
        assert line in text
    for section in memo["sections"]:
        assert section["heading"] in text and all(line in text for line in section["lines"])
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    assert page.headers["Cache-Control"] == "no-store"
    await asyncio.sleep(0.4)
    gone = await chat.route(ROUTE)(request(), token)
    assert gone.status == 410
    assert "新しいメモ" in gone.body.decode("utf-8")


@pytest.mark.parametrize("token", ["", "x", "A" * 43, "../../etc/passwd", "<script>"])
async def test_a_token_never_issued_is_an_expired_page(token) -> None:
    chat = WebChat(state=MemoryState())
    page = await chat.route(ROUTE)(request(), token)
    assert page.status == 410


async def test_the_page_files_are_served(memo) -> None:
    chat = WebChat(state=MemoryState())
    css = await chat.route(ROUTE)(request(), "memo.css")
    assert css.status == 200 and b"@media print" in css.body and b"A4" in css.body


def test_every_text_is_escaped(memo) -> None:
    hostile = {
        **memo,
        "sections": [{"heading": "<b>見出し</b>", "lines": ['<script>x("1")</script>']}],
    }
    html = render_memo(hostile)
    assert "<script>x" not in html and "<b>見出し" not in html
    assert "&lt;script&gt;" in html


def test_readings_are_in_the_page_and_shown_on_request(memo) -> None:
    assert "<rt>" in render_memo(memo)
    assert 'class="furigana"' in render_memo(memo, with_furigana=True)
    assert 'class="furigana"' not in render_memo(memo)


async def test_only_a_well_formed_memo_is_kept(memo) -> None:
    assert is_memo(memo)
    assert not is_memo({**memo, "sections": [{"heading": 1, "lines": []}]})
    assert not is_memo({"title": "x"})
    chat = WebChat(state=MemoryState())
    assert await chat.connect("s1")
    assert await kept_memo(MemoryState(), "A" * 43) is None
