"""Issue 16 on the web chat, in a real headless Chromium: plain mode with furigana, read-aloud.

The resident switches on やさしい日本語 and ふりがな with the page's buttons and asks about level 2
and the data ethics board: the answers are the plain variants of domain.yml, word for word, and
the page shows their kanji with `<ruby>` readings made on the server. The read-aloud button is
there only when the browser has a Japanese voice: Debian's headless Chromium is checked as it
is, and a Japanese voice is emulated by replacing `speechSynthesis.getVoices` (the browser's
API) in the page before it loads.
"""

from __future__ import annotations

from typing import Any, Dict, List

import pytest
import requests
import socketio
import yaml

from tests.conftest import PROJECT_ROOT
from tests.e2e.conftest import SCREENSHOTS, Assistant

pytestmark = pytest.mark.e2e
WAIT_MS = 30_000
# The answer's text without its readings: <ruby> contributes its base text only.
BASE_TEXT = """el => Array.from(el.childNodes).map(
    n => n.nodeName === "RUBY" ? n.firstChild.textContent : n.textContent).join("")"""
JAPANESE_VOICE = """(() => {
  const voices = [{ name: "テスト音声", lang: "ja-JP", voiceURI: "test-ja", localService: true,
                    default: true }];
  window.__spoken = [];
  speechSynthesis.getVoices = () => voices;
  speechSynthesis.speak = utterance => {
    window.__spoken.push({ text: utterance.text, lang: utterance.lang });
  };
})();"""
ENGLISH_VOICE_ONLY = """(() => {
  const voices = [{ name: "Test English", lang: "en-US", voiceURI: "test-en", localService: true,
                    default: true }];
  speechSynthesis.getVoices = () => voices;
})();"""


def page_url(assistant: Assistant) -> str:
    return f"{assistant.url}/webhooks/socketio/chat"


def plain_variant(response: str) -> str:
    """The text of a response's plain-mode variation in domain.yml."""
    domain = yaml.safe_load((PROJECT_ROOT / "domain.yml").read_text(encoding="utf-8"))
    for variant in domain["responses"][response]:
        for condition in variant.get("condition") or []:
            if condition.get("name") == "plain_japanese" and condition.get("value") is True:
                return str(variant["text"])
    raise AssertionError(f"{response} has no plain variant")


def ask(page: Any, text: str) -> Any:
    """Type a question; return the locator of the first new answer."""
    bot = page.locator("#messages li.bot")
    before = bot.count()
    page.fill("#input", text)
    page.press("#input", "Enter")
    bot.nth(before).wait_for(timeout=WAIT_MS)
    return bot.nth(before)


