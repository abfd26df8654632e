"""The staff labelling loop (issue 15): the `editor` role and `staff_labels`.

- `staff_users.role` may be `editor`: a viewer who may also label what the assistant did not
  understand (admins may label too).
- `staff_labels`: one row per labelled message — the text as the analytics tables keep it
  (masked at intake), the intent it should have been or "new topic" with a (masked) note, who
  labelled it and when, and the last answer of the running assistant when asked again
  (`/model/parse`). `analytics_event_id` is not a foreign key: the analytics retention may
  delete the event, the label (and its masked text) stays until exported and reviewed.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("staff_users", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_staff_users_role"), type_="check")
        batch_op.create_check_constraint("role", "role IN ('viewer', 'admin', 'counter', 'editor')")
    op.create_table(
        "staff_labels",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("analytics_event_id", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("intent", sa.String(length=255), nullable=True),
        sa.Column("note", sa.String(length=200), nullable=False),
        sa.Column("labelled_by", sa.String(length=64), nullable=False),
        sa.Column("labelled_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("parsed_intent", sa.String(length=255), nullable=True),
        sa.Column("parsed_confidence", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_labels")),
        sa.UniqueConstraint("analytics_event_id", name=op.f("uq_staff_labels_analytics_event_id")),
    )


def downgrade() -> None:
    op.drop_table("staff_labels")
    op.execute(
        "DELETE FROM staff_sessions WHERE user_id IN "
        "(SELECT id FROM staff_users WHERE role = 'editor')"
    )
    op.execute("DELETE FROM staff_users WHERE role = 'editor'")
    with op.batch_alter_table("staff_users", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_staff_users_role"), type_="check")
        batch_op.create_check_constraint("role", "role IN ('viewer', 'admin', 'counter')")
