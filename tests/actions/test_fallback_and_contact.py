from __future__ import annotations

import pytest

from actions.contact import ActionContactCity
from actions.fallback import ActionHandleFallback, previous_user_intent
from tests.actions.conftest import responses, tracker_for, user_event

CONTACT = {
    "CITY_CONTACT_NAME": "健康づくり課",
    "CITY_CONTACT_PHONE": "000-0000-0000",
    "CITY_CONTACT_HOURS": "平日 9:00〜17:00",
}


def configure_contact(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in CONTACT.items():
        monkeypatch.setenv(name, value)


def test_first_miss_asks_to_rephrase(dispatcher) -> None:
    tracker = tracker_for(user_event("ほげほげ", "nlu_fallback"))
    ActionHandleFallback().run(dispatcher, tracker, {})
    assert responses(dispatcher) == ["utter_ask_rephrase"]


def test_miss_after_an_understood_message_asks_to_rephrase(dispatcher) -> None:
    tracker = tracker_for(user_event("こんにちは", "greet"), user_event("ほげほげ", "nlu_fallback"))
    ActionHandleFallback().run(dispatcher, tracker, {})
    assert responses(dispatcher) == ["utter_ask_rephrase"]


def test_second_miss_in_a_row_offers_the_city_contact(dispatcher, monkeypatch) -> None:
    configure_contact(monkeypatch)
    tracker = tracker_for(user_event("ほげ", "nlu_fallback"), user_event("ふが", "nlu_fallback"))
    ActionHandleFallback().run(dispatcher, tracker, {})
    assert responses(dispatcher) == ["utter_fallback_contact", "utter_contact_city"]


def test_previous_user_intent_reads_the_message_before_the_latest() -> None:
    tracker = tracker_for(
        user_event("a", "greet"), user_event("b", "nlu_fallback"), user_event("c", "thank")
    )
    assert previous_user_intent(tracker) == "nlu_fallback"
    assert previous_user_intent(tracker_for(user_event("a", "greet"))) is None


def test_contact_uses_the_configured_details(dispatcher, monkeypatch) -> None:
    configure_contact(monkeypatch)
    ActionContactCity().run(dispatcher, tracker_for(user_event("職員", "request_staff")), {})
    [message] = dispatcher.messages
    assert message["response"] == "utter_contact_city"
    assert {k: message[k] for k in ("contact_name", "contact_phone", "contact_hours")} == {
        "contact_name": CONTACT["CITY_CONTACT_NAME"],
        "contact_phone": CONTACT["CITY_CONTACT_PHONE"],
        "contact_hours": CONTACT["CITY_CONTACT_HOURS"],
    }


@pytest.mark.parametrize("missing", sorted(CONTACT))
def test_contact_invents_nothing_when_a_detail_is_missing(dispatcher, monkeypatch, missing) -> None:
    configure_contact(monkeypatch)
    monkeypatch.setenv(missing, "  ")
    ActionContactCity().run(dispatcher, tracker_for(user_event("職員", "request_staff")), {})
    assert responses(dispatcher) == ["utter_contact_city_unconfigured"]


def test_a_misunderstood_message_naming_level3_data_says_it_is_not_handled(dispatcher) -> None:
    message = user_event("遺伝子情報を…", "nlu_fallback", [("data_item", "genetic")])
    ActionHandleFallback().run(dispatcher, tracker_for(message), {})
    assert responses(dispatcher) == ["utter_item_level_genetic"]


def test_a_misunderstood_message_naming_other_data_asks_again(dispatcher) -> None:
    message = user_event("血圧が…", "nlu_fallback", [("data_item", "blood_pressure")])
    ActionHandleFallback().run(dispatcher, tracker_for(message), {})
    assert responses(dispatcher) == ["utter_ask_rephrase"]
