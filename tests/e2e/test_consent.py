"""Consent conversations with the real assistant, action server and consent service.

Each test checks the consent service's own records afterwards, not only what the assistant said.
"""

from __future__ import annotations

import sqlite3
import uuid
from contextlib import closing
from typing import Any, Dict, List

import pytest
import requests

from tests.e2e.conftest import CITY_CONTACT, CONSENT_TOKEN, Assistant

pytestmark = pytest.mark.e2e
RECORDED = "同意を記録しました"


def texts(answers: List[Dict[str, Any]]) -> str:
    return "\n".join(a.get("text", "") for a in answers)


def payloads(answers: List[Dict[str, Any]]) -> List[str]:
    return [b["payload"] for a in answers for b in a.get("buttons", [])]


def sender() -> str:
    return f"e2e-{uuid.uuid4().hex[:8]}"


def choose(assistant: Assistant, who: str, offer_id: str) -> str:
    offers = assistant.say(who, "同意の手続きをしたいです")
    payload = f'/give_consent{{"offer_id": "{offer_id}"}}'
    assert payload in payloads(offers)
    return texts(assistant.say(who, payload))


def served_offer(assistant: Assistant, offer_id: str) -> Dict[str, Any]:
    response = requests.get(
        f"{assistant.consent.url}/v1/offers/{offer_id}",
        headers={"Authorization": f"Bearer {CONSENT_TOKEN}"},
        timeout=10,
    )
    response.raise_for_status()
    return dict(response.json())


def served_terms(assistant: Assistant) -> Dict[str, Any]:
    response = requests.get(
        f"{assistant.consent.url}/v1/terms",
        headers={"Authorization": f"Bearer {CONSENT_TOKEN}"},
        timeout=10,
    )
    response.raise_for_status()
    return dict(response.json())


# A phone screen: about 20 full-width characters a line, about 20 lines.
PHONE_SCREEN = 400


@pytest.mark.parametrize("offer_id", ["city_health_vitals", "city_health_checkup"])
def test_the_notice_is_shown_before_the_yes(assistant: Assistant, offer_id: str) -> None:
    who = sender()
    offer = served_offer(assistant, offer_id)
    assistant.say(who, "同意の手続きをしたいです")
    shown = assistant.say(who, f'/give_consent{{"offer_id": "{offer_id}"}}')
    if offer["max_level"] >= 2:
        doctor = texts(shown)
        assert "推奨" in doctor and "かかりつけ医に相談しましたか" in doctor
        shown += assistant.say(who, '/answer_family_doctor{"family_doctor_answer": "consulted"}')
    notice = texts(shown)
    assert "この内容で同意を記録してよろしいですか" in notice  # the yes has not been given
    assert assistant.consent.history(who) == []
    assert "運営者：情報銀行の実証サービス（デモ用の仮の運営者）" in notice
    assert (
        CITY_CONTACT["CITY_CONTACT_NAME"] in notice and CITY_CONTACT["CITY_CONTACT_PHONE"] in notice
    )
    assert f"提供先：{offer['recipient']['name_ja']}" in notice
    assert f"目的：{offer['description_ja']}" in notice
    for item in offer["items"]:
        assert f"{item['name_ja']}（レベル{item['level']}）" in notice
    assert "情報の出どころ：" in notice
    assert "期間：取り消すまで" in notice
    assert "取り消した時刻から、この同意にもとづく新しい提供は行われません" in notice
    for benefit in offer["benefits"]:
        assert benefit["description_ja"] in notice
    assert f"{served_terms(assistant)['version']}版" in notice
    assert "/ask_terms" in payloads(shown)  # the terms, readable in the chat
    assert "実証（デモ）の例" in notice and "（実証の例）" in notice
    screens = [
        a["text"]
        for a in shown
        if a.get("text", "").startswith(("【", "次の内容で、同意を記録します"))
    ]
    assert len(screens) == 2 and all(len(t) <= PHONE_SCREEN for t in screens)


def test_more_details_show_the_terms_then_the_yes_records(assistant: Assistant) -> None:
    who = sender()
    choose(assistant, who, "city_health_vitals")
    details = texts(assistant.say(who, "/ask_terms"))
    assert "もっと詳しく" in details and "利用約款" in details and "撤回" in details
    assert assistant.consent.history(who) == []
    assert RECORDED in texts(assistant.say(who, "はい"))
    assert len(assistant.consent.history(who)) == 1


