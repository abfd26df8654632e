"""Shared screens (issue #14) in a real headless Chromium: where the page keeps its session,
what a resumed session asks, and 「会話を終わる」.

Two pages of one browser context are two tabs of one browser: they share localStorage, each has
its own sessionStorage.
"""

from __future__ import annotations

from typing import Any

import pytest
import socketio

from tests.e2e.conftest import SCREENSHOTS, Assistant
from tests.e2e.test_webchat import connect, page_url

pytestmark = pytest.mark.e2e

KEY = "funabashi-infobank-session"
GREETING = "情報銀行"
RESUMED = "前回の会話の続きです"
ASK = "この端末をお使いなのはご本人ですか"


def tab_token(page: Any) -> str | None:
    saved = page.evaluate(f"sessionStorage.getItem('{KEY}')")
    return None if saved is None else str(page.evaluate(f"JSON.parse({saved!r}).token"))


def device_token(page: Any) -> str | None:
    saved = page.evaluate(f"localStorage.getItem('{KEY}')")
    return None if saved is None else str(page.evaluate(f"JSON.parse({saved!r}).token"))


def open_tab(context: Any, assistant: Assistant) -> Any:
    page = context.new_page()
    page.goto(page_url(assistant))
    page.locator("#messages li.bot").first.wait_for(timeout=30_000)
    return page


def test_without_the_tick_a_new_tab_has_no_session(assistant: Assistant, browser: Any) -> None:
    context = browser.new_context(locale="ja-JP")
    first = open_tab(context, assistant)
    assert GREETING in first.locator("#messages li.bot").first.inner_text()
    assert not first.is_checked("#remember")
    assert tab_token(first) and device_token(first) is None  # this tab only

    second = open_tab(context, assistant)  # a new tab, or the next person's visit
    assert GREETING in second.locator("#messages li.bot").first.inner_text()
    assert RESUMED not in second.locator("#messages").inner_text()
    assert tab_token(second) and tab_token(second) != tab_token(first)
    context.close()


def test_with_the_tick_a_later_visit_resumes_and_asks_before_listing(
    assistant: Assistant, browser: Any
) -> None:
    context = browser.new_context(locale="ja-JP")
    first = open_tab(context, assistant)
    first.check("#remember")
    old = tab_token(first)
    assert old and device_token(first) == old  # kept on the device too
    first.uncheck("#remember")
    assert device_token(first) is None  # unticking forgets it on the device
    first.check("#remember")

    later = open_tab(context, assistant)  # a new tab: the session of the earlier visit
    later.get_by_text(RESUMED).wait_for(timeout=30_000)
    assert tab_token(later) == old and later.is_checked("#remember")
    assert GREETING not in later.locator("#messages li.bot").first.inner_text()

    later.fill("#input", "同意の一覧を見せて")
    later.press("#input", "Enter")
    later.get_by_text(ASK).wait_for(timeout=30_000)
    assert "まだ同意の記録はありません" not in later.locator("#messages").inner_text()
    later.get_by_role("button", name="はい").click()
    later.get_by_role("button", name="同意の一覧").click()
    later.get_by_text("まだ同意の記録はありません").wait_for(timeout=30_000)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    later.screenshot(path=str(SCREENSHOTS / "webchat-resumed.png"))

    # 「会話を終わる」: the page is cleared, both tabs of the session, and the token is dead
    later.get_by_role("button", name="会話を終わる").click()
    later.get_by_text("会話を終わりました").wait_for(timeout=10_000)
    for page in (later, first):
        page.wait_for_function(
            "!document.getElementById('messages').textContent.includes('同意の一覧を見せて')"
            " && !document.getElementById('messages').textContent.includes('前回の会話')",
            timeout=10_000,
        )
    later.locator("#messages li.bot").first.wait_for(timeout=30_000)  # a new session's greeting
    assert GREETING in later.locator("#messages li.bot").first.inner_text()
    assert not later.is_checked("#remember")
    assert device_token(later) is None
    assert tab_token(later) not in (None, old)
    assert old is not None
    with pytest.raises(socketio.exceptions.ConnectionError):
        connect(assistant, old, origin=assistant.url)

    # the next visit on this device starts a new session: nothing of the earlier one resumes
    nxt = open_tab(context, assistant)
    assert RESUMED not in nxt.locator("#messages").inner_text()
    assert tab_token(nxt) != old
    context.close()


def test_a_reload_in_the_same_tab_continues_without_asking(
    assistant: Assistant, browser: Any
) -> None:
    context = browser.new_context(locale="ja-JP")
    page = open_tab(context, assistant)
    page.check("#remember")
    token = tab_token(page)
    page.reload()
    page.fill("#input", "ありがとう")
    page.press("#input", "Enter")
    page.locator("#messages li.bot").first.wait_for(timeout=30_000)
    assert "どういたしまして" in page.locator("#messages li.bot").first.inner_text()
    assert RESUMED not in page.locator("#messages").inner_text()
    assert tab_token(page) == token
    context.close()
