"""Personal details removed at intake (issue 19): tell the resident once per conversation.

The channels mask names, addresses, phone numbers and the like before Rasa sees a message
(bot/channels/guard.py) and, when they removed something, send
`/personal_detail_removed{"detail_kind": [...]}` first. This action says which kinds were
removed, that the chat does not need them and that they were not kept
(`utter_personal_detail_removed`, the kinds named by `utter_fragment_detail_<kind>`); the masked
message then follows as a turn of its own and is answered as usual. The removed text never
reaches Rasa, so nothing here can repeat it.

"Once per conversation" is read from the conversation itself: the notice is said unless it was
already said since the session began. A slot would not do: slots carry over to a new session
(`carry_over_slots_to_new_session`), so a resident returning the next day would never hear it.
The action sets no slot and returns no events, so the dialogue state of an open question (the
consent read-back, a withdrawal) is exactly as it was before the notice.
"""

from __future__ import annotations

from typing import Any, Dict, List

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.consent_common import fragment, join, plain_mode

NOTICE = "utter_personal_detail_removed"
DETAIL_KIND = "detail_kind"
# The kinds the channels name (bot.privacy.DetailKind), in the order the notice lists them.
KINDS = (
    "name",
    "address",
    "postal_code",
    "phone",
    "email",
    "birth_date",
    "my_number",
    "insurance_number",
    "health_value",
)


def removed_kinds(tracker: Tracker) -> List[str]:
    """The known kinds of detail the latest message says were removed, in `KINDS` order.

    Args:
        tracker: The conversation; its latest message is the channel's notice.

    Returns:
        The kinds, without repeats; unknown values are left out.
    """
    named = {
        str(e.get("value"))
        for e in tracker.latest_message.get("entities") or []
        if e.get("entity") == DETAIL_KIND
    }
    return [kind for kind in KINDS if kind in named]


def already_told(tracker: Tracker) -> bool:
    """Whether the notice was said in this conversation (since the session began).

    Args:
        tracker: The conversation.

    Returns:
        True when a bot message made from `utter_personal_detail_removed` follows the latest
        `session_started` event (or, without one, anywhere in the events).
    """
    for event in reversed(tracker.events):
        kind = event.get("event")
        if kind == "session_started":
            return False
        if kind == "bot" and (event.get("metadata") or {}).get("utter_action") == NOTICE:
            return True
    return False


class ActionPersonalDetailNotice(Action):
    """Say once per conversation which kinds of personal detail were removed."""

    def name(self) -> str:
        """Return the action's name in the domain."""
        return "action_personal_detail_notice"

    def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]
    ) -> List[Dict[str, Any]]:
        """Name the kinds removed, unless already told in this conversation.

        Args:
            dispatcher: Where the answer goes.
            tracker: The conversation.
            domain: The domain (the kinds' wording fragments).

        Returns:
            No events: the notice changes nothing in the dialogue state.
        """
        kinds = removed_kinds(tracker)
        if not kinds or already_told(tracker):
            return []
        plain = plain_mode(tracker)
        details = join(domain, (fragment(domain, f"detail_{kind}", plain) for kind in kinds))
        dispatcher.utter_message(response=NOTICE, details=details)
        return []
