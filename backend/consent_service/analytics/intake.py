"""From an event as Rasa's event broker publishes it to the facts the console keeps.

Rasa publishes every new tracker event as `{"sender_id": ..., **event.as_dict()}`. Only what
the console shows or counts is kept, and every text is masked here, once:

- `user`: channel, intent and its confidence, the masked text (a button press as `/intent`,
  without its entities);
- `bot`: the response it was made from (`metadata.utter_action`) and the masked text;
- `action` (but `action_listen`): the action's name;
- `slot`: only FUNNEL_SLOT and only one of its known answers (the funnel's answer);
- `session_started`: that a new session began.

Everything else (other slots, loops, featurisation, ...) is dropped, and so is an event of a
kept kind whose fields do not have the types Rasa publishes (`well_formed`): such a message
could otherwise never be stored and would come back for ever (a poison message).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable
from typing import Any

FUNNEL_SLOT = "family_doctor_consulted"
FUNNEL_ANSWERS = ("consulted", "not_yet", "will_not")
KEPT = ("user", "bot", "action", "slot", "session_started")

Masker = Callable[[str], str]
NAME = re.compile(r"[A-Za-z0-9_]+")  # an intent's or an action's name (domain.yml)
NAME_MAX = 255  # the name columns of `AnalyticsEvent`
CHANNEL_MAX = 32
MARK = "［伏せ字］"  # staff.masking.MARK (not imported: no staff module at intake)


def event_key(event: dict[str, Any]) -> str:
    """The de-duplication key of an event: SHA-256 of its canonical JSON.

    Two deliveries of one published event are equal; two events differ at least in their
    timestamp (or, for user messages, in their message id).

    Args:
        event: The event as published (with `sender_id`).

    Returns:
        64 hex characters.
    """
    canonical = json.dumps(event, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def button_or_masked(text: str, hide: Masker) -> str:
    """A user's text as kept: a button payload as `/intent` (no entities), else masked.

    Only an intent's name survives of a text starting with "/": `/ask_x{"n": "..."}` is kept as
    `/ask_x`; anything after the name (entities, words) is dropped, and a "/" not followed by a
    name (`/山田太郎 090-...`, typed to the REST channel) is hidden whole.
    """
    if text.startswith("/"):
        name = NAME.match(text, 1)
        return "/" + name.group(0)[:NAME_MAX] if name else MARK
    return hide(text)


def _name(value: Any) -> str | None:
    """An intent's name as kept: a name of the domain's form, else hidden (never raw text)."""
    if value is None:
        return None
    return value[:NAME_MAX] if NAME.fullmatch(value) else MARK


def _number(value: Any) -> bool:
    """A finite JSON number (not a boolean)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _optional(value: Any, kind: type | tuple[type, ...]) -> bool:
    return value is None or isinstance(value, kind)


def well_formed(event: dict[str, Any]) -> bool:
    """Whether every field `facts` reads has the type Rasa publishes (absent is fine).

    Args:
        event: A published event of a kept kind.

    Returns:
        False for a shape no Rasa event has (a poison message): `facts` keeps nothing of it.
    """
    if not (event.get("timestamp") is None or _number(event["timestamp"])):
        return False
    kind = event.get("event")
    if kind == "user":
        parse_data = event.get("parse_data")
        if not _optional(parse_data, dict):
            return False
        intent = (parse_data or {}).get("intent")
        if not _optional(intent, dict):
            return False
        intent = intent or {}
        confidence = intent.get("confidence")
        return (
            _optional(intent.get("name"), str)
            and (confidence is None or _number(confidence))
            and _optional(event.get("input_channel"), str)
            and _optional(event.get("text"), str)
        )
    if kind == "bot":
        metadata = event.get("metadata")
        return (
            _optional(metadata, dict)
            and _optional((metadata or {}).get("utter_action"), str)
            and _optional(event.get("text"), str)
        )
    if kind in ("action", "slot"):
        return isinstance(event.get("name"), str)
    return True


def facts(event: dict[str, Any], hide: Masker) -> dict[str, Any] | None:
    """The row to keep for one published event, or None when the console needs nothing of it.

    Args:
        event: The event as published.
        hide: The masking function (`staff.masking.mask`, with GiNZA when enabled).

    Returns:
        The columns of an `AnalyticsEvent`, or None (also for a malformed event: `well_formed`).
    """
    kind = event.get("event")
    sender = event.get("sender_id")
    if kind not in KEPT or not isinstance(sender, str) or not sender:
        return None
    if not well_formed(event):
        return None
    row: dict[str, Any] = {
        "event_key": event_key(event),
        "sender": sender[:255],
        "kind": kind,
        "timestamp": float(event.get("timestamp") or 0.0),
        "channel": None,
        "intent": None,
        "confidence": None,
        "action": None,
        "value": None,
        "text": None,
    }
    if kind == "user":
        intent = (event.get("parse_data") or {}).get("intent") or {}
        row["channel"] = (event.get("input_channel") or "")[:CHANNEL_MAX] or None
        row["intent"] = _name(intent.get("name"))
        confidence = intent.get("confidence")
        row["confidence"] = float(confidence) if confidence is not None else None
        row["text"] = button_or_masked(event.get("text") or "", hide)
    elif kind == "bot":
        response = (event.get("metadata") or {}).get("utter_action")
        row["action"] = response[:NAME_MAX] if response else response
        row["text"] = hide(event.get("text") or "")
    elif kind == "action":
        if event["name"] == "action_listen":
            return None
        row["action"] = event["name"][:NAME_MAX]
    elif kind == "slot":
        if event.get("name") != FUNNEL_SLOT or event.get("value") not in FUNNEL_ANSWERS:
            return None
        row["action"], row["value"] = FUNNEL_SLOT, event.get("value")
    return row
