"""Linking the web chat and LINE of one resident with a one-time code (issue #14).

`link_channels` issues a code on this channel (8 digits, valid for minutes, once) and shows it
with its expiry and how to type it on the other channel. `inform_link_code` (the code typed on
the other channel) links the two pseudonyms in the consent service, after which both channels
list, and may withdraw, the same consents. `unlink_channels` undoes the link from either side.
The service never merges more than two pseudonyms and never rewrites a consent
(backend/consent_service/links.py); wrong codes count towards its wrong-code limit.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from typing import Any, Dict, List
from zoneinfo import ZoneInfo

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions import consent_common as c
from actions.consent_client import ConsentRefused, ConsentServiceUnavailable, Refusal, get_client
from actions.consent_common import RESUMED
from actions.worker import ServiceAction

Events = List[Dict[str, Any]]
JST = ZoneInfo("Asia/Tokyo")
# Eight digits, with at most one separator (hyphen, dash, long vowel mark, space) between any
# two, after NFKC (full-width digits). Longer digit runs, separated or not (a phone number such
# as 03-1234-5678), are not a code.
_SEP = r"[\s\-‐‑‒–—―−ーｰ]"
_CODE = re.compile(rf"(?<![0-9])(?<![0-9]{_SEP})((?:[0-9]{_SEP}?){{7}}[0-9])(?!{_SEP}?[0-9])")
# Shared screens (issue #14): the question that asks a resumed session who is at the screen
# (the slot it waits on is consent_common.RESUMED).
ASK_SAME_PERSON = "utter_ask_same_person"
CHANNEL_FRAGMENTS = {"web": "channel_web", "line": "channel_line", "rest": "channel_rest"}
# The service's refusals of a typed code, and the answer each gets.
REDEEM_REFUSALS: Dict[str, str] = {
    Refusal.INVALID_LINK_CODE: "utter_link_code_unknown",
    Refusal.UNKNOWN_LINK_CODE: "utter_link_code_unknown",
    Refusal.LINK_CODE_EXPIRED: "utter_link_code_expired",
    Refusal.LINK_CODE_USED: "utter_link_code_used",
    Refusal.SAME_CHANNEL: "utter_link_code_same_channel",
    Refusal.OWN_LINK_CODE: "utter_link_code_same_channel",
    Refusal.ALREADY_LINKED: "utter_link_already_linked",
    Refusal.TOO_MANY_WRONG_CODES: "utter_link_code_too_many",
}


def find_link_code(text: str) -> str | None:
    """The eight digits of a link code in a message, however it was typed.

    Args:
        text: The message.

    Returns:
        The digits, or None when the message holds no run of exactly eight digits.
    """
    found = _CODE.search(unicodedata.normalize("NFKC", text))
    return re.sub(r"[^0-9]", "", found.group(1)) if found else None


def resumed_elsewhere(
    dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]
) -> bool:
    """In a web chat session resumed from an earlier visit, ask who is at the screen first.

    Linking from a shared screen would hand the previous resident's consents to whoever's LINE
    account is linked, so while the slot `session_resumed` is true (shared screens, issue #14)
    the question the web chat asks before listing consents is asked instead, when the domain
    has it.

    Returns:
        True when the question was asked (and nothing else must happen).
    """
    if tracker.get_slot(RESUMED) is True and ASK_SAME_PERSON in domain.get("responses", {}):
        dispatcher.utter_message(response=ASK_SAME_PERSON)
        return True
    return False


def _expiry(expires_at: str) -> tuple[str, int]:
    """The expiry as Japan time (HH:MM) and the whole minutes left from now."""
    when = dt.datetime.fromisoformat(expires_at.replace("Z", "+00:00"))
    left = (when - dt.datetime.now(dt.timezone.utc)).total_seconds()
    return when.astimezone(JST).strftime("%H:%M"), max(1, round(left / 60))


class ActionIssueLinkCode(ServiceAction):
    """`link_channels`: issue a one-time code here, to be typed on the other channel."""

    def name(self) -> str:
        """Return the action's name in the domain."""
        return "action_issue_link_code"

    def step(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]
    ) -> Events:
        """Show the code, its expiry and where to type it; or say the link already exists."""
        if resumed_elsewhere(dispatcher, tracker, domain):
            return []
        channel, subject = c.resident(tracker)
        try:
            issued = get_client().issue_link_code(subject, channel)
        except ConsentServiceUnavailable:
            dispatcher.utter_message(response="utter_consent_service_down_generic")
            return []
        except ConsentRefused as refusal:
            response = (
                "utter_link_already_linked"
                if refusal.known is Refusal.ALREADY_LINKED
                else "utter_consent_service_down_generic"
            )
            dispatcher.utter_message(response=response)
            return []
        until, minutes = _expiry(str(issued["expires_at"]))
        other = "line" if channel != "line" else "web"
        dispatcher.utter_message(
            response="utter_link_code_issued",
            link_code=issued["code"],
            until=until,
            minutes=minutes,
            other_channel=c.fragment(domain, CHANNEL_FRAGMENTS[other]),
        )
        return []


class ActionRedeemLinkCode(ServiceAction):
    """`inform_link_code`: link this channel with the one that showed the code."""

    def name(self) -> str:
        """Return the action's name in the domain."""
        return "action_redeem_link_code"

    def step(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]
    ) -> Events:
        """Link, or say why not (unknown, expired, used, same channel, already linked)."""
        if resumed_elsewhere(dispatcher, tracker, domain):
            return []
        text = tracker.latest_message.get("text")
        code = find_link_code(text) if isinstance(text, str) else None
        if code is None:
            dispatcher.utter_message(response="utter_link_ask_code")
            return []
        channel, subject = c.resident(tracker)
        try:
            linked = get_client().redeem_link_code(subject, channel, code)
        except ConsentServiceUnavailable:
            dispatcher.utter_message(response="utter_consent_service_down_generic")
            return []
        except ConsentRefused as refusal:
            dispatcher.utter_message(
                response=REDEEM_REFUSALS.get(refusal.reason, "utter_link_code_unknown")
            )
            return []
        partner = str(linked.get("partner_channel") or "")
        dispatcher.utter_message(
            response="utter_link_done",
            other_channel=c.fragment(domain, CHANNEL_FRAGMENTS.get(partner, "channel_rest")),
        )
        return []


class ActionUnlinkChannels(ServiceAction):
    """`unlink_channels`: undo the link; each channel lists only its own consents again."""

    def name(self) -> str:
        """Return the action's name in the domain."""
        return "action_unlink_channels"

    def step(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]
    ) -> Events:
        """Unlink, or say there is no link."""
        _, subject = c.resident(tracker)
        try:
            get_client().unlink(subject)
        except ConsentServiceUnavailable:
            dispatcher.utter_message(response="utter_consent_service_down_generic")
            return []
        except ConsentRefused:
            dispatcher.utter_message(response="utter_unlink_not_linked")
            return []
        dispatcher.utter_message(response="utter_unlink_done")
        return []
