"""Analytics fed by Rasa's event broker (issue 20): the console's own tables.

- `analytics_events`: one row per conversation event the staff console needs (kind, sender
  pseudonym, time, channel, intent, response or action, the funnel slot's answer, masked text),
  unique by `event_key` (SHA-256 of the published event) so that a redelivered event is
  stored once.
- `analytics_offsets`: the position `consume` has read up to in a source with positions (the
  SQL event broker's table).

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "analytics_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("event_key", sa.String(length=64), nullable=False),
        sa.Column("sender", sa.String(length=255), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("timestamp", sa.Float(), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=True),
        sa.Column("intent", sa.String(length=255), nullable=True),
        sa.Column("confidence", sa.Float(), nullable=True),
        sa.Column("action", sa.String(length=255), nullable=True),
        sa.Column("value", sa.String(length=32), nullable=True),
        sa.Column("text", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_analytics_events")),
        sa.UniqueConstraint("event_key", name=op.f("uq_analytics_events_event_key")),
    )
    with op.batch_alter_table("analytics_events", schema=None) as batch_op:
        batch_op.create_index("ix_analytics_events_sender_id", ["sender", "id"], unique=False)
        batch_op.create_index(
            "ix_analytics_events_kind_timestamp", ["kind", "timestamp"], unique=False
        )
        batch_op.create_index("ix_analytics_events_timestamp", ["timestamp"], unique=False)
    op.create_table(
        "analytics_offsets",
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("source", name=op.f("pk_analytics_offsets")),
    )


def downgrade() -> None:
    op.drop_table("analytics_offsets")
    op.drop_table("analytics_events")
