"""Subscribing, stopping and the web chat's unseen notices (the domain of api/notices.py).

A subscription is a contact preference: it is never a data-provision consent and is kept apart
from `consents`. Writes are idempotent like `POST /v1/consents` (the same `idempotency_records`,
per client and key, replayed for CONSENT_IDEMPOTENCY_TTL_HOURS). A LINE subscription stores the
subject's sealed LINE user id in `notice_recipients` (the newest replaces the old) only while the
subject has an active LINE subscription: the transaction that ends the last one deletes it.

A web or REST subscription ends (`end_reason = 'expired'`) NOTICE_WEB_SUBSCRIPTION_DAYS after it
began: its subject is the pseudonym of a web chat session, which lasts WEBCHAT_SESSION_DAYS at
most (and usually one browser tab), not a lasting account. `retention` ends them (`expire`);
until it runs, every read here treats them as ended, and a write for the subject ends them first.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import ColumnElement, delete, or_, select
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
    SubscriptionRecord,
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
    replayed: Callable[[Session], None] | None = None,
) -> dict[str, Any]:
    """Run `write` once per key: a retry gets the stored answer, a concurrent one too.

    A write that collides with a concurrent one on anything else (the one active subscription
    per subject and topic) is run once more, seeing what the other committed. `replayed` runs
    in the transaction of a replay (the request matched the stored one).
    """

    def replay(session: Session, record: IdempotencyRecord) -> dict[str, Any]:
        body = _replay(record, digest).body
        if replayed is not None:
            replayed(session)
        return body

    for attempt in range(2):
        try:
            with factory() as session, session.begin():
                record = _stored(session, scope, key)
                if record is not None:
                    return replay(session, record)
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
            with factory() as session, session.begin():
                record = _stored(session, scope, key)
                if record is not None:
                    return replay(session, record)
            if attempt:
                raise
    raise AssertionError("unreachable")


def web_cutoff(now: dt.datetime, web_days: int) -> dt.datetime:
    """The oldest start of a web/rest subscription still running at `now`."""
    return now - dt.timedelta(days=web_days)


def running(now: dt.datetime, web_days: int) -> ColumnElement[bool]:
    """The subscriptions running at `now`: active, and a web/rest one not older than its days.

    Args:
        now: The current time (UTC).
        web_days: NOTICE_WEB_SUBSCRIPTION_DAYS.

    Returns:
        A WHERE clause on `notice_subscriptions`.
    """
    return (NoticeSubscription.status == "active") & or_(
        NoticeSubscription.channel.not_in(VISIT_CHANNELS),
        NoticeSubscription.created_at >= web_cutoff(now, web_days),
    )


def _expired_now(subscription: NoticeSubscription, now: dt.datetime, web_days: int) -> bool:
    return (
        subscription.status == "active"
        and subscription.channel in VISIT_CHANNELS
        and subscription.created_at < web_cutoff(now, web_days)
    )


def expire(session: Session, now: dt.datetime, web_days: int, subject_id: str | None = None) -> int:
    """End the web/rest subscriptions older than NOTICE_WEB_SUBSCRIPTION_DAYS (`expired`).

    Each ends at the moment it expired (its start plus the days), with an audit entry
    `notice.expired` per receipt. Inside the caller's transaction.

    Args:
        session: An open session (with the audit key).
        now: The current time (UTC).
        web_days: NOTICE_WEB_SUBSCRIPTION_DAYS.
        subject_id: Only this subject's (None: everyone's, as `retention` does).

    Returns:
        How many subscriptions were ended.
    """
    query = select(NoticeSubscription).where(
        NoticeSubscription.status == "active",
        NoticeSubscription.channel.in_(VISIT_CHANNELS),
        NoticeSubscription.created_at < web_cutoff(now, web_days),
    )
    if subject_id is not None:
        query = query.where(NoticeSubscription.subject_id == subject_id)
    found = list(
        session.execute(
            query.order_by(
                NoticeSubscription.created_at, NoticeSubscription.subscription_id
            ).with_for_update()
        ).scalars()
    )
    grouped: dict[tuple[str, str], list[str]] = {}
    for subscription in found:
        subscription.status = "ended"
        subscription.ended_at = subscription.created_at + dt.timedelta(days=web_days)
        subscription.end_reason = "expired"
        key = (subscription.subject_id, subscription.receipt_id)
        grouped.setdefault(key, []).append(subscription.topic_id)
    session.flush()
    for (subject, receipt_id), topic_ids in grouped.items():
        audit.append(
            session,
            "notice.expired",
            receipt_id,
            {"subject_id": subject, "topic_ids": topic_ids, "reason": "expired"},
            now,
        )
    return len(found)


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
    web_days: int,
) -> dict[str, Any]:
    """Subscribe a subject to topics on one channel, once per Idempotency-Key.

    The subject's expired web/rest subscriptions are ended first, so a topic whose web
    subscription has expired is subscribed anew.

    Args:
        factory: Session factory.
        body: The request.
        scope: The client's idempotency scope.
        idempotency_key: The request's Idempotency-Key.
        now: The current time (UTC).
        web_days: NOTICE_WEB_SUBSCRIPTION_DAYS.

    Returns:
        The `SubscriptionResult` body (JSON values).

    Raises:
        Refused: 422 `line_recipient_required`, `line_recipient_not_allowed`, `unknown_topic`,
            `idempotency_key_reused`.
    """
    # The sealed id is left out of the digest: the LINE channel seals every message anew, so a
    # retried はい (its answer lost) carries the same key and another sealed value of the same id.
    data = body.model_dump(exclude={"sealed_line_user_id"})
    data["sealed"] = body.sealed_line_user_id is not None
    digest = _digest("notice_subscription", data)

    def store_recipient(session: Session, active: list[NoticeSubscription]) -> None:
        """The newest sealed id replaces the old while a LINE subscription is active."""
        if not body.sealed_line_user_id or not any(s.channel == "line" for s in active):
            return
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

    def replayed(session: Session) -> None:
        store_recipient(session, _active(session, body.subject_id, lock=True))

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
        expire(session, now, web_days, body.subject_id)
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
        store_recipient(session, list(active.values()))
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

    return _idempotent(factory, scope, idempotency_key, digest, CREATED, now, write, replayed)


def end(
    factory: sessionmaker[Session],
    subject_id: str,
    body: SubscriptionEnd,
    *,
    scope: IdempotencyScope,
    idempotency_key: str,
    now: dt.datetime,
    web_days: int,
) -> dict[str, Any]:
    """End a subject's active subscriptions to some topics (or all), once per key.

    The sealed LINE user id is deleted in the same transaction when no active LINE subscription
    remains. Expired web/rest subscriptions are ended as `expired` first (not stopped now).

    Args:
        factory: Session factory.
        subject_id: Whose subscriptions.
        body: The topics (None: all) and why.
        scope: The client's idempotency scope.
        idempotency_key: The request's Idempotency-Key.
        now: The current time (UTC).
        web_days: NOTICE_WEB_SUBSCRIPTION_DAYS.

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
        expire(session, now, web_days, subject_id)
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


