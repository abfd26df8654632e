"""What happens when the assistant did not understand: ask again once, then offer a person."""

from __future__ import annotations

from typing import Any, Dict, List

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.contact import utter_city_contact
from actions.levels import LEVEL3_ITEMS, latest_entity_values

FALLBACK_INTENT = "nlu_fallback"
REMOVAL_NOTICE_INTENT = "personal_detail_removed"


def _is_removal_notice(event: Dict[str, Any]) -> bool:
    intent = (event.get("parse_data") or {}).get("intent") or {}
    return bool(intent.get("name") == REMOVAL_NOTICE_INTENT)


def previous_user_intent(tracker: Tracker) -> str | None:
    """Find the intent of the user message before the latest one.

    Args:
        tracker: The conversation so far.

    Returns:
        The intent name, or None when the latest message is the first one. The channels'
        `/personal_detail_removed` (issue 19) is not a message of the resident's and is skipped.
    """
    user_events = [
        event
        for event in tracker.events
        if event.get("event") == "user" and not _is_removal_notice(event)
    ]
    if len(user_events) < 2:
        return None
    intent = (user_events[-2].get("parse_data") or {}).get("intent") or {}
    name = intent.get("name")
    return str(name) if name else None


class ActionHandleFallback(Action):
    """Answer a message the NLU was not confident about.

    The first time, the resident is asked to rephrase (with topic buttons); when the message right
    before was not understood either, the assistant stops guessing and offers the city's contact
    route. The count is read from the conversation itself, so there is no slot to drift.
    """

    def name(self) -> str:
        """Return the action's name in the domain."""
        return "action_handle_fallback"

    def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]
    ) -> List[Dict[str, Any]]:
        """Ask to rephrase, or offer a person after a second miss in a row."""
        level3 = [i for i in latest_entity_values(tracker, "data_item") if i in LEVEL3_ITEMS]
        if level3:
            # Whatever was meant, a level-3 item must hear that it is not handled.
            for item in level3:
                dispatcher.utter_message(response=f"utter_item_level_{item}")
            return []
        if previous_user_intent(tracker) == FALLBACK_INTENT:
            dispatcher.utter_message(response="utter_fallback_contact")
            utter_city_contact(dispatcher)
        else:
            dispatcher.utter_message(response="utter_ask_rephrase")
        return []
