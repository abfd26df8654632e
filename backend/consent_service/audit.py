"""The append-only, hash-chained audit log.

Each entry's hash covers its own content and the previous entry's hash, so editing, deleting or
re-ordering any entry breaks every hash after it. Writers lock the single `audit_head` row, so
appends from concurrent requests (or replicas) are serialised and the chain never forks.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from consent_service.models import AuditEntry, AuditHead

GENESIS_HASH = "0" * 64


def canonical_json(value: Any) -> str:
    """Serialise `value` the same way every time (sorted keys, no spaces, UTF-8 kept)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def entry_hash(
    prev_hash: str, seq: int, at: dt.datetime, event_type: str, entity_id: str, payload: Any
) -> str:
    """Compute the hash of one entry.

    Args:
        prev_hash: The previous entry's hash (or the genesis hash).
        seq: The entry's position, from 1.
        at: When it was written (UTC).
        event_type: What happened.
        entity_id: What it happened to.
        payload: Details (ids only, never health values).

    Returns:
        The hex SHA-256.
    """
    body = canonical_json(
        {
            "seq": seq,
            "at": at.astimezone(dt.UTC).isoformat(timespec="microseconds"),
            "event_type": event_type,
            "entity_id": entity_id,
            "payload": payload,
        }
    )
    return hashlib.sha256(f"{prev_hash}\n{body}".encode()).hexdigest()


def append(
    session: Session, event_type: str, entity_id: str, payload: dict[str, Any], at: dt.datetime
) -> AuditEntry:
    """Append one entry inside the caller's transaction.

    Args:
        session: The open session; the entry commits or rolls back with the caller's change.
        event_type: What happened (`consent.created`, `consent.withdrawn`, ...).
        entity_id: What it happened to.
        payload: Details (ids only, never health values).
        at: When (UTC).

    Returns:
        The new entry.
    """
    head = session.execute(
        select(AuditHead).where(AuditHead.id == 1).with_for_update()
    ).scalar_one_or_none()
    if head is None:
        head = AuditHead(id=1, seq=0, hash=GENESIS_HASH)
        session.add(head)
    seq = head.seq + 1
    digest = entry_hash(head.hash, seq, at, event_type, entity_id, payload)
    entry = AuditEntry(
        seq=seq,
        at=at,
        event_type=event_type,
        entity_id=entity_id,
        payload=payload,
        prev_hash=head.hash,
        hash=digest,
    )
    session.add(entry)
    head.seq, head.hash = seq, digest
    session.flush()
    return entry


@dataclass(frozen=True)
class Verification:
    """The result of checking the chain."""

    ok: bool
    entries: int
    first_bad_seq: int | None = None
    problem: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The result as JSON-ready data."""
        return {
            "ok": self.ok,
            "entries": self.entries,
            "first_bad_seq": self.first_bad_seq,
            "problem": self.problem,
        }


def verify(session: Session, batch: int = 1000) -> Verification:
    """Recompute every hash and check the links, the numbering and the head.

    Args:
        session: A session to read with.
        batch: How many entries to read at a time.

    Returns:
        Whether the chain is intact, and where it breaks if not.
    """
    prev_hash, expected_seq, count = GENESIS_HASH, 1, 0
    last_seq = 0
    while True:
        query = select(AuditEntry).where(AuditEntry.seq > last_seq).order_by(AuditEntry.seq)
        rows = session.execute(query.limit(batch)).scalars().all()
        if not rows:
            break
        for entry in rows:
            if entry.seq != expected_seq:
                return Verification(False, count, expected_seq, "an entry is missing")
            if entry.prev_hash != prev_hash:
                return Verification(False, count, entry.seq, "the link to the previous is broken")
            recomputed = entry_hash(
                prev_hash, entry.seq, entry.at, entry.event_type, entry.entity_id, entry.payload
            )
            if recomputed != entry.hash:
                return Verification(False, count, entry.seq, "the entry was changed")
            prev_hash, expected_seq, count = entry.hash, expected_seq + 1, count + 1
            last_seq = entry.seq
    head = session.get(AuditHead, 1)
    head_seq, head_hash = (head.seq, head.hash) if head else (0, GENESIS_HASH)
    if (head_seq, head_hash) != (count, prev_hash):
        return Verification(False, count, count + 1, "entries after the last one were deleted")
    return Verification(True, count)