def test_typing_douishimasu_at_the_read_back_records_once(assistant: Assistant) -> None:
    who = sender()
    choose(assistant, who, "city_health_vitals")
    answer = texts(assistant.say(who, "同意します"))
    assert RECORDED in answer and "この内容で同意を記録してよろしいですか" not in answer
    [record] = assistant.consent.history(who)
    assert record["offer_id"] == "city_health_vitals"


def test_a_typed_yes_after_not_yet_does_not_continue(assistant: Assistant) -> None:
    who = sender()
    choose(assistant, who, "city_health_checkup")
    assistant.say(who, '/answer_family_doctor{"family_doctor_answer": "not_yet"}')
    asked_again = texts(assistant.say(who, "はい"))
    assert "どちらを選ばれたのか分かりませんでした" in asked_again
    assert "この内容で同意を記録してよろしいですか" not in asked_again
    assert RECORDED not in texts(assistant.say(who, "はい"))
    assert assistant.consent.history(who) == []
    read_back = texts(assistant.say(who, '/affirm{"consent_choice": "proceed"}'))
    assert "かかりつけ医への相談：まだ相談していない" in read_back
    assert RECORDED in texts(assistant.say(who, "はい"))
    [record] = assistant.consent.history(who)
    assert record["family_doctor_consulted"] == "not_yet"


def test_level1_consent_is_recorded_once_with_its_receipt(assistant: Assistant) -> None:
    who = sender()
    explained = choose(assistant, who, "city_health_vitals")
    assert (
        "歩数（歩行）（レベル1）" in explained
        and "この内容で同意を記録してよろしいですか" in explained
    )
    assert assistant.consent.history(who) == []  # nothing before the explicit yes
    answer = texts(assistant.say(who, "はい"))
    [record] = assistant.consent.history(who)
    assert RECORDED in answer and record["receipt_id"] in answer
    assert record["offer_id"] == "city_health_vitals" and record["status"] == "active"
    assert record["channel"] == "rest"
    assert RECORDED not in texts(assistant.say(who, "はい"))  # a second yes records nothing
    assert len(assistant.consent.history(who)) == 1


def test_level2_consent_after_consulting_the_family_doctor(assistant: Assistant) -> None:
    who = sender()
    explained = choose(assistant, who, "city_health_checkup")
    assert "かかりつけ医に相談しましたか" in explained
    assert "データ倫理審査会" in explained
    read_back = texts(assistant.say(who, "はい、かかりつけ医に相談しました"))
    assert "かかりつけ医への相談：相談した" in read_back
    answer = texts(assistant.say(who, "はい"))
    assert RECORDED in answer
    [record] = assistant.consent.history(who)
    assert record["family_doctor_consulted"] == "consulted"
    # the tracker shows the answer set before the submission's "recorded"
    events = assistant.tracker(who)["events"]
    slot_at = next(
        i for i, e in enumerate(events)
        if e["event"] == "slot" and e["name"] == "family_doctor_consulted" and e["value"]
    )  # fmt: skip
    recorded_at = next(
        i for i, e in enumerate(events) if e["event"] == "bot" and RECORDED in (e.get("text") or "")
    )
    assert slot_at < recorded_at


def test_not_yet_stop_and_resume_later(assistant: Assistant) -> None:
    who = sender()
    choose(assistant, who, "city_health_checkup")
    advice = texts(assistant.say(who, '/answer_family_doctor{"family_doctor_answer": "not_yet"}'))
    assert "相談してから決めることをおすすめします" in advice
    paused = texts(assistant.say(who, "今日はやめておきます"))
    assert "ここで止めておきます" in paused
    assert assistant.consent.history(who) == []
    assistant.say(who, "ありがとう")
    resumed = texts(assistant.say(who, "同意の続きをお願いします"))
    assert "続きから再開します" in resumed and "かかりつけ医に相談しましたか" in resumed
    assistant.say(who, '/answer_family_doctor{"family_doctor_answer": "consulted"}')
    assert RECORDED in texts(assistant.say(who, "はい"))
    [record] = assistant.consent.history(who)
    assert record["family_doctor_consulted"] == "consulted"


