"""Shared screens (issue #14): a web chat session resumed from an earlier visit.

The web chat sends `/session_resumed` when a page resumes a session kept on the device (the
resident ticked 「この端末で続きを保存する」 on an earlier visit). From then until the resident says
they are the same person, the rules ask 「この端末をお使いなのはご本人ですか？」 before listing or
withdrawing consents (data/rules.yml), so the next person at a shared PC is not shown them.
"""

from __future__ import annotations

from typing import Any, Dict, List

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.consent_common import RESUMED, clear_flow
from actions.withdrawal import WITHDRAW_CODE


class ActionSessionResumed(Action):
    """Mark the conversation as resumed and say that it continues an earlier one."""

    def name(self) -> str:
        """Return the action's name in the domain."""
        return "action_session_resumed"

    def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]
    ) -> List[Dict[str, Any]]:
        """Set `session_resumed` and tell the resident how to start afresh.

        Args:
            dispatcher: Where the answer goes.
            tracker: The conversation.
            domain: The domain.

        Returns:
            The slot event.
        """
        dispatcher.utter_message(response="utter_session_resumed")
        # A question left open on an earlier visit is closed: whoever sits here now must not
        # answer the previous resident's read-back or withdrawal confirmation with a はい.
        return [SlotSet(RESUMED, True), *clear_flow(), SlotSet(WITHDRAW_CODE, None)]


class ActionConfirmSamePerson(Action):
    """The resident says they are the same person: consents may be listed and withdrawn."""

    def name(self) -> str:
        """Return the action's name in the domain."""
        return "action_confirm_same_person"

    def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]
    ) -> List[Dict[str, Any]]:
        """Clear `session_resumed` and offer the consent requests again.

        Args:
            dispatcher: Where the answer goes.
            tracker: The conversation.
            domain: The domain.

        Returns:
            The slot event.
        """
        return same_person_step(dispatcher, same=True)


def same_person_step(dispatcher: CollectingDispatcher, same: bool) -> List[Dict[str, Any]]:
    """Answer 「この端末をお使いなのはご本人ですか？」, by button or typed yes/no.

    Args:
        dispatcher: Where the answer goes.
        same: Whether the resident said they are the same person.

    Returns:
        The slot event (only when they are: consents may then be listed and withdrawn).
    """
    if not same:
        dispatcher.utter_message(response="utter_not_same_person")
        return []
    dispatcher.utter_message(response="utter_same_person_confirmed")
    return [SlotSet(RESUMED, False)]
