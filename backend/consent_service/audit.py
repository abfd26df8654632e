"""The append-only audit log: an HMAC-keyed hash chain, and its replay against the consents.

Each entry's HMAC-SHA256 (key: CONSENT_AUDIT_KEY, which never enters the database) covers its
own content and the previous entry's hash, so editing, deleting or re-ordering any entry breaks
every hash after it, and nobody without the key can recompute them. Writers lock the single
`audit_head` row, so appends from concurrent requests (or replicas) are serialised and the chain
never forks.

Verification recomputes the chain and replays its events: every consent row's current state
(status, withdrawal time, items, ...) must be what the chain says, so a row changed behind the
chain's back is named. Links of two subjects (`subject.linked`, `subject.unlinked`) are replayed
too: every link row, and the set of subjects in a link in force, must be what the chain says.

Entries written before the chain was keyed carry an unkeyed SHA-256. They are accepted only as
the beginning of the chain, sealed by the first keyed entry (the service appends an
`audit.keyed` entry at start when the newest entry is not keyed), and the newest entry must
always be keyed: whoever rewrites entries and recomputes plain hashes breaks the link to the
next keyed entry, which cannot be recomputed without the key.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from consent_service.models import (
    AuditEntry,
    AuditHead,
    Consent,
    SubjectLink,
    SubjectLinkMember,
)

GENESIS_HASH = "0" * 64
SESSION_KEY = "audit_key"  # where `db.make_sessionmaker` puts the key: Session.info


def canonical_json(value: Any) -> str:
    """Serialise `value` the same way every time (sorted keys, no spaces, UTF-8 kept)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def entry_hash(
    key: bytes | None,
    prev_hash: str,
    seq: int,
    at: dt.datetime,
    event_type: str,
    entity_id: str,
    payload: Any,
) -> str:
    """Compute the hash of one entry.

    Args:
        key: The audit key (HMAC-SHA256); None only to check entries from before the key.
        prev_hash: The previous entry's hash (or the genesis hash).
        seq: The entry's position, from 1.
        at: When it was written (UTC).
        event_type: What happened.
        entity_id: What it happened to.
        payload: Details (ids only, never health values).

    Returns:
        The hex digest.
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
    message = f"{prev_hash}\n{body}".encode()
    if key is None:
        return hashlib.sha256(message).hexdigest()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def session_key(session: Session) -> bytes:
    """The audit key the session was made with.

    Raises:
        RuntimeError: When the session factory was made without one (a programming error).
    """
    key = session.info.get(SESSION_KEY)
    if not isinstance(key, bytes) or not key:
        raise RuntimeError("No audit key: make sessions with db.make_sessionmaker(..., audit_key)")
    return key


def append(
    session: Session, event_type: str, entity_id: str, payload: dict[str, Any], at: dt.datetime
) -> AuditEntry:
    """Append one keyed entry inside the caller's transaction.

    Args:
        session: The open session (made with the audit key); the entry commits or rolls back
            with the caller's change.
        event_type: What happened (`consent.created`, `consent.withdrawn`, ...).
        entity_id: What it happened to.
        payload: Details (ids only, never health values).
        at: When (UTC).

    Returns:
        The new entry.
    """
    key = session_key(session)
    head = session.execute(
        select(AuditHead).where(AuditHead.id == 1).with_for_update()
    ).scalar_one_or_none()
    if head is None:
        head = AuditHead(id=1, seq=0, hash=GENESIS_HASH)
        session.add(head)
    seq = head.seq + 1
    digest = entry_hash(key, head.hash, seq, at, event_type, entity_id, payload)
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


def _is_keyed(key: bytes, entry: AuditEntry) -> bool:
    """Whether `entry`'s hash is its HMAC under `key`."""
    expected = entry_hash(
        key, entry.prev_hash, entry.seq, entry.at, entry.event_type, entry.entity_id, entry.payload
    )
    return hmac.compare_digest(expected, entry.hash)


def _is_unkeyed(entry: AuditEntry) -> bool:
    """Whether `entry`'s hash is the plain SHA-256 of the chain before it was keyed."""
    expected = entry_hash(
        None, entry.prev_hash, entry.seq, entry.at, entry.event_type, entry.entity_id, entry.payload
    )
    return hmac.compare_digest(expected, entry.hash)


