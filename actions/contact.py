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


class ActionAnswerNoFamilyDoctor(Action):
    """Answer `ask_no_family_doctor`: the professionals the seed names, and a configured centre.

    The seed names 医師・歯科医師・薬剤師・保健師 as the medical professionals; a health centre is
    offered only when the deployment configured one (`CITY_HEALTH_CENTRE_NAME`/`_PHONE`).
    """

    def name(self) -> str:
        """Return the action's name in the domain."""
        return "action_answer_no_family_doctor"

    def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]
    ) -> List[Dict[str, Any]]:
        """Send the answer, then the health centre when one is configured."""
        dispatcher.utter_message(response="utter_no_family_doctor")
        settings = get_settings()
        if settings.has_health_centre():
            dispatcher.utter_message(
                response="utter_health_centre",
                centre_name=settings.city_health_centre_name,
                centre_phone=settings.city_health_centre_phone,
            )
        return []