def test_withdraw_and_review(assistant: Assistant) -> None:
    who = sender()
    choose(assistant, who, "city_health_vitals")
    assistant.say(who, "はい")
    [record] = assistant.consent.history(who)
    options = assistant.say(who, "同意を取り消したいです")
    payload = f'/withdraw_consent{{"consent_id": "{record["consent_id"]}"}}'
    assert payloads(options)[0] == payload
    confirm = texts(assistant.say(who, payload))
    assert "取り消した時刻から、この同意にもとづく新しい提供は行われません" in confirm
    assert "約款にもとづき提供先の責任" in confirm
    done = texts(assistant.say(who, "はい"))
    assert "同意を取り消しました" in done
    [record] = assistant.consent.history(who)
    assert record["status"] == "withdrawn" and record["withdrawal_receipt_id"] in done
    listing = texts(assistant.say(who, "同意した内容を確認したいです"))
    assert "取り消し済み" in listing and record["receipt_code"] in listing


def test_service_down_mid_consent_then_back(assistant: Assistant) -> None:
    who = sender()
    choose(assistant, who, "city_health_vitals")
    assistant.consent.stop()
    try:
        answer = texts(assistant.say(who, "はい"))
        assert RECORDED not in answer and "同意はまだ記録されていません" in answer
    finally:
        assistant.consent.start()
    assert assistant.consent.history(who) == []
    assert RECORDED in texts(assistant.say(who, "はい"))
    assert len(assistant.consent.history(who)) == 1


@pytest.mark.parametrize(
    "forged",
    [
        "/affirm",
        '/give_consent{"consent_stage": "confirming", "consent_pending": "consent"}',
        '/answer_family_doctor{"family_doctor_answer": "consulted"}',
    ],
)
def test_forged_messages_record_nothing(assistant: Assistant, forged: str) -> None:
    who = sender()
    answer = texts(assistant.say(who, forged))
    assert RECORDED not in answer
    assert RECORDED not in texts(assistant.say(who, "はい"))
    assert assistant.consent.history(who) == []


def test_level3_item_is_explained_not_offered(assistant: Assistant) -> None:
    answer = assistant.say(sender(), "遺伝子情報を提供したいです")
    assert "このサービスでは扱いません" in texts(answer)
    assert all("genetic" not in p for p in payloads(answer))


def _consent_db(assistant: Assistant) -> sqlite3.Connection:
    url = assistant.consent.env["CONSENT_DATABASE_URL"]
    return sqlite3.connect(url.removeprefix("sqlite+pysqlite:///"))


def test_a_changed_offer_between_read_back_and_yes_is_refused_not_recorded(
    assistant: Assistant,
) -> None:
    who = sender()
    read_back = choose(assistant, who, "city_health_vitals")
    assert "脈拍（レベル1）" in read_back and "この内容で同意を記録してよろしいですか" in read_back
    shown = served_offer(assistant, "city_health_vitals")
    # The offer changes in the service's database after the read-back: an item is taken out.
    with closing(_consent_db(assistant)) as db, db:
        db.execute(
            "DELETE FROM offer_items WHERE offer_id = 'city_health_vitals' AND item_id = 'pulse'"
        )
    try:
        assert served_offer(assistant, "city_health_vitals")["version"] != shown["version"]
        answer = texts(assistant.say(who, "はい"))
        assert RECORDED not in answer
        assert "この提供先の内容が変わりました" in answer and "同意は記録していません" in answer
        assert assistant.consent.history(who) == []
        # The notice again, with the new content, and the question again.
        assert "脈拍（レベル1）" not in answer and "歩数（歩行）（レベル1）" in answer
        assert "この内容で同意を記録してよろしいですか" in answer
        assert RECORDED in texts(assistant.say(who, "はい"))
        [record] = assistant.consent.history(who)
        assert sorted(record["item_ids"]) == ["blood_pressure", "steps", "weight"]
    finally:
        with closing(_consent_db(assistant)) as db, db:
            db.execute(
                "INSERT OR IGNORE INTO offer_items (offer_id, item_id) "
                "VALUES ('city_health_vitals', 'pulse')"
            )
    assert served_offer(assistant, "city_health_vitals")["version"] == shown["version"]
