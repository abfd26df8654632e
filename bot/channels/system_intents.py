"""Every intent a channel sends to Rasa on its own, in one table (issue 20).

A system intent is not a resident's words: the channel sends it as `/<name>` (Rasa then skips the
NLU) for an event it received — a LINE follow or unfollow, a web chat session starting or
resuming, input it will not pass on (a sticker, over-long text, a flood) or details it masked out
of a message. Typed text never becomes one (bot/channels/guard.py). The names are the domain's
intents (domain.yml), never renamed here; the buttons the assistant offers and the web page's
own buttons (`webchat.PAGE_PAYLOADS`) are not system intents: a resident chooses them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from types import MappingProxyType

from rasa.shared.constants import INTENT_MESSAGE_PREFIX

GREET = "greet"
NON_TEXT_MESSAGE = "non_text_message"
MESSAGE_TOO_LONG = "message_too_long"
TOO_MANY_MESSAGES = "too_many_messages"
PERSONAL_DETAIL_REMOVED = "personal_detail_removed"
SESSION_RESUMED = "session_resumed"
LINE_UNFOLLOWED = "line_unfollowed"
# The entity of `personal_detail_removed` naming each kind of detail removed (docs/contract.md).
DETAIL_KIND = "detail_kind"

# Which channel sends each system intent, and when.
SYSTEM_INTENTS: Mapping[str, str] = MappingProxyType(
    {
        GREET: "LINE: a `follow` event; web chat: `session_start` (residents may also type it)",
        NON_TEXT_MESSAGE: "LINE: a sticker, image, location or other non-text message, or blanks",
        MESSAGE_TOO_LONG: "LINE, web chat: typed text or a payload over `MAX_TYPED_CHARACTERS`",
        TOO_MANY_MESSAGES: "LINE, web chat: the first message over the rate limit",
        PERSONAL_DETAIL_REMOVED: (
            "LINE, web chat, REST: before a message personal details were masked out of, with "
            "one `detail_kind` entity per kind"
        ),
        SESSION_RESUMED: "web chat: `session_resume`, a page resuming a token kept on the device",
        LINE_UNFOLLOWED: "LINE: an `unfollow` event (no answer goes to LINE)",
    }
)


def system_message(intent: str) -> str:
    """The text a channel hands Rasa for one of its system intents.

    Args:
        intent: A name of `SYSTEM_INTENTS`.

    Returns:
        `/<intent>`, which Rasa takes as that intent without the NLU.

    Raises:
        ValueError: For a name that is not in the table (a channel must not invent intents).
    """
    if intent not in SYSTEM_INTENTS:
        raise ValueError(f"not a system intent: {intent}")
    return f"{INTENT_MESSAGE_PREFIX}{intent}"


def removal_message(kinds: Iterable[str]) -> str:
    """The `personal_detail_removed` message naming the kinds of detail removed.

    Args:
        kinds: The kinds' names, sorted and each once (`guard.removal_notice` prepares them).

    Returns:
        e.g. `/personal_detail_removed{"detail_kind": ["name", "phone"]}`.
    """
    entities = json.dumps({DETAIL_KIND: list(kinds)})
    return f"{system_message(PERSONAL_DETAIL_REMOVED)}{entities}"