def seal_legacy(session: Session, at: dt.datetime) -> bool:
    """Key a chain written before the key: append `audit.keyed` if the newest is not keyed.

    Args:
        session: The open session (made with the audit key).
        at: When (UTC).

    Returns:
        Whether an entry was appended.
    """
    newest = session.execute(
        select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(1)
    ).scalar_one_or_none()
    if newest is None or _is_keyed(session_key(session), newest) or not _is_unkeyed(newest):
        return False  # empty, keyed, or tampered with (left for `verify` to report)
    append(
        session,
        "audit.keyed",
        "audit_log",
        {"unkeyed_entries": newest.seq, "unkeyed_head": newest.hash},
        at,
    )
    return True


@dataclass(frozen=True)
class Verification:
    """The result of checking the chain and the consents against it."""

    ok: bool
    entries: int
    first_bad_seq: int | None = None
    problem: str | None = None
    consent_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The result as JSON-ready data."""
        return {
            "ok": self.ok,
            "entries": self.entries,
            "first_bad_seq": self.first_bad_seq,
            "problem": self.problem,
            "consent_id": self.consent_id,
        }


@dataclass(frozen=True)
class ConsentState:
    """What the audit chain says about one consent."""

    subject_id: str
    offer_id: str
    item_ids: tuple[str, ...]
    family_doctor_consulted: str | None
    channel: str
    terms_version: str
    created_at: dt.datetime
    receipt_id: str
    status: str = "active"
    withdrawn_at: dt.datetime | None = None
    withdrawal_receipt_id: str | None = None

    @classmethod
    def of_row(cls, consent: Consent) -> ConsentState:
        """The state a consent row holds now."""
        return cls(
            subject_id=consent.subject_id,
            offer_id=consent.offer_id,
            item_ids=tuple(consent.item_ids),
            family_doctor_consulted=consent.family_doctor_consulted,
            channel=consent.channel,
            terms_version=consent.terms_version,
            created_at=consent.created_at,
            receipt_id=consent.receipt_id,
            status=consent.status,
            withdrawn_at=consent.withdrawn_at,
            withdrawal_receipt_id=consent.withdrawal_receipt_id,
        )


class _Broken(Exception):
    """The chain does not replay: a problem at one entry."""

    def __init__(self, seq: int, problem: str) -> None:
        super().__init__(problem)
        self.seq, self.problem = seq, problem


def _replay(states: dict[str, ConsentState], entry: AuditEntry) -> None:
    """Apply one entry's event to the consents' states."""
    payload = entry.payload
    try:
        if entry.event_type == "consent.created":
            states[entry.entity_id] = ConsentState(
                subject_id=payload["subject_id"],
                offer_id=payload["offer_id"],
                item_ids=tuple(payload["item_ids"]),
                family_doctor_consulted=payload["family_doctor_consulted"],
                channel=payload["channel"],
                terms_version=payload["terms_version"],
                created_at=entry.at,
                receipt_id=payload["receipt_id"],
            )
        elif entry.event_type == "consent.withdrawn":
            before = states[entry.entity_id]
            states[entry.entity_id] = replace(
                before,
                status="withdrawn",
                withdrawn_at=entry.at,
                withdrawal_receipt_id=payload["receipt_id"],
            )
    except (KeyError, TypeError) as error:
        raise _Broken(entry.seq, f"the entry does not replay ({type(error).__name__})") from None


@dataclass(frozen=True)
class LinkChainState:
    """What the audit chain says about one link of two subjects (consent_service/links.py)."""

    subject_a: str
    channel_a: str
    subject_b: str
    channel_b: str
    created_at: dt.datetime
    unlinked_at: dt.datetime | None = None

    @classmethod
    def of_row(cls, link: SubjectLink) -> LinkChainState:
        """The state a link row holds now."""
        return cls(
            link.subject_a,
            link.channel_a,
            link.subject_b,
            link.channel_b,
            link.created_at,
            link.unlinked_at,
        )


def _replay_link(links: dict[str, LinkChainState], entry: AuditEntry) -> None:
    """Apply a link or unlink entry to the links' states."""
    payload = entry.payload
    try:
        if entry.event_type == "subject.linked":
            links[entry.entity_id] = LinkChainState(
                payload["subject_a"],
                payload["channel_a"],
                payload["subject_b"],
                payload["channel_b"],
                entry.at,
            )
        elif entry.event_type == "subject.unlinked":
            links[entry.entity_id] = replace(links[entry.entity_id], unlinked_at=entry.at)
    except (KeyError, TypeError) as error:
        raise _Broken(entry.seq, f"the entry does not replay ({type(error).__name__})") from None


