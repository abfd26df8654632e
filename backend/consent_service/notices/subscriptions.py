"""Subscribing, stopping and the web chat's unseen notices (the domain of api/notices.py).

A subscription is a contact preference: it is never a data-provision consent and is kept apart
from `consents`. Writes are idempotent like `POST /v1/consents` (the same `idempotency_records`,
per client and key, replayed for CONSENT_IDEMPOTENCY_TTL_HOURS). A LINE subscription stores the
subject's sealed LINE user id in `notice_recipients` (the newest replaces the old) only while the
subject has an active LINE subscription: the transaction that ends the last one deletes it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from consent_service import audit
from consent_service.audit import canonical_json
from consent_service.consents import IdempotencyScope, _replay, _stored
from consent_service.errors import Reason, Refused
from consent_service.models import IdempotencyRecord
from consent_service.notices.schemas import (
    NoticeReceipt,
    SubscriptionCreate,
    SubscriptionEnd,
    SubscriptionEndResult,
    SubscriptionPublic,
    SubscriptionResult,
    UnseenNotice,
)
from consent_service.notices.tables import (
    Notice,
    NoticeRecipient,
    NoticeSubscription,
    NoticeTopic,
    NoticeWebDelivery,
)

_BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
RECEIPT_CHARS = 10
UNSEEN_LIMIT = 3
CREATED, ENDED = 201, 200
# The channels a resident sees notices on at their next visit (nothing can be pushed to them).
VISIT_CHANNELS = ("web", "rest")


def new_receipt_id() -> str:
    """A notice receipt id: "N-" and 10 random upper-case base32 characters (50 bits)."""
    return "N-" + "".join(secrets.choice(_BASE32) for _ in range(RECEIPT_CHARS))


def _digest(kind: str, data: dict[str, Any]) -> str:
    # The kind is part of the digest: a key reused for another call is `idempotency_key_reused`.
    return hashlib.sha256(canonical_json({"call": kind, **data}).encode("utf-8")).hexdigest()


def _idempotent(
    factory: sessionmaker[Session],
    scope: IdempotencyScope,
    key: str,
    digest: str,
    status: int,
    now: dt.datetime,
    write: Callable[[Session], dict[str, Any]],
) -> dict[str, Any]:
    """Run `write` once per key: a retry gets the stored answer, a concurrent one too.

    A write that collides with a concurrent one on anything else (the one active subscription
    per subject and topic) is run once more, seeing what the other committed.
    """
    for attempt in range(2):
        try:
            with factory() as session, session.begin():
                record = _stored(session, scope, key)
                if record is not None:
                    return _replay(record, digest).body
                session.execute(
                    delete(IdempotencyRecord).where(
                        IdempotencyRecord.client_digest == scope.client,
                        IdempotencyRecord.key == key,
                        IdempotencyRecord.created_at < scope.not_before,
                    )
                )
                body = write(session)
                session.add(
                    IdempotencyRecord(
                        client_digest=scope.client,
                        key=key,
                        request_sha256=digest,
                        status_code=status,
                        response=body,
                        created_at=now,
                    )
                )
                session.flush()
                return body
        except IntegrityError:
            with factory() as session:
                record = _stored(session, scope, key)
                if record is not None:
                    return _replay(record, digest).body
            if attempt:
                raise
    raise AssertionError("unreachable")


def _known_topics(session: Session, topic_ids: list[str]) -> None:
    known = set(
        session.execute(
            select(NoticeTopic.topic_id).where(NoticeTopic.topic_id.in_(topic_ids))
        ).scalars()
    )
    unknown = [t for t in topic_ids if t not in known]
    if unknown:
        raise Refused(Reason.UNKNOWN_TOPIC, f"No notice topic has the id {unknown[0]!r}.")


def _active(session: Session, subject_id: str, *, lock: bool = False) -> list[NoticeSubscription]:
    query = select(NoticeSubscription).where(
        NoticeSubscription.subject_id == subject_id, NoticeSubscription.status == "active"
    )
    if lock:
        query = query.with_for_update()
    return list(session.execute(query).scalars())


def subscribe(
    factory: sessionmaker[Session],
    body: SubscriptionCreate,
    *,
    scope: IdempotencyScope,
    idempotency_key: str,
    now: dt.datetime,
) -> dict[str, Any]:
    """Subscribe a subject to topics on one channel, once per Idempotency-Key.

    Args:
        factory: Session factory.
        body: The request.
        scope: The client's idempotency scope.
        idempotency_key: The request's Idempotency-Key.
        now: The current time (UTC).

    Returns:
        The `SubscriptionResult` body (JSON values).

    Raises:
        Refused: 422 `line_recipient_required`, `line_recipient_not_allowed`, `unknown_topic`,
            `idempotency_key_reused`.
    """
    data = body.model_dump()
    digest = _digest("notice_subscription", data)

    def write(session: Session) -> dict[str, Any]:
        if body.channel == "line" and not body.sealed_line_user_id:
            raise Refused(
                Reason.LINE_RECIPIENT_REQUIRED,
                "A LINE subscription needs the sealed LINE user id.",
            )
        if body.channel != "line" and body.sealed_line_user_id is not None:
            raise Refused(
                Reason.LINE_RECIPIENT_NOT_ALLOWED,
                "Only a LINE subscription carries a sealed LINE user id.",
            )
        _known_topics(session, body.topic_ids)
        active = {s.topic_id: s for s in _active(session, body.subject_id, lock=True)}
        receipt_id = new_receipt_id()
        answered: list[NoticeSubscription] = []
        new_topics: list[str] = []
        for topic_id in body.topic_ids:
            existing = active.get(topic_id)
            if existing is None:
                existing = NoticeSubscription(
                    subscription_id=str(uuid.uuid4()),
                    subject_id=body.subject_id,
                    topic_id=topic_id,
                    channel=body.channel,
                    status="active",
                    created_at=now,
                    receipt_id=receipt_id,
                )
                session.add(existing)
                active[topic_id] = existing
                new_topics.append(topic_id)
            answered.append(existing)
        session.flush()
        if body.sealed_line_user_id and any(s.channel == "line" for s in active.values()):
            recipient = session.get(NoticeRecipient, body.subject_id, with_for_update=True)
            if recipient is None:
                session.add(
                    NoticeRecipient(
                        subject_id=body.subject_id,
                        sealed_user_id=body.sealed_line_user_id,
                        updated_at=now,
                    )
                )
            else:
                recipient.sealed_user_id = body.sealed_line_user_id
                recipient.updated_at = now
        audit.append(
            session,
            "notice.subscribed",
            receipt_id,
            {"subject_id": body.subject_id, "topic_ids": new_topics, "channel": body.channel},
            now,
        )
        result = SubscriptionResult(
            subscriptions=[
                SubscriptionPublic.model_validate(s, from_attributes=True) for s in answered
            ],
            receipt=NoticeReceipt(
                receipt_id=receipt_id, kind="notice_subscription", created_at=now
            ),
        )
        return result.model_dump(mode="json")

    return _idempotent(factory, scope, idempotency_key, digest, CREATED, now, write)


def end(
    factory: sessionmaker[Session],
    subject_id: str,
    body: SubscriptionEnd,
    *,
    scope: IdempotencyScope,
    idempotency_key: str,
    now: dt.datetime,
) -> dict[str, Any]:
    """End a subject's active subscriptions to some topics (or all), once per key.

    The sealed LINE user id is deleted in the same transaction when no active LINE subscription
    remains.

    Args:
        factory: Session factory.
        subject_id: Whose subscriptions.
        body: The topics (None: all) and why.
        scope: The client's idempotency scope.
        idempotency_key: The request's Idempotency-Key.
        now: The current time (UTC).

    Returns:
        The `SubscriptionEndResult` body (JSON values); `receipt` is None when nothing was
        active.

    Raises:
        Refused: 422 `unknown_topic`, `idempotency_key_reused`.
    """
    digest = _digest("notice_unsubscription", {"subject_id": subject_id, **body.model_dump()})

    def write(session: Session) -> dict[str, Any]:
        if body.topic_ids is not None:
            _known_topics(session, body.topic_ids)
        active = _active(session, subject_id, lock=True)
        ending = [s for s in active if body.topic_ids is None or s.topic_id in body.topic_ids]
        if not ending:
            return SubscriptionEndResult(ended=[], receipt=None).model_dump(mode="json")
        order = dict(
            session.execute(select(NoticeTopic.topic_id, NoticeTopic.sort_order)).tuples().all()
        )
        ending.sort(key=lambda s: (order.get(s.topic_id, 0), s.topic_id))
        receipt_id = new_receipt_id()
        for subscription in ending:
            subscription.status = "ended"
            subscription.ended_at = now
            subscription.end_reason = body.reason
            subscription.end_receipt_id = receipt_id
        remaining_line = [s for s in active if s not in ending and s.channel == "line"]
        if not remaining_line:
            session.execute(delete(NoticeRecipient).where(NoticeRecipient.subject_id == subject_id))
        session.flush()
        ended = [s.topic_id for s in ending]
        audit.append(
            session,
            "notice.unsubscribed",
            receipt_id,
            {"subject_id": subject_id, "topic_ids": ended, "reason": body.reason},
            now,
        )
        return SubscriptionEndResult(
            ended=ended,
            receipt=NoticeReceipt(
                receipt_id=receipt_id, kind="notice_unsubscription", created_at=now
            ),
        ).model_dump(mode="json")

    return _idempotent(factory, scope, idempotency_key, digest, ENDED, now, write)


def history(session: Session, subject_id: str) -> list[NoticeSubscription]:
    """A subject's subscriptions: active first, then ended; oldest first within each."""
    found = session.execute(
        select(NoticeSubscription)
        .where(NoticeSubscription.subject_id == subject_id)
        .order_by(NoticeSubscription.created_at, NoticeSubscription.subscription_id)
    ).scalars()
    return sorted(found, key=lambda s: s.status != "active")


