"""Staff console security: TOTP secrets encrypted at rest, no code replay, idle sessions end.

- `staff_users.totp_secret` grows to hold the AES-GCM ciphertext (`v1:` + base64url). Secrets
  stored in clear by 0003 are encrypted in place with STAFF_TOTP_KEY by
  `consent_service.staff.auth.encrypt_stored_secrets`, which `prepare_database` runs after every
  migration (the key lives in the settings, not in the migration).
- `staff_users.last_totp_step`: the last accepted 30-second TOTP step; a code of that step or an
  earlier one is refused (RFC 6238 section 5.2).
- `staff_sessions.last_seen_at`: when the session was last used, for STAFF_IDLE_MINUTES. Sessions
  opened before this migration have none and count as idle (one more log-in after upgrading).

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("staff_users", schema=None) as batch_op:
        batch_op.alter_column(
            "totp_secret",
            existing_type=sa.String(length=64),
            type_=sa.String(length=200),
            existing_nullable=False,
        )
        batch_op.add_column(sa.Column("last_totp_step", sa.Integer(), nullable=True))
    with op.batch_alter_table("staff_sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    # totp_secret keeps its width: encrypted secrets do not fit the old 64 characters.
    with op.batch_alter_table("staff_sessions", schema=None) as batch_op:
        batch_op.drop_column("last_seen_at")
    with op.batch_alter_table("staff_users", schema=None) as batch_op:
        batch_op.drop_column("last_totp_step")