def test_plain_mode_with_furigana_and_read_aloud(assistant: Assistant, browser: Any) -> None:
    context = browser.new_context(locale="ja-JP", viewport={"width": 390, "height": 844})
    context.add_init_script(JAPANESE_VOICE)
    page = context.new_page()
    page.goto(page_url(assistant))
    page.locator("#messages li.bot").first.wait_for(timeout=WAIT_MS)

    plain = page.get_by_role("button", name="やさしい日本語")
    furigana = page.get_by_role("button", name="ふりがな")
    assert furigana.get_attribute("aria-pressed") == "false"
    before = page.locator("#messages li.bot").count()
    plain.click()
    page.locator("#messages li.bot").nth(before).wait_for(timeout=WAIT_MS)
    furigana.click()
    assert furigana.get_attribute("aria-pressed") == "true"
    assert plain.get_attribute("aria-pressed") == "true"

    level2 = ask(page, "レベル2の情報って何？")
    assert level2.locator(".text").evaluate(BASE_TEXT) == plain_variant("utter_data_level_2")
    board = ask(page, "データ倫理審査会って何？")
    assert board.locator(".text").evaluate(BASE_TEXT) == plain_variant("utter_ethics_board")

    # the kanji carry readings made on the server, shown as <ruby>/<rt>
    rubies = board.locator("ruby")
    pairs = {
        rubies.nth(i).evaluate("r => r.firstChild.textContent"): rubies.nth(i)
        .locator("rt")
        .text_content()
        for i in range(rubies.count())
    }
    assert pairs["倫理"] == "りんり" and pairs["審査会"] == "しんさかい"
    assert pairs["情報"] == "じょうほう"
    assert level2.locator("ruby", has_text="既往歴").locator("rt").text_content() == "きおうれき"
    assert board.locator("rt").first.is_visible()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "webchat-plain-furigana.png"), full_page=True)

    # read-aloud: a button on each answer, speaking its text (not the readings) in Japanese
    speak = board.get_by_role("button", name="読み上げる")
    assert speak.is_visible()
    speak.click()
    spoken = page.evaluate("window.__spoken")
    assert spoken == [{"text": plain_variant("utter_ethics_board"), "lang": "ja-JP"}]

    # the switch is remembered in the page; switched off, the readings are hidden again
    page.reload()  # the conversation goes on (no new greeting)
    assert page.get_by_role("button", name="ふりがな").get_attribute("aria-pressed") == "true"
    again = ask(page, "データ倫理審査会って何？")
    assert again.locator("rt").first.is_visible()
    page.get_by_role("button", name="ふりがな").click()
    assert not again.locator("rt").first.is_visible()
    assert "りんり" not in again.inner_text()
    context.close()


def test_no_japanese_voice_no_read_aloud_button(assistant: Assistant, browser: Any) -> None:
    """As the browser is (Debian's headless Chromium), and with an English voice only."""
    context = browser.new_context(locale="ja-JP")
    page = context.new_page()
    page.goto(page_url(assistant))
    greeting = page.locator("#messages li.bot").first
    greeting.wait_for(timeout=WAIT_MS)
    page.wait_for_timeout(2_000)  # past the page's wait for late voices
    has_japanese = page.evaluate(
        "speechSynthesis.getVoices().some(v => /^ja([-_]|$)/i.test(v.lang))"
    )
    assert greeting.locator("button.speak").count() == 1
    assert greeting.locator("button.speak").is_visible() == has_japanese
    context.close()

    context = browser.new_context(locale="ja-JP")
    context.add_init_script(ENGLISH_VOICE_ONLY)
    page = context.new_page()
    page.goto(page_url(assistant))
    greeting = page.locator("#messages li.bot").first
    greeting.wait_for(timeout=WAIT_MS)
    page.wait_for_timeout(2_000)
    assert not greeting.locator("button.speak").is_visible()
    # hidden, so neither in the accessibility tree nor in the tab order
    assert page.get_by_role("button", name="読み上げる").count() == 0
    context.close()


def test_bot_uttered_carries_the_readings_as_data(assistant: Assistant) -> None:
    """Any socket.io client gets the segments beside the text; joined they give the text."""
    session = requests.post(f"{assistant.url}/webhooks/socketio/session", timeout=10)
    session.raise_for_status()
    client = socketio.Client(reconnection=False)
    answers: List[Dict[str, Any]] = []
    client.on("bot_uttered", answers.append)
    client.connect(
        assistant.url, socketio_path="/socket.io", auth={"token": session.json()["token"]},
        headers={"Origin": assistant.url}, transports=["polling"], wait_timeout=10,
    )  # fmt: skip
    try:
        client.emit("user_uttered", {"message": "情報銀行って何？"})
        for _ in range(300):
            if answers:
                break
            client.sleep(0.1)
    finally:
        client.disconnect()
    assert answers, "no answer"
    for answer in answers:
        segments = answer["furigana"]
        assert "".join(surface for surface, _ in segments) == answer["text"]
        assert all(reading is None or isinstance(reading, str) for _, reading in segments)
    assert ["情報", "じょうほう"] in answers[0]["furigana"]
    assert ["銀行", "ぎんこう"] in answers[0]["furigana"]
