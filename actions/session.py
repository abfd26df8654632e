"""Session start (notices seen at the next visit, issue 17) and shared screens (issue #14).

`action_session_start` starts every Rasa session as Rasa's own does (the slots carried over, as
`carry_over_slots_to_new_session` says), and then, in the web chat and REST (which cannot be
pushed to), shows the notices staff sent on the resident's topics since they subscribed that they
have not seen (`GET .../notices/unseen`, at most 3, oldest first) and records them as seen
(`POST .../notices/seen`), so each is shown once. LINE residents get notices on LINE instead.
A slow or absent consent service delays nobody's session by more than one call: the notices wait
for the next session. Nothing in the notice lookup ever fails the session start: whatever goes
wrong, the session starts as Rasa's own would, without the notices.

The unseen notices (and the privacy notice) are said in passing: a question the assistant asked
before them (a read-back, the notice of a subscription) is still the open one, so a resident who
comes back after the session expired can answer it (`SAID_IN_PASSING`, read by
actions/yes_no.py and actions/notices.py).

A web chat session resumed from an earlier visit:

The web chat sends `/session_resumed` when a page resumes a session kept on the device (the
resident ticked 「この端末で続きを保存する」 on an earlier visit). From then until the resident says
they are the same person, the rules ask 「この端末をお使いなのはご本人ですか？」 before listing or
withdrawing consents (data/rules.yml), so the next person at a shared PC is not shown them.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any, Dict, List
from zoneinfo import ZoneInfo

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActionExecuted, SessionStarted, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions import consent_common as c
from actions.consent_client import ConsentRefused, ConsentServiceUnavailable, get_client
from actions.consent_common import RESUMED, clear_flow
from actions.privacy import NOTICE as PRIVACY_NOTICE
from actions.withdrawal import WITHDRAW_CODE
from actions.worker import ServiceAction

logger = logging.getLogger(__name__)
JST = ZoneInfo("Asia/Tokyo")
# Rasa sets this slot to the first message's metadata before the session starts; it is not
# carried over (on LINE it holds the sealed recipient of that message, fresh every time).
SESSION_METADATA = "session_started_metadata"
UNSEEN = "utter_notice_unseen"
UNSEEN_LINK = "utter_notice_unseen_link"
# Responses said between a question and its answer: never the assistant's latest question.
SAID_IN_PASSING = (PRIVACY_NOTICE, UNSEEN, UNSEEN_LINK)


def carried_over_slots(tracker: Tracker) -> List[Dict[str, Any]]:
    """The slots a new session keeps (`carry_over_slots_to_new_session: true`), as Rasa does."""
    return [
        SlotSet(name, value)
        for name, value in tracker.slots.items()
        if value is not None and name != SESSION_METADATA
    ]


def show_unseen_notices(
    dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]
) -> None:
    """Show a web chat or REST resident the notices of their topics they have not seen, once.

    Only a conversation that has had a message before can have subscribed (the subject is this
    channel's pseudonym of this sender); LINE residents are sent notices on LINE.
    """
    if tracker.get_latest_input_channel() in (None, "line"):
        return
    try:
        channel, subject = c.resident(tracker)
        if channel == "line":
            return
        client = get_client()
        notices = client.unseen_notices(subject)
    except (ConsentServiceUnavailable, ConsentRefused, RuntimeError, ValueError) as error:
        # A session always starts: the notices wait for the next one.
        logger.warning("Unseen notices not read: %s", type(error).__name__)
        return
    shown = []
    for notice in notices:
        if not isinstance(notice, dict):
            continue
        try:
            sent = dt.datetime.fromisoformat(str(notice["sent_at"]).replace("Z", "+00:00"))
            values = {
                "title": str(notice["title_ja"]),
                "notice_text": str(notice["text_ja"]),
                "month": sent.astimezone(JST).month,
                "day": sent.astimezone(JST).day,
            }
        except (KeyError, ValueError):
            continue
        link = notice.get("link_url")
        if isinstance(link, str) and link.startswith("https://"):
            dispatcher.utter_message(response=UNSEEN_LINK, link_url=link, **values)
        else:
            dispatcher.utter_message(response=UNSEEN, **values)
        shown.append(str(notice["notice_id"]))
    if not shown:
        return
    try:
        client.notices_seen(subject, shown)
    except (ConsentServiceUnavailable, ConsentRefused) as error:
        # Shown again at the next session: better twice than a notice lost.
        logger.warning("Notices not marked as seen: %s", type(error).__name__)


class ActionSessionStart(ServiceAction):
    """Start a session as Rasa does, then show the web chat's unseen notices (issue 17)."""

    def name(self) -> str:
        """Return the action's name in the domain."""
        return "action_session_start"

    def step(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]
    ) -> List[Dict[str, Any]]:
        """The session's start, the slots carried over, and the unseen notices said.

        Args:
            dispatcher: Where the notices go.
            tracker: The conversation.
            domain: The domain.

        Returns:
            `session_started`, the carried-over slots and `action_listen`, as Rasa's own.
        """
        started = [SessionStarted(), *carried_over_slots(tracker), ActionExecuted("action_listen")]
        notices = CollectingDispatcher()
        try:
            show_unseen_notices(notices, tracker, domain)
        except Exception as error:  # the session starts, whatever went wrong
            logger.error("Unseen notices not shown: %s", type(error).__name__)
            return started
        dispatcher.messages.extend(notices.messages)
        return started


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
