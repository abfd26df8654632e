"""Health notices residents opt into (issue 17): topics, subscriptions, sealed recipients.

- `staff_users.role` may be `approver`: a viewer who may approve notices drafted by someone else.
- `notice_topics`: the topics of catalog/notice_topics.yml (loaded with the offers).
- `notice_subscriptions`: one resident's subscription to one topic on one channel (a contact
  preference, never a data-provision consent); at most one active per subject and topic.
- `notice_recipients`: the sealed LINE user id of a subject with an active LINE subscription
  (only the sender holds the key that opens it); deleted with the last LINE subscription.
- `notices`, `notice_batches`: drafted, approved (by another account) and sent notices, and the
  multicast calls planned for them (one X-Line-Retry-Key each, committed before the first call).
- `notice_web_deliveries`: notices shown once to web chat residents at their next visit.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("staff_users", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_staff_users_role"), type_="check")
        batch_op.create_check_constraint(
            "role", "role IN ('viewer', 'admin', 'counter', 'editor', 'approver')"
        )
    op.create_table(
        "notice_topics",
        sa.Column("topic_id", sa.String(length=64), nullable=False),
        sa.Column("title_ja", sa.String(length=100), nullable=False),
        sa.Column("description_ja", sa.String(length=500), nullable=False),
        sa.Column("max_per_month", sa.Integer(), nullable=False),
        sa.Column("sort_order", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("topic_id", name=op.f("pk_notice_topics")),
    )
    op.create_table(
        "notice_subscriptions",
        sa.Column("subscription_id", sa.String(length=36), nullable=False),
        sa.Column("subject_id", sa.String(length=128), nullable=False),
        sa.Column("topic_id", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("end_reason", sa.String(length=16), nullable=True),
        sa.Column("receipt_id", sa.String(length=36), nullable=False),
        sa.Column("end_receipt_id", sa.String(length=36), nullable=True),
        sa.CheckConstraint(
            "channel IN ('line', 'web', 'rest')", name=op.f("ck_notice_subscriptions_channel")
        ),
        sa.CheckConstraint(
            "end_reason IS NULL OR end_reason IN ('resident', 'unfollow', 'expired')",
            name=op.f("ck_notice_subscriptions_end_reason"),
        ),
        sa.CheckConstraint(
            "status IN ('active', 'ended')", name=op.f("ck_notice_subscriptions_status")
        ),
        sa.ForeignKeyConstraint(
            ["topic_id"],
            ["notice_topics.topic_id"],
            name=op.f("fk_notice_subscriptions_topic_id_notice_topics"),
        ),
        sa.PrimaryKeyConstraint("subscription_id", name=op.f("pk_notice_subscriptions")),
    )
    with op.batch_alter_table("notice_subscriptions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_notice_subscriptions_subject_id"), ["subject_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_notice_subscriptions_topic_id"), ["topic_id"], unique=False
        )
        batch_op.create_index(
            "uq_notice_subscriptions_active_subject_topic",
            ["subject_id", "topic_id"],
            unique=True,
            postgresql_where=sa.text("status = 'active'"),
            sqlite_where=sa.text("status = 'active'"),
        )
    op.create_table(
        "notice_recipients",
        sa.Column("subject_id", sa.String(length=128), nullable=False),
        sa.Column("sealed_user_id", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("subject_id", name=op.f("pk_notice_recipients")),
    )
    op.create_table(
        "notices",
        sa.Column("notice_id", sa.String(length=36), nullable=False),
        sa.Column("topic_id", sa.String(length=64), nullable=False),
        sa.Column("text_ja", sa.Text(), nullable=False),
        sa.Column("link_url", sa.String(length=500), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("drafted_by", sa.String(length=64), nullable=False),
        sa.Column("drafted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("approved_by", sa.String(length=64), nullable=True),
        sa.Column("approved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("scheduled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("recipients_planned", sa.Integer(), nullable=True),
        sa.Column("recipients_sent", sa.Integer(), nullable=False),
        sa.Column("refusal", sa.String(length=64), nullable=True),
        sa.CheckConstraint(
            "approved_by IS NULL OR approved_by <> drafted_by", name=op.f("ck_notices_four_eyes")
        ),
        sa.CheckConstraint(
            "status IN ('draft', 'approved', 'sending', 'sent', 'cancelled', 'refused')",
            name=op.f("ck_notices_status"),
        ),
        sa.ForeignKeyConstraint(
            ["topic_id"], ["notice_topics.topic_id"], name=op.f("fk_notices_topic_id_notice_topics")
        ),
        sa.PrimaryKeyConstraint("notice_id", name=op.f("pk_notices")),
    )
    with op.batch_alter_table("notices", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_notices_status"), ["status"], unique=False)
        batch_op.create_index(batch_op.f("ix_notices_topic_id"), ["topic_id"], unique=False)
    op.create_table(
        "notice_batches",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("notice_id", sa.String(length=36), nullable=False),
        sa.Column("batch_no", sa.Integer(), nullable=False),
        sa.Column("retry_key", sa.String(length=36), nullable=False),
        sa.Column("subject_ids", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("first_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_http_status", sa.Integer(), nullable=True),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'sent', 'failed')", name=op.f("ck_notice_batches_status")
        ),
        sa.ForeignKeyConstraint(
            ["notice_id"], ["notices.notice_id"], name=op.f("fk_notice_batches_notice_id_notices")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notice_batches")),
        sa.UniqueConstraint("retry_key", name=op.f("uq_notice_batches_retry_key")),
    )
    with op.batch_alter_table("notice_batches", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_notice_batches_notice_id"), ["notice_id"], unique=False
        )
        batch_op.create_index(
            "uq_notice_batches_notice_batch", ["notice_id", "batch_no"], unique=True
        )
    op.create_table(
        "notice_web_deliveries",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("notice_id", sa.String(length=36), nullable=False),
        sa.Column("subject_id", sa.String(length=128), nullable=False),
        sa.Column("shown_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["notice_id"],
            ["notices.notice_id"],
            name=op.f("fk_notice_web_deliveries_notice_id_notices"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notice_web_deliveries")),
    )
    with op.batch_alter_table("notice_web_deliveries", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_notice_web_deliveries_notice_id"), ["notice_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_notice_web_deliveries_subject_id"), ["subject_id"], unique=False
        )
        batch_op.create_index(
            "uq_notice_web_deliveries_notice_subject", ["notice_id", "subject_id"], unique=True
        )


def downgrade() -> None:
    op.drop_table("notice_web_deliveries")
    op.drop_table("notice_batches")
    op.drop_table("notices")
    op.drop_table("notice_recipients")
    op.drop_table("notice_subscriptions")
    op.drop_table("notice_topics")
    op.execute(
        "DELETE FROM staff_sessions WHERE user_id IN "
        "(SELECT id FROM staff_users WHERE role = 'approver')"
    )
    op.execute("DELETE FROM staff_users WHERE role = 'approver'")
    with op.batch_alter_table("staff_users", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_staff_users_role"), type_="check")
        batch_op.create_check_constraint("role", "role IN ('viewer', 'admin', 'counter', 'editor')")
