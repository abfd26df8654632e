"""Plain mode (issue 16) on the channels: the web page's switch and LINE's rich-menu entry.

The web chat accepts a payload as an intent only when the assistant offered it to the session,
except the page's own fixed buttons (`PAGE_PAYLOADS` in bot/channels/webchat.py): the plain-mode
switch is on the page whatever the last answer was. On LINE, a rich-menu area's postback is an
intent (bot/channels/line_messages.py reads bot/line/richmenu.json).
"""

from __future__ import annotations

import pytest

from bot.channels.line_messages import accepted_postback
from bot.channels.webchat import PAGE_PAYLOADS, STATIC
from scripts import line_richmenu
from tests.bot.test_webchat_channel import sent_for_unoffered

SWITCH = ["/plain_japanese_on", "/plain_japanese_off"]


def test_the_page_payloads_are_exactly_the_plain_mode_switch() -> None:
    assert frozenset(SWITCH) == PAGE_PAYLOADS


@pytest.mark.parametrize("payload", SWITCH)
async def test_the_page_switch_is_an_intent_without_being_offered(payload: str) -> None:
    assert await sent_for_unoffered(payload) == [payload]


@pytest.mark.parametrize(
    "payload",
    ['/plain_japanese_on{"data_item": "genetic"}', " /plain_japanese_on", "/plain_japanese"],
)
async def test_anything_else_not_offered_stays_text(payload: str) -> None:
    [typed] = await sent_for_unoffered(payload)
    assert typed != payload.strip() and not typed.startswith("/"), typed


def test_the_page_has_the_switch_button() -> None:
    page = (STATIC / "index.html").read_text(encoding="utf-8")
    script = (STATIC / "chat.js").read_text(encoding="utf-8")
    assert 'id="toggle-plain"' in page and "やさしい日本語" in page
    assert all(payload in script for payload in SWITCH)


def test_the_rich_menu_switches_plain_mode_on() -> None:
    areas = [a["action"] for a in line_richmenu.load_menu()["areas"]]
    [switch] = [a for a in areas if a["data"] == "/plain_japanese_on"]
    assert "やさしい日本語" in switch["label"]
    assert accepted_postback("/plain_japanese_on", None) == "/plain_japanese_on"