def history(
    session: Session, subject_id: str, now: dt.datetime, web_days: int
) -> list[SubscriptionRecord]:
    """A subject's subscriptions: active first, then ended; oldest first within each.

    A web/rest subscription past NOTICE_WEB_SUBSCRIPTION_DAYS that `retention` has not ended
    yet is shown as it will be: ended (`expired`) when its days ran out.

    Args:
        session: A read session.
        subject_id: The resident's pseudonym.
        now: The current time (UTC).
        web_days: NOTICE_WEB_SUBSCRIPTION_DAYS.

    Returns:
        The subscriptions as the subject's list shows them.
    """
    found = session.execute(
        select(NoticeSubscription)
        .where(NoticeSubscription.subject_id == subject_id)
        .order_by(NoticeSubscription.created_at, NoticeSubscription.subscription_id)
    ).scalars()
    records: list[SubscriptionRecord] = []
    for subscription in found:
        record = SubscriptionRecord.model_validate(subscription, from_attributes=True)
        if _expired_now(subscription, now, web_days):
            record = record.model_copy(
                update={
                    "status": "ended",
                    "ended_at": subscription.created_at + dt.timedelta(days=web_days),
                    "end_reason": "expired",
                }
            )
        records.append(record)
    return sorted(records, key=lambda s: s.status != "active")


def _visible(
    session: Session, subject_id: str, now: dt.datetime, web_days: int
) -> list[tuple[Notice, str]]:
    """Sent notices on the subject's running web/rest topics since each began, not shown."""
    shown = select(NoticeWebDelivery.notice_id).where(NoticeWebDelivery.subject_id == subject_id)
    rows = session.execute(
        select(Notice, NoticeTopic.title_ja)
        .join(NoticeTopic, NoticeTopic.topic_id == Notice.topic_id)
        .join(
            NoticeSubscription,
            (NoticeSubscription.topic_id == Notice.topic_id)
            & (NoticeSubscription.subject_id == subject_id)
            & running(now, web_days)
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


def unseen(
    session: Session, subject_id: str, now: dt.datetime, web_days: int
) -> list[UnseenNotice]:
    """The notices to show a web chat resident at this visit (oldest first, at most 3).

    Only of running subscriptions: an expired web/rest one shows nothing more.

    Args:
        session: A read session.
        subject_id: The resident's pseudonym.
        now: The current time (UTC).
        web_days: NOTICE_WEB_SUBSCRIPTION_DAYS.

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
        for notice, title in _visible(session, subject_id, now, web_days)[:UNSEEN_LIMIT]
    ]


def mark_seen(
    factory: sessionmaker[Session],
    subject_id: str,
    notice_ids: list[str],
    now: dt.datetime,
    web_days: int,
) -> int:
    """Record notices as shown to a subject (each once; others' or unknown ids are ignored).

    Args:
        factory: Session factory.
        subject_id: The resident's pseudonym.
        notice_ids: The notices shown.
        now: The current time (UTC).
        web_days: NOTICE_WEB_SUBSCRIPTION_DAYS.

    Returns:
        How many were recorded now (a repeat counts 0).
    """
    for attempt in range(2):
        try:
            with factory() as session, session.begin():
                visible = {n.notice_id for n, _ in _visible(session, subject_id, now, web_days)}
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