def _visible(session: Session, subject_id: str) -> list[tuple[Notice, str]]:
    """Sent notices on the subject's web/rest topics since each subscription began, not shown."""
    shown = select(NoticeWebDelivery.notice_id).where(NoticeWebDelivery.subject_id == subject_id)
    rows = session.execute(
        select(Notice, NoticeTopic.title_ja)
        .join(NoticeTopic, NoticeTopic.topic_id == Notice.topic_id)
        .join(
            NoticeSubscription,
            (NoticeSubscription.topic_id == Notice.topic_id)
            & (NoticeSubscription.subject_id == subject_id)
            & (NoticeSubscription.status == "active")
            & (NoticeSubscription.channel.in_(VISIT_CHANNELS)),
        )
        .where(
            Notice.status == "sent",
            Notice.sent_at.is_not(None),
            Notice.sent_at >= NoticeSubscription.created_at,
            Notice.notice_id.not_in(shown),
        )
        .order_by(Notice.sent_at, Notice.notice_id)
    ).tuples()
    return [(notice, title) for notice, title in rows]


def unseen(session: Session, subject_id: str) -> list[UnseenNotice]:
    """The notices to show a web chat resident at this visit (oldest first, at most 3).

    Args:
        session: A read session.
        subject_id: The resident's pseudonym.

    Returns:
        Up to UNSEEN_LIMIT notices.
    """
    return [
        UnseenNotice(
            notice_id=notice.notice_id,
            topic_id=notice.topic_id,
            title_ja=title,
            text_ja=notice.text_ja,
            link_url=notice.link_url,
            sent_at=notice.sent_at or notice.drafted_at,
        )
        for notice, title in _visible(session, subject_id)[:UNSEEN_LIMIT]
    ]


def mark_seen(
    factory: sessionmaker[Session], subject_id: str, notice_ids: list[str], now: dt.datetime
) -> int:
    """Record notices as shown to a subject (each once; others' or unknown ids are ignored).

    Args:
        factory: Session factory.
        subject_id: The resident's pseudonym.
        notice_ids: The notices shown.
        now: The current time (UTC).

    Returns:
        How many were recorded now (a repeat counts 0).
    """
    for attempt in range(2):
        try:
            with factory() as session, session.begin():
                visible = {n.notice_id for n, _ in _visible(session, subject_id)}
                fresh = [i for i in dict.fromkeys(notice_ids) if i in visible]
                for notice_id in fresh:
                    session.add(
                        NoticeWebDelivery(notice_id=notice_id, subject_id=subject_id, shown_at=now)
                    )
                session.flush()
                return len(fresh)
        except IntegrityError:
            if attempt:
                raise
    raise AssertionError("unreachable")
