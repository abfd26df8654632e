"""Writing and reading the analytics tables.

Writes are idempotent: a row whose `event_key` is already stored is skipped, so a source may
deliver an event again (after a crash before its acknowledgement) without counting it twice.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from consent_service.analytics.tables import AnalyticsEvent, AnalyticsOffset


def write(session: Session, rows: Iterable[dict[str, Any]]) -> int:
    """Insert the rows not stored yet (by `event_key`), in order.

    Args:
        session: A session inside the caller's transaction.
        rows: Columns of `AnalyticsEvent` (from `intake.facts`).

    Returns:
        How many rows were new.
    """
    dialect = session.get_bind().dialect.name
    added = 0
    for row in rows:
        statement: Any
        if dialect == "postgresql":
            statement = postgresql.insert(AnalyticsEvent).values(**row)
            statement = statement.on_conflict_do_nothing(index_elements=["event_key"])
        elif dialect == "sqlite":
            statement = sqlite.insert(AnalyticsEvent).values(**row)
            statement = statement.on_conflict_do_nothing(index_elements=["event_key"])
        else:  # pragma: no cover - the service runs on PostgreSQL or SQLite
            known = select(AnalyticsEvent.id).where(AnalyticsEvent.event_key == row["event_key"])
            if session.scalar(known) is not None:
                continue
            statement = insert(AnalyticsEvent).values(**row)
        # RETURNING tells whether the row was new on every driver (rowcount may be -1)
        added += session.execute(statement.returning(AnalyticsEvent.id)).first() is not None
    return added


def offset(session: Session, source: str) -> int:
    """The last position read from `source` (0 before the first read)."""
    found = session.get(AnalyticsOffset, source)
    return found.position if found else 0


def set_offset(session: Session, source: str, position: int) -> None:
    """Remember the last position read from `source` (in the caller's transaction)."""
    found = session.get(AnalyticsOffset, source)
    if found is None:
        session.add(AnalyticsOffset(source=source, position=position))
    else:
        found.position = position


def senders_between(session: Session, low: float, high: float) -> list[str]:
    """The senders with a user message at `low` <= timestamp < `high`."""
    query = (
        select(AnalyticsEvent.sender)
        .where(AnalyticsEvent.kind == "user")
        .where(AnalyticsEvent.timestamp >= low, AnalyticsEvent.timestamp < high)
        .distinct()
    )
    return list(session.scalars(query))


def events_of(session: Session, senders: list[str]) -> list[AnalyticsEvent]:
    """Every stored event of `senders`, by sender, oldest first (as delivered)."""
    if not senders:
        return []
    found: list[AnalyticsEvent] = []
    for start in range(0, len(senders), 500):  # keep the IN list short
        chunk = senders[start : start + 500]
        found.extend(
            session.scalars(select(AnalyticsEvent).where(AnalyticsEvent.sender.in_(chunk)))
        )
    return sorted(found, key=lambda e: (e.sender, e.id))


def purge(session: Session, cutoff: dt.datetime) -> int:
    """Delete the events older than `cutoff` (ANALYTICS_RETENTION_DAYS).

    Args:
        session: A session inside the caller's transaction.
        cutoff: An aware datetime.

    Returns:
        How many events were deleted.
    """
    result: Any = session.execute(
        delete(AnalyticsEvent).where(AnalyticsEvent.timestamp < cutoff.timestamp())
    )
    return int(result.rowcount or 0)


def count(session: Session) -> int:
    """How many events are stored (for tests and the consumer's log)."""
    return int(session.scalar(select(func.count()).select_from(AnalyticsEvent)) or 0)
