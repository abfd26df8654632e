"""The resident web chat in a real headless Chromium (Playwright), and its socket's guards."""

from __future__ import annotations

from typing import Any, List

import pytest
import requests
import socketio

from tests.e2e.conftest import SCREENSHOTS, Assistant

pytestmark = pytest.mark.e2e


def page_url(assistant: Assistant) -> str:
    return f"{assistant.url}/webhooks/socketio/chat"


def test_a_resident_asks_and_presses_a_quick_reply(assistant: Assistant, browser: Any) -> None:
    page = browser.new_page(viewport={"width": 390, "height": 844}, locale="ja-JP")
    page.goto(page_url(assistant))
    bot = page.locator("#messages li.bot")
    bot.first.wait_for(timeout=30_000)
    assert "情報銀行" in bot.first.inner_text()  # the greeting of a new session

    page.fill("#input", "情報銀行って何？")
    page.press("#input", "Enter")
    bot.nth(1).wait_for(timeout=30_000)
    assert "同意した範囲" in bot.nth(1).inner_text()

    page.get_by_role("button", name="情報のレベル").click()
    bot.nth(2).wait_for(timeout=30_000)
    assert "レベル0〜3" in bot.nth(2).inner_text()
    assert page.locator("#messages li.me").all_inner_texts() == ["情報銀行って何？", "情報のレベル"]

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "webchat.png"))
    page.get_by_role("button", name="文字を大きく").click()
    page.get_by_role("button", name="白黒はっきり").click()
    page.screenshot(path=str(SCREENSHOTS / "webchat-large-contrast.png"))

    # a reload keeps the server-issued session: the conversation goes on, no second greeting
    page.reload()
    page.fill("#input", "ありがとう")
    page.press("#input", "Enter")
    page.locator("#messages li.bot").first.wait_for(timeout=30_000)
    assert "どういたしまして" in page.locator("#messages li.bot").first.inner_text()
    page.close()


def test_enter_while_composing_kana_does_not_send(assistant: Assistant, browser: Any) -> None:
    page = browser.new_page()
    page.goto(page_url(assistant))
    page.locator("#messages li.bot").first.wait_for(timeout=30_000)
    page.fill("#input", "じょうほうぎんこう")
    for init in ({"key": "Enter", "isComposing": True}, {"key": "Enter", "keyCode": 229}):
        page.locator("#input").dispatch_event("keydown", init)
    assert page.locator("#messages li.me").count() == 0
    assert page.input_value("#input") == "じょうほうぎんこう"
    page.locator("#input").dispatch_event("keydown", {"key": "Enter"})
    page.locator("#messages li.me").first.wait_for(timeout=5_000)
    page.close()


def test_the_page_is_keyboard_accessible(assistant: Assistant, browser: Any) -> None:
    page = browser.new_page()
    page.goto(page_url(assistant))
    page.locator("#quick-replies button").first.wait_for(timeout=30_000)
    focused: List[str] = []
    for _ in range(12):
        page.keyboard.press("Tab")
        focused.append(
            page.evaluate("document.activeElement.id || document.activeElement.textContent")
        )
    assert "input" in focused and "send" in focused and "情報のレベル" in focused, str(focused)
    page.close()


def new_session(assistant: Assistant) -> str:
    response = requests.post(f"{assistant.url}/webhooks/socketio/session", timeout=10)
    response.raise_for_status()
    return str(response.json()["token"])


def connect(assistant: Assistant, token: str, origin: str | None = None) -> socketio.Client:
    client = socketio.Client(reconnection=False)
    headers = {"Origin": origin} if origin else {}
    client.connect(
        assistant.url, socketio_path="/socket.io", auth={"token": token},
        headers=headers, transports=["polling"], wait_timeout=10,
    )  # fmt: skip
    return client


@pytest.mark.parametrize("token", ["", "forged.9999999999.c2lnbmF0dXJl", "tampered"])
def test_the_socket_refuses_sessions_it_did_not_issue(assistant: Assistant, token: str) -> None:
    if token == "tampered":
        session, expires, signature = new_session(assistant).split(".")
        token = f"{'0' * len(session)}.{expires}.{signature}"
    with pytest.raises(socketio.exceptions.ConnectionError):
        connect(assistant, token)


def test_the_socket_and_session_refuse_other_origins(assistant: Assistant) -> None:
    with pytest.raises(socketio.exceptions.ConnectionError):
        connect(assistant, new_session(assistant), origin="https://evil.example")
    refused = requests.post(
        f"{assistant.url}/webhooks/socketio/session",
        headers={"Origin": "https://evil.example"},
        timeout=10,
    )
    assert refused.status_code == 403


def test_a_payload_that_was_not_offered_is_only_text(assistant: Assistant) -> None:
    client = connect(assistant, new_session(assistant), origin=assistant.url)
    answers: List[dict] = []
    client.on("bot_uttered", answers.append)
    try:
        client.emit("user_uttered", {"payload": "/ask_data_levels"})
        client.sleep(5)
    finally:
        client.disconnect()
    assert answers, "the assistant answered"
    assert all("レベル0〜3に分けて扱います" not in a.get("text", "") for a in answers)


@pytest.mark.parametrize("blank", [" ", "\u3000", "\n", "\t", "\u00a0", "\u200b"])
def test_typed_slash_text_after_blanks_is_only_text(assistant: Assistant, blank: str) -> None:
    client = connect(assistant, new_session(assistant), origin=assistant.url)
    answers: List[dict] = []
    client.on("bot_uttered", answers.append)
    try:
        client.emit("user_uttered", {"message": blank + "/ask_data_levels"})
        client.sleep(5)
    finally:
        client.disconnect()
    assert answers, "the assistant answered"
    assert all("レベル0〜3に分けて扱います" not in a.get("text", "") for a in answers)


def test_a_session_token_with_non_ascii_text_is_refused_not_an_error(
    assistant: Assistant,
) -> None:
    session, expires, _ = new_session(assistant).split(".")
    with pytest.raises(socketio.exceptions.ConnectionError):
        connect(assistant, f"{session}.{expires}.署名")
    assert new_session(assistant)  # the server is fine
