"""Linking two channels of one resident: link codes and subject links.

- `link_codes`: one-time codes (only their keyed hash), deleted once expired for
  LINK_CODE_TTL_SECONDS.
- `subject_links`: two pseudonyms of different channels linked by a code; `unlinked_at` once
  undone.
- `subject_link_members`: the members of every link in force; its primary key keeps a subject
  in at most one link.

Consents are not touched: a link never rewrites a consent's subject.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "link_codes",
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("subject_id", sa.String(length=128), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("code_hash", name=op.f("pk_link_codes")),
    )
    with op.batch_alter_table("link_codes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_link_codes_expires_at"), ["expires_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_link_codes_subject_id"), ["subject_id"], unique=False)
    op.create_table(
        "subject_links",
        sa.Column("link_id", sa.String(length=36), nullable=False),
        sa.Column("subject_a", sa.String(length=128), nullable=False),
        sa.Column("channel_a", sa.String(length=16), nullable=False),
        sa.Column("subject_b", sa.String(length=128), nullable=False),
        sa.Column("channel_b", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("unlinked_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "subject_a <> subject_b", name=op.f("ck_subject_links_distinct_subjects")
        ),
        sa.CheckConstraint(
            "channel_a <> channel_b", name=op.f("ck_subject_links_distinct_channels")
        ),
        sa.PrimaryKeyConstraint("link_id", name=op.f("pk_subject_links")),
    )
    with op.batch_alter_table("subject_links", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_subject_links_subject_a"), ["subject_a"], unique=False)
        batch_op.create_index(batch_op.f("ix_subject_links_subject_b"), ["subject_b"], unique=False)
    op.create_table(
        "subject_link_members",
        sa.Column("subject_id", sa.String(length=128), nullable=False),
        sa.Column("link_id", sa.String(length=36), nullable=False),
        sa.ForeignKeyConstraint(
            ["link_id"],
            ["subject_links.link_id"],
            name=op.f("fk_subject_link_members_link_id_subject_links"),
        ),
        sa.PrimaryKeyConstraint("subject_id", name=op.f("pk_subject_link_members")),
    )
    with op.batch_alter_table("subject_link_members", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_subject_link_members_link_id"), ["link_id"], unique=False
        )


def downgrade() -> None:
    op.drop_table("subject_link_members")
    op.drop_table("subject_links")
    op.drop_table("link_codes")
