"""Plain mode (やさしい日本語, issue 16) with the real assistant over the REST channel.

The mode is a slot (`plain_japanese`) set by the resident's two intents; the answers that have a
plain variant say it while the mode is on, across turns and inside the consent conversation
(read-back and receipt), and the usual wording comes back when it is switched off.
"""

from __future__ import annotations

import uuid
from typing import Any, Dict, List

import pytest

from tests.e2e.conftest import Assistant

pytestmark = pytest.mark.e2e
# Opening lines of utter_help's two variations, and of the read-back's and receipt's.
HELP_DEFAULT = "このチャットでは、調査報告書"
HELP_PLAIN = "このチャットで、わかること："
READBACK_DEFAULT = "次の内容で、同意を記録します"
READBACK_PLAIN = "この内容で、同意を記録します。"
RECORDED_DEFAULT = "同意を記録しました（実証の例）。"
RECORDED_PLAIN = "同意を記録しました。\n（実証の例です。ためしの例です）"


def texts(answers: List[Dict[str, Any]]) -> str:
    return "\n".join(a.get("text", "") for a in answers)


def payloads(answers: List[Dict[str, Any]]) -> List[str]:
    return [b["payload"] for a in answers for b in a.get("buttons", [])]


def sender() -> str:
    return f"e2e-plain-{uuid.uuid4().hex[:8]}"


def slot(assistant: Assistant, who: str) -> Any:
    return assistant.tracker(who)["slots"]["plain_japanese"]


def test_switch_on_ask_switch_off(assistant: Assistant) -> None:
    who = sender()
    before = assistant.say(who, "何ができるの？")
    assert HELP_DEFAULT in texts(before) and HELP_PLAIN not in texts(before)
    assert "/plain_japanese_on" in payloads(before)
    assert slot(assistant, who) is False

    switched = assistant.say(who, "やさしい日本語でお願いします")
    assert "やさしい日本語で話します" in texts(switched)
    assert "/plain_japanese_off" in payloads(switched)
    assert slot(assistant, who) is True

    # Two turns later the mode still holds.
    assistant.say(who, "情報銀行ってなに")
    plain = assistant.say(who, "/help")
    assert HELP_PLAIN in texts(plain) and HELP_DEFAULT not in texts(plain)
    assert "/plain_japanese_off" in payloads(plain) and "/plain_japanese_on" not in payloads(plain)

    off = assistant.say(who, "ふつうの日本語に戻してください")
    assert "ふつうの日本語の説明に戻しました" in texts(off)
    assert slot(assistant, who) is False
    after = assistant.say(who, "/help")
    assert HELP_DEFAULT in texts(after) and HELP_PLAIN not in texts(after)


def test_read_back_and_receipt_in_plain_mode(assistant: Assistant) -> None:
    who = sender()
    assistant.say(who, "/plain_japanese_on")
    assistant.say(who, "同意の手続きをしたいです")
    readback = texts(assistant.say(who, '/give_consent{"offer_id": "city_health_vitals"}'))
    assert READBACK_PLAIN in readback and READBACK_DEFAULT not in readback
    assert "約款（きまり）" in readback
    recorded = texts(assistant.say(who, "はい"))
    assert RECORDED_PLAIN in recorded and RECORDED_DEFAULT not in recorded
    [record] = assistant.consent.history(who)
    assert record["offer_id"] == "city_health_vitals"

    choose = assistant.say(who, "同意を取り消したい")  # the consents, as buttons
    [button] = [p for p in payloads(choose) if p.startswith("/withdraw_consent")]
    withdraw = texts(assistant.say(who, button))
    assert "この同意を取り消します。" in withdraw and "次の同意を取り消します" not in withdraw
    done = texts(assistant.say(who, "はい"))
    assert "同意を取り消しました。" in done and "この番号は、大事です。" in done


def test_switched_on_in_the_middle_of_a_consent(assistant: Assistant) -> None:
    """The switch answers, and the pending yes still belongs to the consent."""
    who = sender()
    assistant.say(who, "同意の手続きをしたいです")
    readback = texts(assistant.say(who, '/give_consent{"offer_id": "city_health_vitals"}'))
    assert READBACK_DEFAULT in readback
    assert "やさしい日本語で話します" in texts(assistant.say(who, "やさしい日本語で"))
    recorded = texts(assistant.say(who, "はい"))
    assert RECORDED_PLAIN in recorded
    assert len(assistant.consent.history(who)) == 1


def test_the_page_switch_in_a_browser(assistant: Assistant, browser: Any) -> None:
    """The header's やさしい日本語 button switches the mode on and off (web chat, issue 16)."""
    page = browser.new_page(viewport={"width": 390, "height": 844}, locale="ja-JP")
    page.goto(f"{assistant.url}/webhooks/socketio/chat")
    bot = page.locator("#messages li.bot")
    bot.first.wait_for(timeout=30_000)  # the greeting
    switch = page.locator("#toggle-plain")
    assert switch.get_attribute("aria-pressed") == "false"

    switch.click()
    bot.nth(1).wait_for(timeout=30_000)
    assert "やさしい日本語で話します" in bot.nth(1).inner_text()
    assert switch.get_attribute("aria-pressed") == "true"

    page.get_by_role("button", name="できること", exact=True).click()  # the confirmation's button
    bot.nth(2).wait_for(timeout=30_000)
    assert HELP_PLAIN in bot.nth(2).inner_text()

    switch.click()
    bot.nth(3).wait_for(timeout=30_000)
    assert "ふつうの日本語の説明に戻しました" in bot.nth(3).inner_text()
    assert switch.get_attribute("aria-pressed") == "false"
    page.close()
