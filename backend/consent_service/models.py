"""Database tables of the consent service (SQLAlchemy 2, typed declarative mapping)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A timezone-aware UTC timestamp on every database (SQLite stores it without the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> Any:
        """Refuse naive datetimes and store UTC."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: use timezone-aware UTC")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        """Return an aware UTC datetime."""
        if value is None:
            return None
        assert isinstance(value, dt.datetime)
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


class Base(DeclarativeBase):
    """Base of all tables, with explicit constraint names for migrations."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class DataItem(Base):
    """A kind of personal data and its level (情報レベル 0-3)."""

    __tablename__ = "data_items"
    __table_args__ = (CheckConstraint("level BETWEEN 0 AND 3", name="level_range"),)

    item_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name_ja: Mapped[str] = mapped_column(String(200))
    level: Mapped[int] = mapped_column(Integer)


class Recipient(Base):
    """Who receives data: a city department or a local business."""

    __tablename__ = "recipients"
    __table_args__ = (CheckConstraint("kind IN ('city', 'business')", name="kind"),)

    recipient_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name_ja: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))


class Purpose(Base):
    """What the data is used for (the seed's target uses)."""

    __tablename__ = "purposes"

    purpose_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name_ja: Mapped[str] = mapped_column(String(200))
    description_ja: Mapped[str] = mapped_column(Text, default="")


class OfferItem(Base):
    """One data item an offer asks for."""

    __tablename__ = "offer_items"

    offer_id: Mapped[str] = mapped_column(ForeignKey("offers.offer_id"), primary_key=True)
    item_id: Mapped[str] = mapped_column(ForeignKey("data_items.item_id"), primary_key=True)
    item: Mapped[DataItem] = relationship(lazy="joined")


class OfferBenefit(Base):
    """What the resident gets back from an offer."""

    __tablename__ = "offer_benefits"
    __table_args__ = (CheckConstraint("kind IN ('health', 'economic')", name="kind"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    offer_id: Mapped[str] = mapped_column(ForeignKey("offers.offer_id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    description_ja: Mapped[str] = mapped_column(Text)


class EthicsApproval(Base):
    """A data ethics board decision on an offer, given on a medical professional's advice."""

    __tablename__ = "ethics_approvals"

    approval_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    offer_id: Mapped[str] = mapped_column(ForeignKey("offers.offer_id"), index=True)
    approved_by: Mapped[str] = mapped_column(String(200))
    medical_advisors: Mapped[str] = mapped_column(String(400))
    approved_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    valid_until: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    scope_item_ids: Mapped[list[str]] = mapped_column(JSON)

    def is_active(self, now: dt.datetime) -> bool:
        """Tell whether the approval is in force at `now`."""
        return self.approved_at <= now < self.valid_until


class Offer(Base):
    """A recipient + purpose + items + benefits that a resident can consent to."""

    __tablename__ = "offers"

    offer_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    recipient_id: Mapped[str] = mapped_column(ForeignKey("recipients.recipient_id"))
    purpose_id: Mapped[str] = mapped_column(ForeignKey("purposes.purpose_id"))
    title_ja: Mapped[str] = mapped_column(String(20), server_default="")
    description_ja: Mapped[str] = mapped_column(Text, default="")
    recipient: Mapped[Recipient] = relationship(lazy="joined")
    purpose: Mapped[Purpose] = relationship(lazy="joined")
    items: Mapped[list[OfferItem]] = relationship(lazy="selectin", cascade="all, delete-orphan")
    benefits: Mapped[list[OfferBenefit]] = relationship(
        lazy="selectin", cascade="all, delete-orphan", order_by=OfferBenefit.id
    )
    approvals: Mapped[list[EthicsApproval]] = relationship(
        lazy="selectin", cascade="all, delete-orphan", order_by=EthicsApproval.approved_at
    )

    def active_approval(self, now: dt.datetime) -> EthicsApproval | None:
        """The newest approval in force at `now` that covers every item of the offer."""
        item_ids = {i.item_id for i in self.items}
        for approval in reversed(self.approvals):
            if approval.is_active(now) and item_ids <= set(approval.scope_item_ids):
                return approval
        return None


class Terms(Base):
    """A version of the terms (約款) residents consent under."""

    __tablename__ = "terms"

    version: Mapped[str] = mapped_column(String(64), primary_key=True)
    text_ja: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    effective_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class Consent(Base):
    """One resident's consent to one offer for one set of items."""

    __tablename__ = "consents"
    __table_args__ = (
        CheckConstraint("status IN ('active', 'withdrawn')", name="status"),
        CheckConstraint(
            "family_doctor_consulted IS NULL OR "
            "family_doctor_consulted IN ('consulted', 'not_yet', 'will_not')",
            name="family_doctor_consulted",
        ),
        # At most one active consent per subject, offer and item set.
        Index(
            "uq_consents_active_subject_offer_items",
            "subject_id",
            "offer_id",
            "item_set",
            unique=True,
            postgresql_where=text("status = 'active'"),
            sqlite_where=text("status = 'active'"),
        ),
    )

    consent_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    subject_id: Mapped[str] = mapped_column(String(128), index=True)
    offer_id: Mapped[str] = mapped_column(ForeignKey("offers.offer_id"))
    item_ids: Mapped[list[str]] = mapped_column(JSON)
    item_set: Mapped[str] = mapped_column(String(1000))
    status: Mapped[str] = mapped_column(String(16))
    family_doctor_consulted: Mapped[str | None] = mapped_column(String(16), nullable=True)
    channel: Mapped[str] = mapped_column(String(16))
    terms_version: Mapped[str] = mapped_column(ForeignKey("terms.version"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    withdrawn_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    receipt_id: Mapped[str] = mapped_column(String(36))
    withdrawal_receipt_id: Mapped[str | None] = mapped_column(String(36), nullable=True)


class Receipt(Base):
    """A consent or withdrawal receipt (Kantara Consent Receipt / ISO/IEC TS 27560 fields)."""

    __tablename__ = "receipts"

    receipt_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    consent_id: Mapped[str] = mapped_column(ForeignKey("consents.consent_id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    # The short code residents read out (consent_service/receipt_codes.py), e.g. K7Q2-M9XD-3.
    receipt_code: Mapped[str] = mapped_column(String(11), unique=True)


class ReceiptCodeFailure(Base):
    """A look-up by receipt code that was not answered with a consent (or is under way).

    Counted per requester and per client within RECEIPT_CODE_WINDOW_SECONDS to limit guessing;
    deleted once older than the window. The code that was tried is not stored.
    """

    __tablename__ = "receipt_code_failures"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)
    client_digest: Mapped[str] = mapped_column(String(64), index=True)
    requester: Mapped[str] = mapped_column(String(128), index=True)


class IdempotencyRecord(Base):
    """The stored answer to a write, so that a retried request gets the same answer."""

    __tablename__ = "idempotency_records"
    __table_args__ = (UniqueConstraint("client_digest", "key", name="uq_idempotency_client_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    client_digest: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(200))
    request_sha256: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    response: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)


class AuditEntry(Base):
    """One append-only, hash-chained audit record."""

    __tablename__ = "audit_log"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    event_type: Mapped[str] = mapped_column(String(64))
    entity_id: Mapped[str] = mapped_column(String(128))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    """The chain's head (one row): locked by every writer so appends are serialised."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(Integer)
    hash: Mapped[str] = mapped_column(String(64))


class StaffUser(Base):
    """A city staff member who may use the console."""

    __tablename__ = "staff_users"
    __table_args__ = (
        CheckConstraint(
            "role IN ('viewer', 'admin', 'counter', 'editor', 'approver')", name="role"
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    # AES-256-GCM under STAFF_TOTP_KEY ("v1:" + base64url), never the secret in clear.
    totp_secret: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    failed_attempts: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    # The last accepted 30-second TOTP step: a code of this step or an earlier one is a replay.
    last_totp_step: Mapped[int | None] = mapped_column(Integer, nullable=True)


class StaffSession(Base):
    """A logged-in browser; only the SHA-256 of the cookie's token is stored."""

    __tablename__ = "staff_sessions"

    token_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("staff_users.id"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    # When the session was last used (STAFF_IDLE_MINUTES); None counts as idle.
    last_seen_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    user: Mapped[StaffUser] = relationship(lazy="joined")


class StaffAccessLog(Base):
    """Who looked at what (every transcript view, exports, logins); admins can read it."""

    __tablename__ = "staff_access_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)
    username: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(200), default="")


class LinkCode(Base):
    """A one-time code that links two channels of one resident (consent_service/links.py).

    Only the keyed hash of the code is stored. Deleted once expired for LINK_CODE_TTL_SECONDS.
    """

    __tablename__ = "link_codes"

    code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    subject_id: Mapped[str] = mapped_column(String(128), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)
    used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class SubjectLink(Base):
    """Two pseudonyms of one resident on different channels, linked by a one-time code.

    In force while its two members are in `subject_link_members`; `unlinked_at` once undone.
    Consents are never rewritten: a listing shows both subjects' consents while the link is in
    force.
    """

    __tablename__ = "subject_links"
    __table_args__ = (
        CheckConstraint("subject_a <> subject_b", name="distinct_subjects"),
        CheckConstraint("channel_a <> channel_b", name="distinct_channels"),
    )

    link_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    subject_a: Mapped[str] = mapped_column(String(128), index=True)  # who issued the code
    channel_a: Mapped[str] = mapped_column(String(16))
    subject_b: Mapped[str] = mapped_column(String(128), index=True)  # who typed it
    channel_b: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    unlinked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class SubjectLinkMember(Base):
    """A subject in a link in force: the primary key keeps every subject in at most one link."""

    __tablename__ = "subject_link_members"

    subject_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    link_id: Mapped[str] = mapped_column(ForeignKey("subject_links.link_id"), index=True)
