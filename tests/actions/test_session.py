"""Shared screens (issue #14): the actions of a resumed web chat session."""

from __future__ import annotations

from rasa_sdk.events import SlotSet

from actions.session import ActionConfirmSamePerson, ActionSessionResumed
from tests.actions.conftest import responses, run_action, tracker_for, user_event


def test_a_resumed_session_is_marked_and_told_how_to_start_afresh(dispatcher) -> None:
    tracker = tracker_for(user_event("/session_resumed", "session_resumed"))
    events = run_action(ActionSessionResumed(), dispatcher, tracker, {})
    assert events[0] == SlotSet("session_resumed", True)
    # Any question left open on the earlier visit is closed.
    assert SlotSet("consent_pending", None) in events
    assert SlotSet("withdraw_consent_id", None) in events
    assert SlotSet("withdraw_receipt_code", None) in events
    assert responses(dispatcher) == ["utter_session_resumed"]


def test_the_same_person_may_list_and_withdraw_again(dispatcher) -> None:
    tracker = tracker_for(
        user_event("/confirm_same_person", "confirm_same_person"), slots={"session_resumed": True}
    )
    events = run_action(ActionConfirmSamePerson(), dispatcher, tracker, {})
    assert events == [SlotSet("session_resumed", False)]
    assert responses(dispatcher) == ["utter_same_person_confirmed"]


def _asked_same_person(answer: str, intent: str):
    from tests.actions.conftest import tracker_for as _tracker_for

    tracker = _tracker_for(
        user_event("/list_consents", "list_consents"),
        user_event(answer, intent),
        slots={"session_resumed": True},
    )
    # The assistant's question sits between the two messages, as Rasa records it.
    tracker.events.insert(
        1, {"event": "bot", "text": "…", "metadata": {"utter_action": "utter_ask_same_person"}}
    )
    return tracker


def test_a_typed_yes_at_the_same_person_question_confirms(dispatcher) -> None:
    from actions.yes_no import ActionHandleYesNo

    events = run_action(ActionHandleYesNo(), dispatcher, _asked_same_person("はい", "affirm"), {})
    assert events == [SlotSet("session_resumed", False)]
    assert responses(dispatcher) == ["utter_same_person_confirmed"]


def test_a_typed_no_at_the_same_person_question_keeps_consents_hidden(dispatcher) -> None:
    from actions.yes_no import ActionHandleYesNo

    events = run_action(ActionHandleYesNo(), dispatcher, _asked_same_person("いいえ", "deny"), {})
    assert events == []
    assert responses(dispatcher) == ["utter_not_same_person"]


def test_a_yes_after_another_question_is_not_taken_as_the_same_person(dispatcher) -> None:
    from actions.yes_no import ActionHandleYesNo

    tracker = _asked_same_person("はい", "affirm")
    tracker.events.insert(
        2, {"event": "bot", "text": "…", "metadata": {"utter_action": "utter_greet"}}
    )
    events = run_action(ActionHandleYesNo(), dispatcher, tracker, {})
    assert events == []
    assert responses(dispatcher) == ["utter_affirm"]


def test_a_typed_yes_at_the_question_never_answers_a_flow_left_open_before_it(dispatcher) -> None:
    # A left a withdrawal confirmation open on a shared PC; B types はい at 「ご本人ですか？」.
    from actions.yes_no import ActionHandleYesNo

    tracker = _asked_same_person("はい", "affirm")
    tracker.slots.update(
        {
            "consent_pending": "withdrawal",
            "withdraw_consent_id": "0b6f3c2a-5d1e-4f7a-9c8b-2e4d6f8a0c1e",
        }
    )
    events = run_action(ActionHandleYesNo(), dispatcher, tracker, {})
    assert responses(dispatcher) == ["utter_same_person_confirmed"]
    assert events == [SlotSet("session_resumed", False)]


def test_giving_consent_in_a_resumed_session_asks_who_is_at_the_screen_first(dispatcher) -> None:
    from actions.consent import ActionConsentFlow

    tracker = tracker_for(user_event("同意したい", "give_consent"), slots={"session_resumed": True})
    events = run_action(ActionConsentFlow(), dispatcher, tracker, {})
    assert events == []
    assert responses(dispatcher) == ["utter_ask_same_person"]
