"""Withdrawal by receipt code end to end (issue #14): a consent given in the web chat (a real
browser) is withdrawn with its receipt code after the browser's storage was cleared (a new
session, a new pseudonym), and from LINE (the fake platform); the consent service then shows the
consent withdrawn, with a withdrawal receipt of its own."""

from __future__ import annotations

import re
from typing import Any, Dict

import pytest
import requests

from tests.e2e.conftest import CONSENT_TOKEN, Assistant
from tests.e2e.test_line import (
    REPLY,
    body_of,
    calls_for,
    event,
    post,
    reply_texts,
    sign,
    text_event,
    user_id,
)
from tests.line_fake import SPECS, FakeLineApi, OpenApi

pytestmark = pytest.mark.e2e
OFFER_TITLE = "市の健康づくり（歩数・血圧）"
CODE = re.compile(r"受付番号：([0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z])")
WAIT_MS = 30_000
# Whoever checks a code for the test: any pseudonym-shaped requester.
REQUESTER = "e" * 64


def look_up(assistant: Assistant, code: str) -> Dict[str, Any]:
    """The consent service's own answer for a code."""
    response = requests.get(
        f"{assistant.consent.url}/v1/receipt-codes/{code}",
        params={"requester": REQUESTER},
        headers={"Authorization": f"Bearer {CONSENT_TOKEN}"},
        timeout=10,
    )
    response.raise_for_status()
    return dict(response.json())


def last_bot_text(page: Any, count_before: int, expect: str | None = None) -> str:
    """Wait for a new answer after `count_before` bot messages; return all new ones.

    An answer may come in several messages, some time apart (an action's answer follows the
    explanation): with `expect`, wait until the new messages contain it; without, allow 500 ms.
    """
    bot = page.locator("#messages li.bot")
    bot.nth(count_before).wait_for(timeout=WAIT_MS)
    if expect is None:
        page.wait_for_timeout(500)
        return "\n".join(bot.all_inner_texts()[count_before:])
    waited = 0
    while True:
        text = "\n".join(bot.all_inner_texts()[count_before:])
        if expect in text or waited >= WAIT_MS:
            return text
        page.wait_for_timeout(100)
        waited += 100


def type_message(page: Any, text: str, expect: str | None = None) -> str:
    before = page.locator("#messages li.bot").count()
    page.fill("#input", text)
    page.press("#input", "Enter")
    return last_bot_text(page, before, expect)


def press(page: Any, title: str, expect: str | None = None) -> str:
    before = page.locator("#messages li.bot").count()
    page.get_by_role("button", name=title, exact=True).click()
    return last_bot_text(page, before, expect)


def consent_in_the_browser(page: Any, assistant: Assistant) -> str:
    """Give the level-1 consent in the web chat; return the receipt code it shows."""
    page.goto(f"{assistant.url}/webhooks/socketio/chat")
    page.locator("#messages li.bot").first.wait_for(timeout=WAIT_MS)
    type_message(page, "同意の手続きをしたいです")
    read_back = press(page, OFFER_TITLE, expect="この内容で同意を記録してよろしいですか")
    assert "この内容で同意を記録してよろしいですか" in read_back
    recorded = press(page, "はい、記録する", expect="この番号を控えてください")
    assert "同意を記録しました" in recorded and "この番号を控えてください" in recorded
    match = CODE.search(recorded)
    assert match, recorded
    code = match.group(1)
    assert look_up(assistant, code) == {
        "receipt_code": code,
        "kind": "consent",
        "offer_id": "city_health_vitals",
        "offer_title_ja": OFFER_TITLE,
        "status": "active",
    }
    return code


def assert_withdrawn_with_a_receipt(assistant: Assistant, code: str, done: str) -> None:
    assert "同意を取り消しました" in done and "この番号を控えてください" in done
    match = re.search(r"取り消しの受付番号：([0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z])", done)
    assert match, done
    assert look_up(assistant, code)["status"] == "withdrawn"
    withdrawal = look_up(assistant, match.group(1))
    assert (withdrawal["kind"], withdrawal["status"]) == ("withdrawal", "withdrawn")
    assert withdrawal["offer_id"] == "city_health_vitals"


def test_a_web_consent_is_withdrawn_by_code_after_the_storage_is_cleared(
    assistant: Assistant, browser: Any
) -> None:
    context = browser.new_context(locale="ja-JP")
    page = context.new_page()
    code = consent_in_the_browser(page, assistant)

    page.evaluate("() => { localStorage.clear(); sessionStorage.clear(); }")
    context.clear_cookies()
    page.reload()
    greeting = page.locator("#messages li.bot").first
    greeting.wait_for(timeout=WAIT_MS)
    assert "情報銀行" in greeting.inner_text()  # a new session greets anew
    # the new session has no consents of its own
    assert "まだ同意の記録はありません" in type_message(page, "同意した内容を確認したいです")

    confirm = type_message(page, f"受付番号 {code} の同意を取り消したい", expect=OFFER_TITLE)
    assert f"受付番号 {code} の同意を取り消します" in confirm and OFFER_TITLE in confirm
    assert look_up(assistant, code)["status"] == "active"  # nothing before the yes
    done = press(page, "取り消す", expect="この番号を控えてください")
    assert_withdrawn_with_a_receipt(assistant, code, done)
    context.close()


def test_a_web_consent_is_withdrawn_from_line_with_the_code_alone(
    assistant: Assistant, browser: Any, fake_line: FakeLineApi
) -> None:
    schema = OpenApi(SPECS / "webhook.yml")
    context = browser.new_context(locale="ja-JP")
    code = consent_in_the_browser(context.new_page(), assistant)
    context.close()

    user = user_id()

    def say(text: str) -> Any:
        message = text_event(user, text)
        body = body_of([message], schema)
        assert post(assistant, body, sign(body)).status_code == 200
        [reply] = calls_for(fake_line, REPLY, message["replyToken"])
        assert reply.problems == []
        return reply

    asked = reply_texts(say("同意を取り消したい"))
    assert "受付番号" in asked and "見つかりませんでした" in asked
    confirm = say(code.lower().replace("-", " "))  # typed loosely, as residents do
    assert OFFER_TITLE in reply_texts(confirm) and "同意中" in reply_texts(confirm)
    items = confirm.body["messages"][-1]["quickReply"]["items"]
    assert [i["action"]["label"] for i in items] == ["取り消す", "やめる"]
    [yes] = [i["action"]["data"] for i in items if i["action"]["label"] == "取り消す"]
    postback = event("postback", user, postback={"data": yes})
    body = body_of([postback], schema)
    assert post(assistant, body, sign(body)).status_code == 200
    [done] = calls_for(fake_line, REPLY, postback["replyToken"])
    assert_withdrawn_with_a_receipt(assistant, code, reply_texts(done))


def test_a_mistyped_and_an_unknown_code_get_different_answers(assistant: Assistant) -> None:
    who = f"e2e-{user_id()[:9]}"
    mistyped = "\n".join(a.get("text", "") for a in assistant.say(who, "H42T-WD34-4"))
    unknown = "\n".join(
        a.get("text", "") for a in assistant.say(who, "受付番号 H42T-WD34-3 の同意を取り消したい")
    )
    assert "打ち間違い" in mistyped
    assert "見つかりませんでした" in unknown and "打ち間違い" not in unknown
