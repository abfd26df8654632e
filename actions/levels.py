"""Explaining the data levels 0-3, and which level one data item is."""

from __future__ import annotations

import unicodedata
from typing import Any, Dict, List

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

# The canonical `data_item` values of docs/contract.md. Each has a response
# `utter_item_level_<item>` in domain.yml naming its level and what that level means.
DATA_ITEMS = (
    "steps",
    "weight",
    "body_fat",
    "body_temperature",
    "blood_pressure",
    "pulse",
    "health_checkup",
    "medical_history",
    "vaccination",
    "claims",
    "other_test_results",
    "gut_bacteria",
    "oral_bacteria",
    "genetic",
    "location",
    "statistics",
)
# Level 3 (seed: レベル２情報に含まれない検査結果、腸内細菌、口腔内細菌、遺伝子情報): never handled.
LEVEL3_ITEMS = ("other_test_results", "gut_bacteria", "oral_bacteria", "genetic")
LEVELS = ("0", "1", "2", "3")
# A resident who names many items at once gets the first few; the rest would flood a phone screen.
MAX_ITEMS_PER_ANSWER = 3


def latest_entity_values(tracker: Tracker, entity: str) -> List[str]:
    """Return the distinct values of one entity in the latest message, in order of appearance.

    Only the latest message counts: an item asked about earlier must not answer a new question.

    Args:
        tracker: The conversation so far.
        entity: The entity type.

    Returns:
        The values, without repeats (two extractors may report the same one).
    """
    entities = sorted(
        (e for e in tracker.latest_message.get("entities", []) if e.get("entity") == entity),
        key=lambda e: e.get("start", 0),
    )
    values: List[str] = []
    for found in entities:
        value = str(found.get("value"))
        if value not in values:
            values.append(value)
    return values


def normalise_level(value: str) -> str | None:
    """Turn an extracted level mention ("2", "レベル２", "れべる2") into "0".."3".

    Args:
        value: The entity value after synonym mapping.

    Returns:
        The level as a one-character string, or None when the value names no level 0-3.
    """
    digits = [c for c in unicodedata.normalize("NFKC", value) if c.isdigit()]
    if len(digits) == 1 and digits[0] in LEVELS:
        return digits[0]
    return None


class ActionExplainDataLevels(Action):
    """Answer `ask_data_levels`: one level in detail when named, else the overview."""

    def name(self) -> str:
        """Return the action's name in the domain."""
        return "action_explain_data_levels"

    def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]
    ) -> List[Dict[str, Any]]:
        """Send the level's detail or the overview of all four."""
        levels = [
            level
            for level in (normalise_level(v) for v in latest_entity_values(tracker, "data_level"))
            if level is not None
        ]
        if not levels:
            dispatcher.utter_message(response="utter_data_levels")
            return []
        for level in levels:
            dispatcher.utter_message(response=f"utter_data_level_{level}")
        return [SlotSet("data_level", levels[0])]


class ActionExplainDataItemLevel(Action):
    """Answer `ask_data_item_level`: the level of each item named in the message."""

    def name(self) -> str:
        """Return the action's name in the domain."""
        return "action_explain_data_item_level"

    def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]
    ) -> List[Dict[str, Any]]:
        """Name each item's level, or ask which item is meant."""
        items = [v for v in latest_entity_values(tracker, "data_item") if v in DATA_ITEMS]
        if not items:
            dispatcher.utter_message(response="utter_ask_which_item")
            return []
        for item in items[:MAX_ITEMS_PER_ANSWER]:
            dispatcher.utter_message(response=f"utter_item_level_{item}")
        return [SlotSet("data_item", items[0])]