def _compare_links(
    session: Session, links: dict[str, LinkChainState], entries: int
) -> Verification | None:
    """Every link row and every member of a link in force must be what the chain says.

    A member row added behind the chain's back (which would show one resident another's
    consents) is named like a changed consent.
    """
    rows = {link.link_id: link for link in session.execute(select(SubjectLink)).scalars()}
    for link_id in sorted(set(rows) | set(links)):
        row, chain = rows.get(link_id), links.get(link_id)
        if row is None or chain is None or LinkChainState.of_row(row) != chain:
            return Verification(
                False, entries, None, f"a link differs from the audit chain: {link_id}"
            )
    members = {
        (m.subject_id, m.link_id) for m in session.execute(select(SubjectLinkMember)).scalars()
    }
    expected = {
        (subject, link_id)
        for link_id, chain in links.items()
        if chain.unlinked_at is None
        for subject in (chain.subject_a, chain.subject_b)
    }
    if members != expected:
        return Verification(False, entries, None, "the linked subjects differ from the audit chain")
    return None


def _differences(row: ConsentState, chain: ConsentState) -> list[str]:
    return [
        name
        for name in ConsentState.__dataclass_fields__
        if getattr(row, name) != getattr(chain, name)
    ]


def verify(session: Session, batch: int = 1000) -> Verification:
    """Recompute every hash, check the links, the numbering and the head, then the consents.

    Args:
        session: A session made with the audit key.
        batch: How many rows to read at a time.

    Returns:
        Whether the chain is intact and every consent row is what the chain says; if not, the
        first bad entry or the consent that differs.
    """
    key = session_key(session)
    prev_hash, count, keyed_seen, newest_keyed = GENESIS_HASH, 0, False, True
    states: dict[str, ConsentState] = {}
    links: dict[str, LinkChainState] = {}
    try:
        while True:
            query = select(AuditEntry).where(AuditEntry.seq > count).order_by(AuditEntry.seq)
            rows = session.execute(query.limit(batch)).scalars().all()
            if not rows:
                break
            for entry in rows:
                if entry.seq != count + 1:
                    raise _Broken(count + 1, "an entry is missing")
                if entry.prev_hash != prev_hash:
                    raise _Broken(entry.seq, "the link to the previous is broken")
                newest_keyed = _is_keyed(key, entry)
                # Unkeyed entries are only the ones written before the first keyed entry.
                if not newest_keyed and (keyed_seen or not _is_unkeyed(entry)):
                    raise _Broken(entry.seq, "the entry was changed")
                _replay(states, entry)
                _replay_link(links, entry)
                keyed_seen = keyed_seen or newest_keyed
                prev_hash, count = entry.hash, entry.seq
            session.expunge_all()
    except _Broken as broken:
        return Verification(False, broken.seq - 1, broken.seq, broken.problem)
    if not newest_keyed:
        return Verification(False, count, count, "the newest entry is not keyed")
    head = session.get(AuditHead, 1)
    head_seq, head_hash = (head.seq, head.hash) if head else (0, GENESIS_HASH)
    if (head_seq, head_hash) != (count, prev_hash):
        return Verification(False, count, count + 1, "entries after the last one were deleted")
    linked = _compare_links(session, links, count)
    if linked is not None:
        return linked
    return _compare_consents(session, states, count, batch)


def _compare_consents(
    session: Session, states: dict[str, ConsentState], entries: int, batch: int
) -> Verification:
    """Every consent row must be what the chain says, and every consent of the chain a row."""
    unseen = set(states)
    last_id = ""
    while True:
        rows = (
            session.execute(
                select(Consent)
                .where(Consent.consent_id > last_id)
                .order_by(Consent.consent_id)
                .limit(batch)
            )
            .scalars()
            .all()
        )
        if not rows:
            break
        for consent in rows:
            chain = states.get(consent.consent_id)
            if chain is None:
                return Verification(
                    False, entries, None, "a consent has no audit entry", consent.consent_id
                )
            unseen.discard(consent.consent_id)
            differs = _differences(ConsentState.of_row(consent), chain)
            if consent.item_set != ",".join(sorted(chain.item_ids)):
                differs.append("item_set")
            if differs:
                problem = "a consent differs from the audit chain: " + ", ".join(differs)
                return Verification(False, entries, None, problem, consent.consent_id)
            last_id = consent.consent_id
        session.expunge_all()
    if unseen:
        return Verification(
            False, entries, None, "a consent of the audit chain was deleted", min(unseen)
        )
    return Verification(True, entries)
