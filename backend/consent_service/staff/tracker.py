"""Conversations from the analytics tables (fed by Rasa's event broker via `analytics`).

A conversation is one session of one sender (a pseudonym) with at least one resident message;
its day and channel are those of its first message. Days are counted in Japan time. The
console never reads Rasa's own tables: the consumer wrote these rows, texts already masked.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from consent_service.analytics import store
from consent_service.analytics.tables import AnalyticsEvent

JST = ZoneInfo("Asia/Tokyo")
CHANNELS = {"line": "LINE", "webchat": "web", "socketio": "web", "rest": "REST"}


@dataclass(frozen=True)
class Event:
    """One conversation event as the analytics tables keep it (texts masked)."""

    id: int
    sender: str
    kind: str
    at: dt.datetime
    intent: str | None = None
    action: str | None = None
    text: str = ""
    channel: str | None = None
    confidence: float | None = None
    value: str | None = None

    @property
    def utter_action(self) -> str | None:
        """The response a bot message was made from."""
        return self.action if self.kind == "bot" else None


@dataclass
class Conversation:
    """One session of one sender."""

    sender: str
    number: int
    channel: str = "REST"
    day: dt.date | None = None
    events: list[Event] = field(default_factory=list)

    @property
    def user_messages(self) -> list[Event]:
        """The resident's messages."""
        return [e for e in self.events if e.kind == "user"]

    @property
    def key(self) -> str:
        """A stable id for links: the sender pseudonym and the session number."""
        return f"{self.sender}:{self.number}"


def _event(row: AnalyticsEvent) -> Event:
    return Event(
        id=row.id,
        sender=row.sender,
        kind=row.kind,
        at=dt.datetime.fromtimestamp(row.timestamp or 0, JST),
        intent=row.intent,
        action=row.action,
        text=row.text or "",
        channel=row.channel,
        confidence=row.confidence,
        value=row.value,
    )


def read_events(session: Session, start: dt.date, end: dt.date) -> list[Event]:
    """Every event of the senders who wrote between `start` and `end` (Japan days, inclusive)."""
    low = dt.datetime.combine(start, dt.time.min, JST).timestamp()
    high = dt.datetime.combine(end + dt.timedelta(days=1), dt.time.min, JST).timestamp()
    senders = store.senders_between(session, low, high)
    return [_event(row) for row in store.events_of(session, senders)]


def read_sender_events(session: Session, sender: str) -> list[Event]:
    """Every event of one sender (for one transcript), oldest first."""
    return [_event(row) for row in store.events_of(session, [sender])]


def conversations(events: list[Event], start: dt.date, end: dt.date) -> list[Conversation]:
    """Group events into conversations that began between `start` and `end`."""
    result: list[Conversation] = []
    current: Conversation | None = None
    for event in events:
        if current is None or event.sender != current.sender:
            current = Conversation(event.sender, 0)
            result.append(current)
        elif event.kind == "session_started" and current.user_messages:
            current = Conversation(event.sender, current.number + 1)
            result.append(current)
        current.events.append(event)
        if event.kind == "user" and current.day is None:
            current.day = event.at.date()
            current.channel = CHANNELS.get(str(event.channel), "REST")
    return [c for c in result if c.day is not None and start <= c.day <= end]
