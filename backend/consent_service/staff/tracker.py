"""Read Rasa's SQL tracker store (table `events`), read-only, and group it into conversations.

A conversation is one session of one sender (a pseudonym) with at least one resident message;
its day and channel are those of its first message. Days are counted in Japan time.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

JST = ZoneInfo("Asia/Tokyo")
CHANNELS = {"line": "LINE", "webchat": "web", "socketio": "web", "rest": "REST"}


@dataclass(frozen=True)
class Event:
    """One tracker event."""

    id: int
    sender: str
    kind: str
    at: dt.datetime
    intent: str | None
    action: str | None
    data: dict[str, Any]

    @property
    def text(self) -> str:
        """A user's or the assistant's text ("" for other events)."""
        return str(self.data.get("text") or "")

    @property
    def utter_action(self) -> str | None:
        """The response a bot message was made from."""
        return (self.data.get("metadata") or {}).get("utter_action")


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


def read_only_engine(url: str) -> Engine:
    """An engine that cannot write: SQLite opened with mode=ro, others in read-only sessions."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = parsed.database or ""
        return create_engine(
            "sqlite+pysqlite:///file:" + path + "?mode=ro&uri=true",
            connect_args={"check_same_thread": False},
        )
    return create_engine(url, execution_options={"postgresql_readonly": True}, pool_pre_ping=True)


def read_events(engine: Engine, start: dt.date, end: dt.date) -> list[Event]:
    """Every event of the senders who wrote between `start` and `end` (Japan days, inclusive)."""
    low = dt.datetime.combine(start, dt.time.min, JST).timestamp()
    high = dt.datetime.combine(end + dt.timedelta(days=1), dt.time.min, JST).timestamp()
    query = text(
        "SELECT id, sender_id, type_name, timestamp, intent_name, action_name, data FROM events "
        "WHERE sender_id IN (SELECT DISTINCT sender_id FROM events WHERE type_name = 'user' "
        "AND timestamp >= :low AND timestamp < :high) ORDER BY sender_id, id"
    )
    try:
        with engine.connect() as connection:
            rows = connection.execute(query, {"low": low, "high": high}).all()
    except Exception:  # no tracker store yet (nobody has talked to the assistant)
        return []
    return [_event(row) for row in rows]


def read_sender_events(engine: Engine, sender: str) -> list[Event]:
    """Every event of one sender (for one transcript), oldest first."""
    query = text(
        "SELECT id, sender_id, type_name, timestamp, intent_name, action_name, data FROM events "
        "WHERE sender_id = :sender ORDER BY id"
    )
    try:
        with engine.connect() as connection:
            rows = connection.execute(query, {"sender": sender}).all()
    except Exception:  # no tracker store yet
        return []
    return [_event(row) for row in rows]


def _event(row: Any) -> Event:
    return Event(
        id=row[0],
        sender=row[1],
        kind=row[2],
        at=dt.datetime.fromtimestamp(row[3] or 0, JST),
        intent=row[4],
        action=row[5],
        data=json.loads(row[6] or "{}"),
    )


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
            current.channel = CHANNELS.get(str(event.data.get("input_channel")), "REST")
    return [c for c in result if c.day is not None and start <= c.day <= end]
