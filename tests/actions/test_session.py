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
