"""Shared screens (issue #14): the actions of a resumed web chat session."""

from __future__ import annotations

from rasa_sdk.events import SlotSet

from actions.session import ActionConfirmSamePerson, ActionSessionResumed
from tests.actions.conftest import responses, tracker_for, user_event


def test_a_resumed_session_is_marked_and_told_how_to_start_afresh(dispatcher) -> None:
    tracker = tracker_for(user_event("/session_resumed", "session_resumed"))
    events = ActionSessionResumed().run(dispatcher, tracker, {})
    assert events == [SlotSet("session_resumed", True)]
    assert responses(dispatcher) == ["utter_session_resumed"]


def test_the_same_person_may_list_and_withdraw_again(dispatcher) -> None:
    tracker = tracker_for(
        user_event("/confirm_same_person", "confirm_same_person"), slots={"session_resumed": True}
    )
    events = ActionConfirmSamePerson().run(dispatcher, tracker, {})
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

    events = ActionHandleYesNo().run(dispatcher, _asked_same_person("はい", "affirm"), {})
    assert events == [SlotSet("session_resumed", False)]
    assert responses(dispatcher) == ["utter_same_person_confirmed"]


def test_a_typed_no_at_the_same_person_question_keeps_consents_hidden(dispatcher) -> None:
    from actions.yes_no import ActionHandleYesNo

    events = ActionHandleYesNo().run(dispatcher, _asked_same_person("いいえ", "deny"), {})
    assert events == []
    assert responses(dispatcher) == ["utter_not_same_person"]


def test_a_yes_after_another_question_is_not_taken_as_the_same_person(dispatcher) -> None:
    from actions.yes_no import ActionHandleYesNo

    tracker = _asked_same_person("はい", "affirm")
    tracker.events.insert(
        2, {"event": "bot", "text": "…", "metadata": {"utter_action": "utter_greet"}}
    )
    events = ActionHandleYesNo().run(dispatcher, tracker, {})
    assert events == []
    assert responses(dispatcher) == ["utter_affirm"]
