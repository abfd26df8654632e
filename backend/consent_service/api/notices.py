"""`/v1` calls of the health notices residents opt into (issue 17, docs/notices.md).

A subscription is a contact preference, kept apart from consents and never used as one. The
service stores a LINE resident's user id only sealed (it cannot open it): only the sender
(`python -m consent_service send-notices`) holds the key.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Path
from sqlalchemy import select

from consent_service.api.deps import AppSettings, Client, DbSession, Now, SessionFactory
from consent_service.api.routes import ERRORS, IdempotencyKey
from consent_service.consents import IdempotencyScope
from consent_service.notices import subscriptions
from consent_service.notices.schemas import (
    NoticesSeen,
    NoticesSeenResult,
    NoticeTopicPublic,
    SubscriptionCreate,
    SubscriptionEnd,
    SubscriptionEndResult,
    SubscriptionRecord,
    SubscriptionResult,
    UnseenNotice,
)
from consent_service.notices.tables import NoticeTopic
from consent_service.schemas import SUBJECT_ID_PATTERN

router = APIRouter(prefix="/v1", responses={400: ERRORS[400], 401: ERRORS[401], 403: ERRORS[403]})

SubjectId = Annotated[str, Path(pattern=SUBJECT_ID_PATTERN)]


def _scope(client: str, settings: AppSettings, now: dt.datetime) -> IdempotencyScope:
    return IdempotencyScope(
        client, now - dt.timedelta(hours=settings.consent_idempotency_ttl_hours)
    )


@router.get("/notice-topics", response_model=list[NoticeTopicPublic], tags=["notices"])
def list_topics(
    session: DbSession, _client: Client, settings: AppSettings
) -> list[NoticeTopicPublic]:
    """The topics residents may subscribe to (catalog/notice_topics.yml), in their order."""
    topics = session.execute(
        select(NoticeTopic).order_by(NoticeTopic.sort_order, NoticeTopic.topic_id)
    ).scalars()
    return [
        NoticeTopicPublic(
            topic_id=t.topic_id,
            title_ja=t.title_ja,
            description_ja=t.description_ja,
            max_per_month=t.max_per_month,
            web_subscription_days=settings.notice_web_subscription_days,
        )
        for t in topics
    ]


@router.post(
    "/subscriptions",
    status_code=201,
    response_model=SubscriptionResult,
    tags=["notices"],
    responses={422: ERRORS[422]},
)
def subscribe(
    body: SubscriptionCreate,
    idempotency_key: IdempotencyKey,
    factory: SessionFactory,
    client: Client,
    settings: AppSettings,
    now: Now,
) -> SubscriptionResult:
    """Subscribe a resident to notice topics on one channel; a retry with the key gets the same.

    A topic already active for the subject is answered as it is (never twice). Channel `line`
    needs `sealed_line_user_id` (`line_recipient_required`), which then replaces the subject's
    stored one; other channels must send null (`line_recipient_not_allowed`). An unknown topic
    is `unknown_topic`.
    """
    answer = subscriptions.subscribe(
        factory,
        body,
        scope=_scope(client, settings, now),
        idempotency_key=idempotency_key,
        now=now,
        web_days=settings.notice_web_subscription_days,
    )
    return SubscriptionResult.model_validate(answer)


@router.get(
    "/subjects/{subject_id}/subscriptions",
    response_model=list[SubscriptionRecord],
    tags=["notices"],
)
def list_subscriptions(
    subject_id: SubjectId, session: DbSession, _client: Client, settings: AppSettings, now: Now
) -> list[SubscriptionRecord]:
    """A subject's notice subscriptions, active first (a web/rest one past its days: ended)."""
    return subscriptions.history(session, subject_id, now, settings.notice_web_subscription_days)


@router.post(
    "/subjects/{subject_id}/subscriptions/end",
    response_model=SubscriptionEndResult,
    tags=["notices"],
    responses={422: ERRORS[422]},
)
def end_subscriptions(
    subject_id: SubjectId,
    body: SubscriptionEnd,
    idempotency_key: IdempotencyKey,
    factory: SessionFactory,
    client: Client,
    settings: AppSettings,
    now: Now,
) -> SubscriptionEndResult:
    """Stop notices: some topics or all (`topic_ids` null); a retry with the key gets the same.

    `ended` lists the topics stopped now; `receipt` is null when none was active. When no
    active LINE subscription remains, the subject's sealed LINE user id is deleted at once.
    """
    answer = subscriptions.end(
        factory,
        subject_id,
        body,
        scope=_scope(client, settings, now),
        idempotency_key=idempotency_key,
        now=now,
        web_days=settings.notice_web_subscription_days,
    )
    return SubscriptionEndResult.model_validate(answer)


@router.get(
    "/subjects/{subject_id}/notices/unseen",
    response_model=list[UnseenNotice],
    tags=["notices"],
)
def unseen_notices(
    subject_id: SubjectId, session: DbSession, _client: Client, settings: AppSettings, now: Now
) -> list[UnseenNotice]:
    """Sent notices of the subject's running web/rest topics not shown yet (oldest first, ≤ 3)."""
    return subscriptions.unseen(session, subject_id, now, settings.notice_web_subscription_days)


@router.post(
    "/subjects/{subject_id}/notices/seen",
    response_model=NoticesSeenResult,
    tags=["notices"],
    responses={422: ERRORS[422]},
)
def notices_seen(
    subject_id: SubjectId,
    body: NoticesSeen,
    factory: SessionFactory,
    _client: Client,
    settings: AppSettings,
    now: Now,
) -> NoticesSeenResult:
    """Record notices as shown to the subject (each once; ids it could not see are ignored)."""
    days = settings.notice_web_subscription_days
    return NoticesSeenResult(
        seen=subscriptions.mark_seen(factory, subject_id, body.notice_ids, now, days)
    )
