"""Withdrawing and reviewing consent: as easy as giving it.

Withdrawal lists the resident's active consents as buttons, confirms the chosen one, withdraws
it and shows the withdrawal receipt. A consent chosen from the list can only be withdrawn by the
subject it belongs to (the service checks the pseudonym too).

A consent can also be withdrawn by its receipt code (issue #14), from any channel and sender: a
browser whose storage was cleared, LINE for a web consent. Whoever holds the code may stop the
provision (withdrawal is the safe direction); the confirmation names only the offer and its
status. A mistyped code (the check symbol) is answered without asking the service; an unknown
one is answered by the service, which counts wrong codes per requester (429
`too_many_wrong_codes`).
"""

from __future__ import annotations

import uuid
from typing import Any, Dict, List

from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions import consent_common as c
from actions.consent_client import (
    ConsentRefused,
    ConsentServiceUnavailable,
    Refusal,
    get_client,
    valid_consent_id,
)
from actions.consent_states import Pending
from actions.worker import ServiceAction
from bot.receipt_code import NOTHING, CodeInText, find_code

Events = List[Dict[str, Any]]
MAX_BUTTONS = 13
MAX_LISTED = 10
# The receipt code of the consent the open withdrawal question is about (set only here).
WITHDRAW_CODE = "withdraw_receipt_code"
CODE_INTENT = "inform_receipt_code"
# The service's reasons for refusing a code, and the answer each gets (nothing else is told).
CODE_REFUSALS: Dict[str, str] = {
    Refusal.INVALID_RECEIPT_CODE: "utter_withdraw_code_mistyped",
    Refusal.UNKNOWN_RECEIPT_CODE: "utter_withdraw_code_unknown",
    Refusal.TOO_MANY_WRONG_CODES: "utter_withdraw_code_too_many",
}


def _offers() -> Dict[str, Dict[str, Any]]:
    return {o["offer_id"]: o for o in get_client().offers()}


def _title(offers: Dict[str, Dict[str, Any]], offer_id: str) -> str:
    return str(offers.get(offer_id, {}).get("title_ja") or offer_id)


def _code_of(consent: Dict[str, Any]) -> str:
    """What a consent is named by after 受付番号: its receipt code (the id if it has none)."""
    return str(consent.get("receipt_code") or consent["receipt_id"])


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
    pending = tracker.get_slot(c.PENDING) == Pending.WITHDRAWAL.value
    channel, subject = c.resident(tracker)
    try:
        if intent in ("withdraw_consent", CODE_INTENT):
            chosen = c.latest_entity(tracker, "consent_id")
            if chosen:
                return _confirm(dispatcher, subject, chosen)
            typed = code_in(tracker)
            if typed.found or intent == CODE_INTENT:
                return _confirm_code(dispatcher, subject, typed)
            if not pending or not c.typed_wish(tracker, c.WITHDRAW_YES):
                return _choose(dispatcher, subject)
            # "取り消します" typed at the open confirmation instead of pressing 取り消す: a yes.
            # (Anything else — 「取り消しません」, a sentence naming another consent — lists them.)
        if pending and intent in ("affirm", "withdraw_consent"):
            code = tracker.get_slot(WITHDRAW_CODE)
            if not tracker.get_slot(c.WITHDRAW) and code:
                return _withdraw_code(dispatcher, subject, channel, str(code))
            return _withdraw(dispatcher, subject, tracker.get_slot(c.WITHDRAW))
        if pending and intent == "deny":
            dispatcher.utter_message(response="utter_withdraw_cancelled")
            return [
                SlotSet(c.PENDING, None),
                SlotSet(c.WITHDRAW, None),
                SlotSet(WITHDRAW_CODE, None),
            ]
    except ConsentServiceUnavailable:
        dispatcher.utter_message(response="utter_consent_service_down_generic")
        return []
    dispatcher.utter_message(response="utter_consent_nothing_pending")
    return [SlotSet(c.PENDING, None)] if pending else []


def code_in(tracker: Tracker) -> CodeInText:
    """The receipt code of the latest message: its `receipt_code` entity, else its text.

    The text is searched too because a code is nine random symbols: the classifier may well
    tag only part of it, whereas bot/receipt_code.py finds it however it was typed.
    """
    entity = c.latest_entity(tracker, "receipt_code")
    if entity:
        found = find_code(entity)
        if found.code:
            return found
    text = tracker.latest_message.get("text")
    return find_code(text) if isinstance(text, str) else NOTHING


