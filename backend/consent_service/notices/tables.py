"""Tables of the notices (issue 17; migration 0009).

A subscription is a contact preference, kept apart from data-provision consents (`consents`)
and never used as one. A LINE resident's user id is needed to push to them; it is kept only
while they have an active LINE subscription, only sealed (`notice_recipients.sealed_user_id`,
X25519 + AES-256-GCM to the sender's public key: docs/notices.md), and only the sending
component (`python -m consent_service send-notices`) holds the private key that opens it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from consent_service.models import Base, UTCDateTime


class NoticeTopic(Base):
    """A topic residents may subscribe to (catalog/notice_topics.yml)."""

    __tablename__ = "notice_topics"

    topic_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    title_ja: Mapped[str] = mapped_column(String(100))
    description_ja: Mapped[str] = mapped_column(String(500))
    # At most this many notices of the topic per calendar month (JST): the sender refuses more.
    max_per_month: Mapped[int] = mapped_column(Integer)
    sort_order: Mapped[int] = mapped_column(Integer, default=0)


class NoticeSubscription(Base):
    """One resident's subscription to one topic, on one channel."""

    __tablename__ = "notice_subscriptions"
    __table_args__ = (
        CheckConstraint("status IN ('active', 'ended')", name="status"),
        CheckConstraint("channel IN ('line', 'web', 'rest')", name="channel"),
        CheckConstraint(
            "end_reason IS NULL OR end_reason IN ('resident', 'unfollow', 'expired')",
            name="end_reason",
        ),
        # At most one active subscription per subject and topic.
        Index(
            "uq_notice_subscriptions_active_subject_topic",
            "subject_id",
            "topic_id",
            unique=True,
            postgresql_where=text("status = 'active'"),
            sqlite_where=text("status = 'active'"),
        ),
    )

    subscription_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    subject_id: Mapped[str] = mapped_column(String(128), index=True)
    topic_id: Mapped[str] = mapped_column(ForeignKey("notice_topics.topic_id"), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # `resident`, `unfollow`, or `expired` (a web/rest one NOTICE_WEB_SUBSCRIPTION_DAYS old).
    end_reason: Mapped[str | None] = mapped_column(String(16), nullable=True)
    # The receipt the resident was given ("N-" + 10 characters), and the one for stopping.
    receipt_id: Mapped[str] = mapped_column(String(36))
    end_receipt_id: Mapped[str | None] = mapped_column(String(36), nullable=True)


class NoticeRecipient(Base):
    """The sealed LINE user id of a subject with at least one active LINE subscription.

    Deleted in the same transaction that ends the subject's last active LINE subscription.
    """

    __tablename__ = "notice_recipients"

    subject_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    sealed_user_id: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class Notice(Base):
    """A notice drafted by an editor, approved by another account, sent by the sender."""

    __tablename__ = "notices"
    __table_args__ = (
        CheckConstraint(
            "status IN ('draft', 'approved', 'sending', 'sent', 'cancelled', 'refused')",
            name="status",
        ),
        CheckConstraint("approved_by IS NULL OR approved_by <> drafted_by", name="four_eyes"),
    )

    notice_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    topic_id: Mapped[str] = mapped_column(ForeignKey("notice_topics.topic_id"), index=True)
    text_ja: Mapped[str] = mapped_column(Text)
    link_url: Mapped[str | None] = mapped_column(String(500), nullable=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    drafted_by: Mapped[str] = mapped_column(String(64))
    drafted_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    approved_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    approved_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # When to send (UTC); never inside the quiet hours (NOTICE_QUIET_HOURS, JST).
    scheduled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # Planned LINE recipients (all batches) and how many LINE accepted.
    recipients_planned: Mapped[int | None] = mapped_column(Integer, nullable=True)
    recipients_sent: Mapped[int] = mapped_column(Integer, default=0)
    # Why the sender refused it, for the console: `monthly_limit`, `too_late` (planned more than
    # NOTICE_MAX_DELAY_HOURS after its time), `line_rejected` (LINE accepted no batch).
    refusal: Mapped[str | None] = mapped_column(String(64), nullable=True)


class NoticeBatch(Base):
    """One multicast call of a notice: at most 500 recipients, one X-Line-Retry-Key.

    Planned (recipients and key) and committed before the first call, so a sender restarted
    mid-send calls again with the same key and LINE does not deliver twice.
    """

    __tablename__ = "notice_batches"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'sent', 'failed')", name="status"),
        Index("uq_notice_batches_notice_batch", "notice_id", "batch_no", unique=True),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    notice_id: Mapped[str] = mapped_column(ForeignKey("notices.notice_id"), index=True)
    batch_no: Mapped[int] = mapped_column(Integer)
    retry_key: Mapped[str] = mapped_column(String(36), unique=True)
    # Subject pseudonyms, never user ids: the ids are opened from notice_recipients at send time.
    subject_ids: Mapped[list[str]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # Committed before the first call: LINE keeps a retry key 24 hours, so the sender gives up
    # on the batch 24 hours after this (a later retry could deliver twice).
    first_attempt_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_http_status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


class NoticeWebDelivery(Base):
    """A notice shown to a web chat resident at their next visit (once)."""

    __tablename__ = "notice_web_deliveries"
    __table_args__ = (
        Index("uq_notice_web_deliveries_notice_subject", "notice_id", "subject_id", unique=True),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    notice_id: Mapped[str] = mapped_column(ForeignKey("notices.notice_id"), index=True)
    subject_id: Mapped[str] = mapped_column(String(128), index=True)
    shown_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
