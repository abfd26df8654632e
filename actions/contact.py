"""The city's contact route, for residents who want a person or whom the assistant cannot help."""

from __future__ import annotations

from typing import Any, Dict, List

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from bot.settings import get_settings


def utter_city_contact(dispatcher: CollectingDispatcher) -> None:
    """Send the city's contact details, or where to find them when none are configured.

    The details come only from settings (`CITY_CONTACT_*`); the assistant never makes them up.

    Args:
        dispatcher: Where the message goes.
    """
    settings = get_settings()
    if settings.has_city_contact():
        dispatcher.utter_message(
            response="utter_contact_city",
            contact_name=settings.city_contact_name,
            contact_phone=settings.city_contact_phone,
            contact_hours=settings.city_contact_hours,
        )
    else:
        dispatcher.utter_message(response="utter_contact_city_unconfigured")


class ActionContactCity(Action):
    """Answer `request_staff`: how to reach a person at city hall."""

    def name(self) -> str:
        """Return the action's name in the domain."""
        return "action_contact_city"

    def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]
    ) -> List[Dict[str, Any]]:
        """Send the contact route."""
        utter_city_contact(dispatcher)
        return []
