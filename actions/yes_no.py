"""Yes and no: they answer whichever question the assistant has open.

The open question is read from the slots (set only by the consent and withdrawal actions) and
the step taken from the one transition table of actions/consent_states.py. With none open, a
yes or no is small talk. Keeping this in one action, rather than in rules conditioned on the
slot, means the dialogue policy never has to predict across a slot that the answering action
itself changes.
"""

from __future__ import annotations

from typing import Any, Dict, List

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.consent import consent_step
from actions.consent_states import (
    Event,
    Step,
    event_of,
    state_of,
    transition,
)
from actions.notices import notice_answer
from actions.session import SAID_IN_PASSING, same_person_step
from actions.withdrawal import withdrawal_step
from actions.worker import ServiceAction


def last_question(tracker: Tracker) -> str | None:
    """The response name of the assistant's latest message, if it was a domain response.

    Args:
        tracker: The conversation.

    Returns:
        e.g. `utter_ask_same_person`, or None when the latest bot message was not a response.
    """
    for event in reversed(tracker.events):
        if event.get("event") == "bot":
            utter = (event.get("metadata") or {}).get("utter_action")
            # Said between a question and its answer: the privacy notice (issue 19), and the
            # unseen notices of a new session (issue 17).
            if utter in SAID_IN_PASSING:
                continue
            return str(utter) if utter else None
    return None


class ActionHandleYesNo(ServiceAction):
    """Route `affirm` and `deny`."""

    def name(self) -> str:
        """Return the action's name in the domain."""
        return "action_handle_yes_no"

    def step(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]
    ) -> List[Dict[str, Any]]:
        """Answer the open question, or acknowledge when there is none."""
        # Only affirm and deny come here (data/rules.yml). Should the policy send anything else,
        # it takes its own row of the table (a give_consent at the read-back is read back
        # again, never submitted), and a message the flow does not take counts as a no.
        # Issue 17: a yes or no to the notice of a subscription, while it is the latest question.
        answered = notice_answer(dispatcher, tracker, domain)
        if answered is not None:
            return answered
        event = event_of(tracker) or Event.NO
        row = transition(state_of(tracker, last_question(tracker)), event)
        if row.step is Step.CONFIRM_SAME_PERSON or row.step is Step.NOT_SAME_PERSON:
            # A typed はい/いいえ at the same-person question counts as its buttons, and answers
            # nothing else: never a consent or withdrawal question left open before it.
            return same_person_step(dispatcher, same=row.step is Step.CONFIRM_SAME_PERSON)
        if row.step is Step.WITHDRAWAL:
            return withdrawal_step(dispatcher, tracker)
        if row.step is Step.SMALL_TALK:
            response = "utter_deny" if event is Event.NO else "utter_affirm"
            dispatcher.utter_message(response=response)
            return []
        return consent_step(dispatcher, tracker, domain, row)
