"""Yes and no: they answer whichever question the assistant has open.

The open question is in the `consent_pending` slot (set only by the consent and withdrawal
actions). With none open, a yes or no is small talk. Keeping this in one action, rather than in
rules conditioned on the slot, means the dialogue policy never has to predict across a slot that
the answering action itself changes.
"""

from __future__ import annotations

from typing import Any, Dict, List

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.consent import consent_step
from actions.consent_common import PENDING, RESUMED
from actions.privacy import NOTICE as PRIVACY_NOTICE
from actions.session import same_person_step
from actions.withdrawal import withdrawal_step
from actions.worker import ServiceAction

SAME_PERSON_QUESTION = "utter_ask_same_person"


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
            if utter == PRIVACY_NOTICE:  # said between a question and its answer (issue 19)
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
        intent = (tracker.latest_message.get("intent") or {}).get("name")
        if tracker.get_slot(RESUMED) and last_question(tracker) == SAME_PERSON_QUESTION:
            # A typed はい/いいえ at the same-person question counts as its buttons, and answers
            # nothing else: never a consent or withdrawal question left open before it.
            return same_person_step(dispatcher, same=intent == "affirm")
        pending = tracker.get_slot(PENDING)
        if pending == "consent":
            return consent_step(dispatcher, tracker, domain)
        if pending == "withdrawal":
            return withdrawal_step(dispatcher, tracker)
        dispatcher.utter_message(response="utter_affirm" if intent == "affirm" else "utter_deny")
        return []
