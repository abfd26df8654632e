"""initial schema

Revision ID: 0001
Revises: (none)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_head")),
    )
    op.create_table(
        "audit_log",
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event_type", sa.String(length=64), nullable=False),
        sa.Column("entity_id", sa.String(length=128), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_audit_log")),
    )
    op.create_table(
        "data_items",
        sa.Column("item_id", sa.String(length=64), nullable=False),
        sa.Column("name_ja", sa.String(length=200), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.CheckConstraint("level BETWEEN 0 AND 3", name=op.f("ck_data_items_level_range")),
        sa.PrimaryKeyConstraint("item_id", name=op.f("pk_data_items")),
    )
    op.create_table(
        "idempotency_records",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("client_digest", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("request_sha256", sa.String(length=64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("response", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_idempotency_records")),
        sa.UniqueConstraint("client_digest", "key", name="uq_idempotency_client_key"),
    )
    with op.batch_alter_table("idempotency_records", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_idempotency_records_created_at"), ["created_at"], unique=False
        )

    op.create_table(
        "purposes",
        sa.Column("purpose_id", sa.String(length=64), nullable=False),
        sa.Column("name_ja", sa.String(length=200), nullable=False),
        sa.Column("description_ja", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("purpose_id", name=op.f("pk_purposes")),
    )
    op.create_table(
        "recipients",
        sa.Column("recipient_id", sa.String(length=64), nullable=False),
        sa.Column("name_ja", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.CheckConstraint("kind IN ('city', 'business')", name=op.f("ck_recipients_kind")),
        sa.PrimaryKeyConstraint("recipient_id", name=op.f("pk_recipients")),
    )
    op.create_table(
        "terms",
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("text_ja", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("effective_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("version", name=op.f("pk_terms")),
    )
    op.create_table(
        "offers",
        sa.Column("offer_id", sa.String(length=64), nullable=False),
        sa.Column("recipient_id", sa.String(length=64), nullable=False),
        sa.Column("purpose_id", sa.String(length=64), nullable=False),
        sa.Column("description_ja", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["purpose_id"], ["purposes.purpose_id"], name=op.f("fk_offers_purpose_id_purposes")
        ),
        sa.ForeignKeyConstraint(
            ["recipient_id"],
            ["recipients.recipient_id"],
            name=op.f("fk_offers_recipient_id_recipients"),
        ),
        sa.PrimaryKeyConstraint("offer_id", name=op.f("pk_offers")),
    )
    op.create_table(
        "consents",
        sa.Column("consent_id", sa.String(length=36), nullable=False),
        sa.Column("subject_id", sa.String(length=128), nullable=False),
        sa.Column("offer_id", sa.String(length=64), nullable=False),
        sa.Column("item_ids", sa.JSON(), nullable=False),
        sa.Column("item_set", sa.String(length=1000), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("family_doctor_consulted", sa.String(length=16), nullable=True),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("terms_version", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("withdrawn_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("receipt_id", sa.String(length=36), nullable=False),
        sa.Column("withdrawal_receipt_id", sa.String(length=36), nullable=True),
        sa.CheckConstraint(
            "family_doctor_consulted IS NULL OR family_doctor_consulted IN ('consulted', 'not_yet', 'will_not')",
            name=op.f("ck_consents_family_doctor_consulted"),
        ),
        sa.CheckConstraint("status IN ('active', 'withdrawn')", name=op.f("ck_consents_status")),
        sa.ForeignKeyConstraint(
            ["offer_id"], ["offers.offer_id"], name=op.f("fk_consents_offer_id_offers")
        ),
        sa.ForeignKeyConstraint(
            ["terms_version"], ["terms.version"], name=op.f("fk_consents_terms_version_terms")
        ),
        sa.PrimaryKeyConstraint("consent_id", name=op.f("pk_consents")),
    )
    with op.batch_alter_table("consents", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_consents_subject_id"), ["subject_id"], unique=False)
        batch_op.create_index(
            "uq_consents_active_subject_offer_items",
            ["subject_id", "offer_id", "item_set"],
            unique=True,
            postgresql_where=sa.text("status = 'active'"),
            sqlite_where=sa.text("status = 'active'"),
        )

    op.create_table(
        "ethics_approvals",
        sa.Column("approval_id", sa.String(length=64), nullable=False),
        sa.Column("offer_id", sa.String(length=64), nullable=False),
        sa.Column("approved_by", sa.String(length=200), nullable=False),
        sa.Column("medical_advisors", sa.String(length=400), nullable=False),
        sa.Column("approved_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("valid_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("scope_item_ids", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["offer_id"], ["offers.offer_id"], name=op.f("fk_ethics_approvals_offer_id_offers")
        ),
        sa.PrimaryKeyConstraint("approval_id", name=op.f("pk_ethics_approvals")),
    )
    with op.batch_alter_table("ethics_approvals", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_ethics_approvals_offer_id"), ["offer_id"], unique=False
        )

    op.create_table(
        "offer_benefits",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("offer_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("description_ja", sa.Text(), nullable=False),
        sa.CheckConstraint("kind IN ('health', 'economic')", name=op.f("ck_offer_benefits_kind")),
        sa.ForeignKeyConstraint(
            ["offer_id"], ["offers.offer_id"], name=op.f("fk_offer_benefits_offer_id_offers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_offer_benefits")),
    )
    with op.batch_alter_table("offer_benefits", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_offer_benefits_offer_id"), ["offer_id"], unique=False)

    op.create_table(
        "offer_items",
        sa.Column("offer_id", sa.String(length=64), nullable=False),
        sa.Column("item_id", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["item_id"], ["data_items.item_id"], name=op.f("fk_offer_items_item_id_data_items")
        ),
        sa.ForeignKeyConstraint(
            ["offer_id"], ["offers.offer_id"], name=op.f("fk_offer_items_offer_id_offers")
        ),
        sa.PrimaryKeyConstraint("offer_id", "item_id", name=op.f("pk_offer_items")),
    )
    op.create_table(
        "receipts",
        sa.Column("receipt_id", sa.String(length=36), nullable=False),
        sa.Column("consent_id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["consent_id"], ["consents.consent_id"], name=op.f("fk_receipts_consent_id_consents")
        ),
        sa.PrimaryKeyConstraint("receipt_id", name=op.f("pk_receipts")),
    )
    with op.batch_alter_table("receipts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_receipts_consent_id"), ["consent_id"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("receipts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_receipts_consent_id"))

    op.drop_table("receipts")
    op.drop_table("offer_items")
    with op.batch_alter_table("offer_benefits", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_offer_benefits_offer_id"))

    op.drop_table("offer_benefits")
    with op.batch_alter_table("ethics_approvals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ethics_approvals_offer_id"))

    op.drop_table("ethics_approvals")
    with op.batch_alter_table("consents", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_consents_active_subject_offer_items",
            postgresql_where=sa.text("status = 'active'"),
            sqlite_where=sa.text("status = 'active'"),
        )
        batch_op.drop_index(batch_op.f("ix_consents_subject_id"))

    op.drop_table("consents")
    op.drop_table("offers")
    op.drop_table("terms")
    op.drop_table("recipients")
    op.drop_table("purposes")
    with op.batch_alter_table("idempotency_records", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_idempotency_records_created_at"))

    op.drop_table("idempotency_records")
    op.drop_table("data_items")
    op.drop_table("audit_log")
    op.drop_table("audit_head")
