"""Request and response bodies of the notice calls of `/v1` (docs/contract.md, docs/notices.md)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import BaseModel, Field, field_validator

from consent_service.schemas import SUBJECT_ID_PATTERN, Channel, Strict

TopicId = Annotated[str, Field(min_length=1, max_length=64)]
NoticeId = Annotated[str, Field(min_length=1, max_length=36)]
SubscriptionStatus = Literal["active", "ended"]
EndReason = Literal["resident", "unfollow"]
# How a subscription ended: asked (`resident`, `unfollow`), or a web/rest one that ran out
# (`expired`, NOTICE_WEB_SUBSCRIPTION_DAYS after it began).
EndedBecause = Literal["resident", "unfollow", "expired"]
# base64url of eph_pub(32) || nonce(12) || ciphertext with its 16-byte tag (notices/seal.py).
SEALED_PATTERN = r"^[A-Za-z0-9_-]+$"


def _distinct(value: list[str] | None) -> list[str] | None:
    if value is not None and len(set(value)) != len(value):
        raise ValueError("topic_ids must not repeat a topic")
    return value


class NoticeTopicPublic(BaseModel):
    """`GET /v1/notice-topics`: one topic residents may subscribe to."""

    topic_id: str
    title_ja: str
    description_ja: str
    max_per_month: int = Field(description="At most this many notices a month (Japan time).")
    web_subscription_days: int = Field(
        description=(
            "A web chat or REST subscription ends this many days after it began "
            "(NOTICE_WEB_SUBSCRIPTION_DAYS); the same for every topic."
        )
    )


class SubscriptionCreate(Strict):
    """`POST /v1/subscriptions`."""

    subject_id: str = Field(pattern=SUBJECT_ID_PATTERN, description="A keyed pseudonym.")
    topic_ids: list[TopicId] = Field(
        min_length=1, max_length=20, json_schema_extra={"uniqueItems": True}
    )
    channel: Channel
    sealed_line_user_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=512,
        pattern=SEALED_PATTERN,
        description=(
            "channel `line` only: the resident's LINE user id sealed to the sender's public key "
            "by the LINE channel (never the id itself); null for the other channels."
        ),
    )

    @field_validator("topic_ids")
    @classmethod
    def _distinct_topics(cls, value: list[str]) -> list[str]:
        return _distinct(value) or value


class SubscriptionPublic(BaseModel):
    """A subscription as `POST /v1/subscriptions` answers it."""

    subscription_id: str
    topic_id: str
    channel: Channel
    status: SubscriptionStatus
    created_at: dt.datetime


class SubscriptionRecord(SubscriptionPublic):
    """A subscription as a subject's list shows it."""

    ended_at: dt.datetime | None
    end_reason: EndedBecause | None = Field(
        description="`resident`, `unfollow`, or `expired` (a web/rest subscription that ran out)."
    )
    receipt_id: str


class NoticeReceipt(BaseModel):
    """The receipt of subscribing or stopping ("N-" and 10 characters)."""

    receipt_id: str = Field(pattern=r"^N-[A-Z2-7]{10}$")
    kind: Literal["notice_subscription", "notice_unsubscription"]
    created_at: dt.datetime


class SubscriptionResult(BaseModel):
    """`POST /v1/subscriptions`: the subject's subscriptions to the asked topics, and a receipt."""

    subscriptions: list[SubscriptionPublic]
    receipt: NoticeReceipt


class SubscriptionEnd(Strict):
    """`POST /v1/subjects/{subject_id}/subscriptions/end`."""

    topic_ids: list[TopicId] | None = Field(
        default=None,
        min_length=1,
        max_length=20,
        json_schema_extra={"uniqueItems": True},
        description="The topics to stop; null stops all.",
    )
    reason: EndReason = Field(
        default="resident",
        description="`resident` (asked to stop) or `unfollow` (blocked the LINE account).",
    )

    @field_validator("topic_ids")
    @classmethod
    def _distinct_topics(cls, value: list[str] | None) -> list[str] | None:
        return _distinct(value)


class SubscriptionEndResult(BaseModel):
    """The topics stopped now, and the receipt (null when nothing was active)."""

    ended: list[str]
    receipt: NoticeReceipt | None


class UnseenNotice(BaseModel):
    """A sent notice a web chat resident has not been shown yet."""

    notice_id: str
    topic_id: str
    title_ja: str = Field(description="The topic's title.")
    text_ja: str
    link_url: str | None
    sent_at: dt.datetime


class NoticesSeen(Strict):
    """`POST /v1/subjects/{subject_id}/notices/seen`."""

    notice_ids: list[NoticeId] = Field(min_length=1, max_length=50)


class NoticesSeenResult(BaseModel):
    """How many of the notices were recorded as shown now."""

    seen: int
