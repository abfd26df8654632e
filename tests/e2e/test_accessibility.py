"""Accessibility (issue 16; JIS X 8341-3:2016 level AA) of the web chat and the staff console.

axe-core (vendored in tests/e2e/vendor/, never downloaded here) runs in the real page with the
WCAG 2.0/2.1 A and AA rules, which cover what JIS X 8341-3:2016 AA asks (it is identical to
WCAG 2.0): no serious or critical violation on the chat page in its default look, with large
text, with high contrast, and in plain mode with furigana on; and none on each staff view. axe
cannot judge everything, so the keyboard, the live region, visible focus and 200 % zoom are
checked directly too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List

import pytest

from tests.e2e.conftest import Assistant, staff_log_in
from tests.e2e.test_staff_console import VIEWS, console, counter_console
from tests.staff_tracker import DAY1, DAY2

pytestmark = pytest.mark.e2e
AXE = (Path(__file__).parent / "vendor" / "axe.min.js").read_text(encoding="utf-8")
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
WAIT_MS = 30_000
__all__ = ["console", "counter_console"]  # the staff console fixtures, shared with their tests


def serious_violations(page: Any) -> List[Dict[str, Any]]:
    """axe-core's serious and critical violations on the page as it is now.

    axe is evaluated through the browser's debugging protocol, not as a page script, so the
    pages' Content-Security-Policy stays as it is in production.
    """
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(AXE)
    result = page.evaluate(
        "tags => axe.run(document, { runOnly: { type: 'tag', values: tags }, resultTypes: "
        "['violations'] })",
        TAGS,
    )
    return [
        {
            "id": violation["id"],
            "impact": violation["impact"],
            "targets": [node["target"] for node in violation["nodes"]][:5],
            "help": violation["help"],
        }
        for violation in result["violations"]
        if violation["impact"] in ("serious", "critical")
    ]


def chat_url(assistant: Assistant) -> str:
    return f"{assistant.url}/webhooks/socketio/chat"


def ask(page: Any, text: str) -> None:
    bot = page.locator("#messages li.bot")
    before = bot.count()
    page.fill("#input", text)
    page.press("#input", "Enter")
    bot.nth(before).wait_for(timeout=WAIT_MS)
    page.wait_for_timeout(500)


def open_chat(browser: Any, assistant: Assistant, **options: Any) -> Any:
    context = browser.new_context(locale="ja-JP", **options)
    page = context.new_page()
    page.goto(chat_url(assistant))
    page.locator("#quick-replies button").first.wait_for(timeout=WAIT_MS)
    return page


def switch(page: Any, name: str) -> None:
    page.get_by_role("button", name=name).click()


def test_chat_page_has_no_serious_violation(assistant: Assistant, browser: Any) -> None:
    """Default, large text, high contrast, plain mode with furigana: one session (the page's
    session budget per client address is shared by the whole e2e run)."""
    page = open_chat(browser, assistant, viewport={"width": 390, "height": 844})
    ask(page, "データ倫理審査会って何？")
    found = {"default": serious_violations(page)}
    switch(page, "文字を大きく")
    found["large"] = serious_violations(page)
    switch(page, "文字を大きく")
    switch(page, "白黒はっきり")
    found["contrast"] = serious_violations(page)
    switch(page, "白黒はっきり")
    switch(page, "やさしい日本語")
    page.wait_for_timeout(1_000)
    switch(page, "ふりがな")
    ask(page, "データ倫理審査会って何？")
    assert page.locator("#messages rt").first.is_visible()
    found["plain-furigana"] = serious_violations(page)
    switch(page, "白黒はっきり")
    found["plain-furigana-contrast"] = serious_violations(page)
    page.context.close()
    assert {look: v for look, v in found.items() if v} == {}


def test_chat_page_at_200_percent_zoom(assistant: Assistant, browser: Any) -> None:
    """A 1280×720 window zoomed to 200 % lays the page out in 640×360 CSS pixels."""
    page = open_chat(
        browser, assistant, viewport={"width": 640, "height": 360}, device_scale_factor=2
    )
    ask(page, "情報銀行って何？")
    found = {}
    for look in ("default", "large"):
        if look == "large":
            switch(page, "文字を大きく")
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{look}: {overflow}px of horizontal scrolling"
        for selector in ("#input", "#send", "#toggle-furigana", "#end-session"):
            box = page.locator(selector).bounding_box()
            assert box is not None and box["x"] >= 0, (look, selector)
            assert box["x"] + box["width"] <= 640, (look, selector)
        found[look] = serious_violations(page)
    page.context.close()
    assert {look: v for look, v in found.items() if v} == {}


def focus_ring(page: Any) -> str:
    return str(
        page.evaluate(
            "() => { const s = getComputedStyle(document.activeElement);"
            " return s.outlineStyle + ' ' + s.outlineWidth; }"
        )
    )


def test_chat_by_keyboard_alone(assistant: Assistant, browser: Any) -> None:
    """Every switch, the input, a quick reply: reached with Tab, used with Enter or Space."""
    page = open_chat(browser, assistant, viewport={"width": 1024, "height": 768})
    seen: Dict[str, str] = {}
    for _ in range(40):
        page.keyboard.press("Tab")
        key = page.evaluate("document.activeElement.id || document.activeElement.textContent")
        seen.setdefault(str(key), focus_ring(page))
    for control in ("toggle-large", "toggle-contrast", "toggle-plain", "toggle-furigana",
                    "input", "send", "remember", "end-session", "情報のレベル"):  # fmt: skip
        assert control in seen, (control, list(seen))
        assert not seen[control].startswith("none"), (control, seen[control])

    page.focus("#toggle-furigana")
    page.keyboard.press("Space")
    assert page.get_attribute("#toggle-furigana", "aria-pressed") == "true"
    page.focus("#input")
    page.keyboard.type("情報銀行って何？")
    page.keyboard.press("Enter")
    page.locator("#messages li.bot").nth(1).wait_for(timeout=WAIT_MS)
    # the answer is announced by the live region, as plain text without the readings
    announcer = page.locator("#announcer")
    assert announcer.get_attribute("aria-live") == "polite"
    assert "情報銀行" in announcer.inner_text() and "じょうほう" not in announcer.inner_text()
    # a quick reply by keyboard
    page.locator("#quick-replies button").first.focus()
    before = page.locator("#messages li.bot").count()
    page.keyboard.press("Enter")
    page.locator("#messages li.bot").nth(before).wait_for(timeout=WAIT_MS)
    page.context.close()


def test_staff_views_have_no_serious_violation(console: tuple[str, str], browser: Any) -> None:
    url, secret = console
    page = browser.new_page(viewport={"width": 1280, "height": 900}, locale="ja-JP")
    found: Dict[str, List[Dict[str, Any]]] = {}
    page.goto(f"{url}/staff/login")
    found["login"] = serious_violations(page)
    staff_log_in(page, url, "kanri", secret, landing=f"{url}/staff/")
    for name, path in VIEWS.items():
        page.goto(f"{url}{path}?start={DAY1}&end={DAY2}")
        found[name] = serious_violations(page)
    page.goto(f"{url}/staff/conversations?start={DAY1}&end={DAY2}")
    page.get_by_role("link", name="開く").first.click()
    page.locator("ol.transcript").wait_for()
    found["transcript"] = serious_violations(page)
    page.close()
    assert {name: v for name, v in found.items() if v} == {}


def test_staff_counter_has_no_serious_violation(
    counter_console: Dict[str, Any], browser: Any
) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 900}, locale="ja-JP")
    url = counter_console["url"]
    staff_log_in(page, url, "madoguchi", counter_console["secret"], landing=f"{url}/staff/counter")
    assert serious_violations(page) == []
    page.get_by_label("受付番号").fill("XXXX-XXXX-X")
    page.get_by_role("button", name="確認する").click()
    page.wait_for_load_state()
    assert serious_violations(page) == []
    page.close()