def _choose(dispatcher: CollectingDispatcher, subject: str) -> Events:
    """Offer the active consents as buttons; with none here, ask for a receipt code."""
    active = _active(subject)
    if not active:
        # Consents given in another browser, on LINE or before the storage was cleared are not
        # this sender's: their receipt code still withdraws them.
        dispatcher.utter_message(response="utter_withdraw_ask_code")
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
        receipt_id=_code_of(found[0]),
    )
    return [SlotSet(c.PENDING, Pending.WITHDRAWAL.value), SlotSet(c.WITHDRAW, consent_id)]


def _confirm_code(dispatcher: CollectingDispatcher, subject: str, typed: CodeInText) -> Events:
    """Ask before withdrawing the consent a receipt code names (naming only offer and status)."""
    ended: Events = [
        SlotSet(c.PENDING, None),
        SlotSet(c.WITHDRAW, None),
        SlotSet(WITHDRAW_CODE, None),
    ]
    if typed.code is None:
        # A typo is caught by the check symbol here, without a call; no code at all: ask for it.
        response = "utter_withdraw_code_mistyped" if typed.mistyped else "utter_withdraw_ask_code"
        dispatcher.utter_message(response=response)
        return ended
    try:
        found = get_client().receipt_code(typed.code, subject)
    except ConsentRefused as refusal:
        dispatcher.utter_message(response=_code_refusal(refusal))
        return ended
    title = str(found.get("offer_title_ja") or found.get("offer_id") or "")
    if found.get("status") != "active":
        dispatcher.utter_message(response="utter_withdraw_code_already", receipt_code=typed.code)
        return ended
    dispatcher.utter_message(
        response="utter_withdraw_code_confirm", receipt_code=typed.code, title=title
    )
    return [
        SlotSet(c.PENDING, Pending.WITHDRAWAL.value),
        SlotSet(c.WITHDRAW, None),
        SlotSet(WITHDRAW_CODE, typed.code),
    ]


def _code_refusal(refusal: ConsentRefused) -> str:
    """The answer to a refused code: mistyped, unknown or too many tries; never anything more."""
    return CODE_REFUSALS.get(refusal.reason, "utter_withdraw_code_unknown")


def _withdraw_code(
    dispatcher: CollectingDispatcher, subject: str, channel: str, code: str
) -> Events:
    """Withdraw by receipt code at once and show the withdrawal receipt with its own code."""
    done: Events = [
        SlotSet(c.PENDING, None),
        SlotSet(c.WITHDRAW, None),
        SlotSet(WITHDRAW_CODE, None),
    ]
    try:
        result = get_client().withdraw_by_code(
            code, subject, channel, idempotency_key=f"withdraw-code-{uuid.uuid4().hex}"
        )
    except ConsentRefused as refusal:
        if refusal.reason == "already_withdrawn":
            dispatcher.utter_message(response="utter_withdraw_code_already", receipt_code=code)
        else:
            dispatcher.utter_message(response=_code_refusal(refusal))
        return done
    _receipt(dispatcher, result)
    return done


def _receipt(dispatcher: CollectingDispatcher, result: Dict[str, Any]) -> None:
    """Show a withdrawal receipt: its code to write down, and its id."""
    receipt = result["receipt"]
    dispatcher.utter_message(
        response="utter_withdraw_done",
        receipt_id=receipt["receipt_id"],
        # A service that has not issued a code yet: the receipt's id stands in for it.
        receipt_code=receipt.get("receipt_code") or receipt["receipt_id"],
    )


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
    _receipt(dispatcher, result)
    return done


class ActionWithdrawalFlow(ServiceAction):
    """`withdraw_consent`: list the active consents, or confirm the chosen one."""

    def name(self) -> str:
        """Return the action's name in the domain."""
        return "action_withdrawal_flow"

    def step(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]
    ) -> Events:
        """List or confirm, as the conversation's state allows."""
        return withdrawal_step(dispatcher, tracker)


class ActionListConsents(ServiceAction):
    """`list_consents`: the resident's consents, active and withdrawn, with receipt ids."""

    def name(self) -> str:
        """Return the action's name in the domain."""
        return "action_list_consents"

    def step(
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
                receipt_id=_code_of(h),
            )
            for h in history[-MAX_LISTED:]
        ]
        dispatcher.utter_message(response="utter_consents_list", lines="\n".join(lines))
        return []
