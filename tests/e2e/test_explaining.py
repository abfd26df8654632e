"""Japanese conversations with the real assistant over the REST channel."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import CITY_CONTACT, Assistant

pytestmark = pytest.mark.e2e


def texts(answers: list) -> str:
    return "\n".join(a.get("text", "") for a in answers)


def test_level2_question_is_answered_from_the_seed(assistant: Assistant) -> None:
    answers = assistant.say("e2e-level2", "レベル2の情報って何？")
    answer = texts(answers)
    assert "レベル2は、医療機関などから本人にきちんと開示・説明され" in answer
    assert "マイナポータル" in answer
    # The short answer first; the rest behind its first button, 「もっと詳しく」 (issue 16).
    [more] = [b for a in answers for b in a.get("buttons", []) if b["title"] == "もっと詳しく"]
    assert more["payload"] == '/ask_more_details{"more_of": "utter_data_level_2"}'
    rest = texts(assistant.say("e2e-level2", more["payload"]))
    assert "データ倫理審査会" in rest
    assert "推奨" in rest and "案" in rest  # a proposal, stated as one
    # Typed, right after the short answer, it is understood too.
    assistant.say("e2e-level2-typed", "レベル2の情報って何？")
    assert "データ倫理審査会" in texts(assistant.say("e2e-level2-typed", "もっと詳しく教えて"))


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        (
            "マイナンバーと紐づけされるんですか",
            "マイナンバー（個人番号）やマイナンバーカードについては触れていません",
        ),
        ("かかりつけ医がいないのですが", "医師・歯科医師・薬剤師・保健師"),
        ("撤回したら、もう渡したデータはどうなりますか", "提供先の責任"),
        ("健診の結果を出したら何がもらえるの", "健康に役立つもの"),
    ],
)
def test_questions_added_for_issue_13(assistant: Assistant, question: str, expected: str) -> None:
    assert expected in texts(assistant.say(f"e2e-13-{question}", question))


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("血圧はレベルいくつですか", "血圧は「レベル1」"),
        ("健康診断の結果はどのレベル？", "「レベル2」"),
        ("遺伝子情報はどのレベル？", "このサービスでは扱いません"),
    ],
)
def test_item_level_names_the_level(assistant: Assistant, question: str, expected: str) -> None:
    assert expected in texts(assistant.say(f"e2e-item-{question}", question))


def test_greeting_offers_buttons(assistant: Assistant) -> None:
    [answer] = assistant.say("e2e-greet", "こんにちは")
    assert "情報銀行" in answer["text"]
    assert "調査報告書" in answer["text"] and "実証（デモ）" in answer["text"]
    assert "90日間保存" in answer["text"] and "伏せ字" in answer["text"]
    assert {b["payload"] for b in answer["buttons"]} >= {"/ask_info_bank", "/ask_data_levels"}


def test_medical_question_gets_no_judgement(assistant: Assistant) -> None:
    answer = texts(assistant.say("e2e-medical", "私の血圧は150ですが高いですか？薬は必要？"))
    assert "医学的な判断やアドバイスはできません" in answer
    assert "かかりつけ医" in answer


def test_staff_request_gives_the_configured_contact(assistant: Assistant) -> None:
    answer = texts(assistant.say("e2e-staff", "市役所の職員と話したいです"))
    assert CITY_CONTACT["CITY_CONTACT_PHONE"] in answer
    assert CITY_CONTACT["CITY_CONTACT_HOURS"] in answer


def test_conversation_is_kept_in_the_tracker_store(assistant: Assistant) -> None:
    assistant.say("e2e-tracker", "情報銀行って何？")
    events = assistant.tracker("e2e-tracker")["events"]
    intents = [e["parse_data"]["intent"]["name"] for e in events if e["event"] == "user"]
    assert intents == ["ask_info_bank"]
    assert assistant.tracker_db.stat().st_size > 0


def test_button_payloads_with_entities_reach_residents_intact(assistant: Assistant) -> None:
    answers = assistant.say("e2e-levels-buttons", "情報のレベル分けについて知りたい")
    payloads = [b["payload"] for a in answers for b in a.get("buttons", [])]
    level2_payload = '/ask_data_levels{"data_level": "2"}'
    assert level2_payload in payloads
    level2 = texts(assistant.say("e2e-levels-buttons", level2_payload))
    assert "レベル2は" in level2
