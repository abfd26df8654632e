"""Receipt codes, the failed look-ups by code, and the counter (窓口) staff role.

- `receipts.receipt_code`: the short code residents read out (`XXXX-XXXX-C`, see
  consent_service/receipt_codes.py), unique. Every existing receipt gets a fresh code here (from
  `secrets`, with the same alphabet and check symbol), also written into its stored body.
- `receipt_code_failures`: look-ups by code that found nothing, counted per requester and per
  client within RECEIPT_CODE_WINDOW_SECONDS and deleted after it.
- `staff_users.role` may be `counter`: staff who look consents up by code and withdraw them on
  a resident's behalf, and nothing else.

The alphabet and check are copied here on purpose: a migration must keep doing what it did when
it was written, whatever the module becomes.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import secrets

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXY"


def _new_code() -> str:
    symbols = "".join(secrets.choice(_ALPHABET) for _ in range(8))
    check = _ALPHABET[sum(i * _ALPHABET.index(s) for i, s in enumerate(symbols, 1)) % 31]
    return f"{symbols[:4]}-{symbols[4:]}-{check}"


def upgrade() -> None:
    with op.batch_alter_table("receipts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("receipt_code", sa.String(length=11), nullable=True))
    receipts = sa.table(
        "receipts",
        sa.column("receipt_id", sa.String),
        sa.column("receipt_code", sa.String),
        sa.column("body", sa.JSON),
    )
    connection = op.get_bind()
    rows = connection.execute(
        sa.select(receipts.c.receipt_id, receipts.c.body).where(receipts.c.receipt_code.is_(None))
    ).all()
    used: set[str] = set()
    for receipt_id, body in rows:
        code = _new_code()
        while code in used:
            code = _new_code()
        used.add(code)
        connection.execute(
            receipts.update()
            .where(receipts.c.receipt_id == receipt_id)
            .values(receipt_code=code, body={**(body or {}), "receipt_code": code})
        )
    with op.batch_alter_table("receipts", schema=None) as batch_op:
        batch_op.alter_column("receipt_code", existing_type=sa.String(length=11), nullable=False)
        batch_op.create_unique_constraint(batch_op.f("uq_receipts_receipt_code"), ["receipt_code"])
    op.create_table(
        "receipt_code_failures",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("client_digest", sa.String(length=64), nullable=False),
        sa.Column("requester", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_receipt_code_failures")),
    )
    with op.batch_alter_table("receipt_code_failures", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_receipt_code_failures_at"), ["at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_receipt_code_failures_client_digest"), ["client_digest"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_receipt_code_failures_requester"), ["requester"], unique=False
        )
    with op.batch_alter_table("staff_users", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_staff_users_role"), type_="check")
        batch_op.create_check_constraint("role", "role IN ('viewer', 'admin', 'counter')")


def downgrade() -> None:
    op.execute(
        "DELETE FROM staff_sessions WHERE user_id IN "
        "(SELECT id FROM staff_users WHERE role = 'counter')"
    )
    op.execute("DELETE FROM staff_users WHERE role = 'counter'")
    with op.batch_alter_table("staff_users", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_staff_users_role"), type_="check")
        batch_op.create_check_constraint("role", "role IN ('viewer', 'admin')")
    op.drop_table("receipt_code_failures")
    with op.batch_alter_table("receipts", schema=None) as batch_op:
        batch_op.drop_constraint("uq_receipts_receipt_code", type_="unique")
        batch_op.drop_column("receipt_code")
