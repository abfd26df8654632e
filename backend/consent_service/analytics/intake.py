"""From an event as Rasa's event broker publishes it to the facts the console keeps.

Rasa publishes every new tracker event as `{"sender_id": ..., **event.as_dict()}`. Only what
the console shows or counts is kept, and every text is masked here, once:

- `user`: channel, intent and its confidence, the masked text (a button press as `/intent`,
  without its entities);
- `bot`: the response it was made from (`metadata.utter_action`) and the masked text;
- `action` (but `action_listen`): the action's name;
- `slot`: only FUNNEL_SLOT and only one of its known answers (the funnel's answer);
- `session_started`: that a new session began.

Everything else (other slots, loops, featurisation, ...) is dropped.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

FUNNEL_SLOT = "family_doctor_consulted"
FUNNEL_ANSWERS = ("consulted", "not_yet", "will_not")
KEPT = ("user", "bot", "action", "slot", "session_started")

Masker = Callable[[str], str]


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
    """A user's text as kept: a button payload as `/intent` (no entities), else masked."""
    if text.startswith("/"):
        return "/" + text[1:].split("{")[0]
    return hide(text)


def facts(event: dict[str, Any], hide: Masker) -> dict[str, Any] | None:
    """The row to keep for one published event, or None when the console needs nothing of it.

    Args:
        event: The event as published.
        hide: The masking function (`staff.masking.mask`, with GiNZA when enabled).

    Returns:
        The columns of an `AnalyticsEvent`, or None.
    """
    kind = event.get("event")
    sender = event.get("sender_id")
    if kind not in KEPT or not isinstance(sender, str) or not sender:
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
        row["channel"] = str(event.get("input_channel") or "")[:32] or None
        row["intent"] = intent.get("name")
        confidence = intent.get("confidence")
        row["confidence"] = float(confidence) if confidence is not None else None
        row["text"] = button_or_masked(str(event.get("text") or ""), hide)
    elif kind == "bot":
        row["action"] = (event.get("metadata") or {}).get("utter_action")
        row["text"] = hide(str(event.get("text") or ""))
    elif kind == "action":
        if event.get("name") == "action_listen":
            return None
        row["action"] = event.get("name")
    elif kind == "slot":
        if event.get("name") != FUNNEL_SLOT or event.get("value") not in FUNNEL_ANSWERS:
            return None
        row["action"], row["value"] = FUNNEL_SLOT, event.get("value")
    return row
