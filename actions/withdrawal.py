"""Withdrawing and reviewing consent: as easy as giving it.

Withdrawal lists the resident's active consents as buttons, confirms the chosen one, withdraws
it and shows the withdrawal receipt. A consent can only be withdrawn by the subject it belongs to
(the service checks the pseudonym too).
"""

from __future__ import annotations

from typing import Any, Dict, List

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions import consent_common as c
from actions.consent_client import (
    ConsentRefused,
    ConsentServiceUnavailable,
    get_client,
    valid_consent_id,
)

Events = List[Dict[str, Any]]
MAX_BUTTONS = 13
MAX_LISTED = 10


def _offers() -> Dict[str, Dict[str, Any]]:
    return {o["offer_id"]: o for o in get_client().offers()}


def _title(offers: Dict[str, Dict[str, Any]], offer_id: str) -> str:
    return str(offers.get(offer_id, {}).get("title_ja") or offer_id)


def _active(subject: str, consent_id: str | None = None) -> List[Dict[str, Any]]:
    return [
        h
        for h in get_client().consents(subject)
        if h["status"] == "active" and (consent_id is None or h["consent_id"] == consent_id)
    ]


def withdrawal_step(dispatcher: CollectingDispatcher, tracker: Tracker) -> Events:
    """Take the next step of a withdrawal for the latest message (also a yes or a no).

    Args:
        dispatcher: Where the answers go.
        tracker: The conversation, whose slots hold the withdrawal's state.

    Returns:
        The slot events of the step.
    """
    intent = (tracker.latest_message.get("intent") or {}).get("name")
    pending = tracker.get_slot(c.PENDING) == "withdrawal"
    _, subject = c.resident(tracker)
    try:
        if intent == "withdraw_consent":
            chosen = c.latest_entity(tracker, "consent_id")
            return _confirm(dispatcher, subject, chosen) if chosen else _choose(dispatcher, subject)
        if pending and intent == "affirm":
            return _withdraw(dispatcher, subject, tracker.get_slot(c.WITHDRAW))
        if pending and intent == "deny":
            dispatcher.utter_message(response="utter_withdraw_cancelled")
            return [SlotSet(c.PENDING, None), SlotSet(c.WITHDRAW, None)]
    except ConsentServiceUnavailable:
        dispatcher.utter_message(response="utter_consent_service_down_generic")
        return []
    dispatcher.utter_message(response="utter_consent_nothing_pending")
    return [SlotSet(c.PENDING, None)] if pending else []


def _choose(dispatcher: CollectingDispatcher, subject: str) -> Events:
    """Offer the active consents as buttons."""
    active = _active(subject)
    if not active:
        dispatcher.utter_message(response="utter_withdraw_none")
        return [SlotSet(c.PENDING, None)]
    offers = _offers()
    buttons = [
        {
            "title": _title(offers, h["offer_id"])[:20],
            "payload": f'/withdraw_consent{{"consent_id": "{h["consent_id"]}"}}',
        }
        for h in active[-MAX_BUTTONS:]
    ]
    dispatcher.utter_message(response="utter_withdraw_choose", buttons=buttons)
    return [SlotSet(c.PENDING, None)]


def _confirm(dispatcher: CollectingDispatcher, subject: str, consent_id: str) -> Events:
    """Ask before withdrawing the chosen consent (only the subject's own, active one)."""
    # A typed id of the wrong shape is unknown: answered without asking the service anything.
    found = _active(subject, consent_id) if valid_consent_id(consent_id) else []
    if not found:
        dispatcher.utter_message(response="utter_withdraw_unknown")
        return [SlotSet(c.PENDING, None), SlotSet(c.WITHDRAW, None)]
    offers = _offers()
    offer = offers.get(found[0]["offer_id"], {})
    dispatcher.utter_message(
        response="utter_withdraw_confirm",
        title=_title(offers, found[0]["offer_id"]),
        recipient=(offer.get("recipient") or {}).get("name_ja", ""),
        receipt_id=found[0]["receipt_id"],
    )
    return [SlotSet(c.PENDING, "withdrawal"), SlotSet(c.WITHDRAW, consent_id)]


def _withdraw(dispatcher: CollectingDispatcher, subject: str, consent_id: str | None) -> Events:
    """Withdraw at once and show the withdrawal receipt."""
    done: Events = [SlotSet(c.PENDING, None), SlotSet(c.WITHDRAW, None)]
    if not consent_id:
        dispatcher.utter_message(response="utter_consent_nothing_pending")
        return done
    try:
        result = get_client().withdraw(consent_id, subject)
    except ConsentRefused:
        dispatcher.utter_message(response="utter_withdraw_unknown")
        return done
    dispatcher.utter_message(
        response="utter_withdraw_done", receipt_id=result["receipt"]["receipt_id"]
    )
    return done


class ActionWithdrawalFlow(Action):
    """`withdraw_consent`: list the active consents, or confirm the chosen one."""

    def name(self) -> str:
        """Return the action's name in the domain."""
        return "action_withdrawal_flow"

    def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]
    ) -> Events:
        """List or confirm, as the conversation's state allows."""
        return withdrawal_step(dispatcher, tracker)


class ActionListConsents(Action):
    """`list_consents`: the resident's consents, active and withdrawn, with receipt ids."""

    def name(self) -> str:
        """Return the action's name in the domain."""
        return "action_list_consents"

    def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]
    ) -> Events:
        """Send the list (the newest few), or say there is none."""
        _, subject = c.resident(tracker)
        try:
            history = get_client().consents(subject)
            offers = _offers() if history else {}
        except ConsentServiceUnavailable:
            dispatcher.utter_message(response="utter_consent_service_down_generic")
            return []
        if not history:
            dispatcher.utter_message(response="utter_consents_none")
            return []
        lines = [
            c.fragment(
                domain,
                "consent_line",
                title=_title(offers, h["offer_id"]),
                status=c.fragment(domain, f"status_{h['status']}"),
                receipt_id=h["receipt_id"],
            )
            for h in history[-MAX_LISTED:]
        ]
        dispatcher.utter_message(response="utter_consents_list", lines="\n".join(lines))
        return []
