"""Answers that state how long this service keeps conversations (RETENTION_DAYS).

The greeting, the retention answer and the deletion answer name the number of days the
retention job (bot/retention.py) actually uses, read from the settings at the time of asking, so
the sentence cannot drift from the configuration. The wording is in domain.yml.
"""

from __future__ import annotations

from typing import Any, Dict, List

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from bot.settings import get_settings

# Which response answers which intent; anything else (a story that runs this action after
# another intent) gets the greeting.
RESPONSES = {
    "greet": "utter_greet",
    "ask_retention": "utter_retention",
    "ask_delete_data": "utter_delete_data",
}


def retention_days() -> str:
    """The retention period in days as residents read it ("90", or "7.5" for a fraction)."""
    days = get_settings().retention_days
    return str(int(days)) if float(days).is_integer() else str(days)


class ActionAnswerWithRetention(Action):
    """Answer `greet`, `ask_retention` and `ask_delete_data` with the configured retention."""

    def name(self) -> str:
        """Return the action's name in the domain."""
        return "action_answer_with_retention"

    def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]
    ) -> List[Dict[str, Any]]:
        """Send the intent's answer with the number of days filled in."""
        intent = (tracker.latest_message.get("intent") or {}).get("name")
        response = RESPONSES.get(str(intent), "utter_greet")
        dispatcher.utter_message(response=response, retention_days=retention_days())
        return []
