"""Loading the catalogue (items, recipients, purposes, offers, approvals, terms) from YAML."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from consent_service import audit
from consent_service.audit import canonical_json
from consent_service.catalog.notice_topics import load_topics, topics_path
from consent_service.models import (
    DataItem,
    EthicsApproval,
    Offer,
    OfferBenefit,
    OfferItem,
    Purpose,
    Recipient,
    Terms,
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ControllerSpec(_Strict):
    """The information bank operating the service (the receipts' controller)."""

    name_ja: str
    jurisdiction: str = "JP"


class TermsSpec(_Strict):
    """The terms in force, their text kept in a file beside the catalogue."""

    version: str
    effective_at: dt.datetime
    file: str


class ItemSpec(_Strict):
    """A data item and its level."""

    item_id: str
    name_ja: str
    level: int = Field(ge=0, le=3)


class RecipientSpec(_Strict):
    """A recipient."""

    id: str
    name_ja: str
    kind: Literal["city", "business"]


class PurposeSpec(_Strict):
    """A purpose."""

    id: str
    name_ja: str
    description_ja: str = ""


class BenefitSpec(_Strict):
    """A benefit."""

    kind: Literal["health", "economic"]
    description_ja: str


class ApprovalSpec(_Strict):
    """A data ethics board approval (who, on whose medical advice, when, for how long)."""

    approval_id: str
    approved_by: str
    medical_advisors: str
    approved_at: dt.datetime
    valid_until: dt.datetime


class OfferSpec(_Strict):
    """An offer."""

    offer_id: str
    title_ja: str = Field(min_length=1, max_length=20)
    recipient: str
    purpose: str
    description_ja: str = ""
    items: list[str] = Field(min_length=1)
    benefits: list[BenefitSpec] = Field(min_length=1)
    approval: ApprovalSpec | None = None


class CatalogSpec(_Strict):
    """The whole catalogue file."""

    controller: ControllerSpec
    terms: TermsSpec
    items: list[ItemSpec]
    recipients: list[RecipientSpec]
    purposes: list[PurposeSpec]
    offers: list[OfferSpec]

    @model_validator(mode="after")
    def _consistent(self) -> CatalogSpec:
        levels = {i.item_id: i.level for i in self.items}
        recipients = {r.id for r in self.recipients}
        purposes = {p.id for p in self.purposes}
        for offer in self.offers:
            unknown = [i for i in offer.items if i not in levels]
            if unknown:
                raise ValueError(f"offer {offer.offer_id}: unknown items {unknown}")
            if any(levels[i] == 3 for i in offer.items):
                raise ValueError(f"offer {offer.offer_id}: level-3 data is never offered")
            if offer.recipient not in recipients or offer.purpose not in purposes:
                raise ValueError(f"offer {offer.offer_id}: unknown recipient or purpose")
        return self


def read(path: Path) -> tuple[CatalogSpec, str]:
    """Read and validate a catalogue file and the terms text it names.

    Args:
        path: The YAML file.

    Returns:
        The catalogue and the terms text.
    """
    spec = CatalogSpec.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    terms_text = (path.parent / spec.terms.file).read_text(encoding="utf-8")
    return spec, terms_text


def load(session: Session, path: Path, now: dt.datetime) -> CatalogSpec:
    """Insert or update the catalogue in the database, inside the caller's transaction.

    Existing consents keep their terms version; a new terms version becomes the current one.
    Every new ethics approval is written to the audit log. The notice topics
    (notice_topics.yml beside the file, when there) are loaded too.

    Args:
        session: The open session.
        path: The YAML file.
        now: The current time (UTC), for the audit log.

    Returns:
        The catalogue that was loaded.
    """
    spec, terms_text = read(path)
    for item in spec.items:
        session.merge(DataItem(item_id=item.item_id, name_ja=item.name_ja, level=item.level))
    for recipient in spec.recipients:
        session.merge(
            Recipient(recipient_id=recipient.id, name_ja=recipient.name_ja, kind=recipient.kind)
        )
    for purpose in spec.purposes:
        session.merge(
            Purpose(
                purpose_id=purpose.id,
                name_ja=purpose.name_ja,
                description_ja=purpose.description_ja,
            )
        )
    if session.get(Terms, spec.terms.version) is None:
        session.add(
            Terms(
                version=spec.terms.version,
                text_ja=terms_text,
                sha256=hashlib.sha256(terms_text.encode("utf-8")).hexdigest(),
                effective_at=spec.terms.effective_at.astimezone(dt.UTC),
            )
        )
    session.flush()
    for offer_spec in spec.offers:
        _load_offer(session, offer_spec, now)
    # The notice topics beside the catalogue (a catalogue copied alone keeps the loaded ones).
    if topics_path(path).is_file():
        load_topics(session, topics_path(path))
    return spec


def _load_offer(session: Session, spec: OfferSpec, now: dt.datetime) -> None:
    offer = session.get(Offer, spec.offer_id)
    if offer is None:
        offer = Offer(offer_id=spec.offer_id)
        session.add(offer)
    offer.recipient_id, offer.purpose_id = spec.recipient, spec.purpose
    offer.title_ja = spec.title_ja
    offer.description_ja = spec.description_ja
    offer.items = [OfferItem(item_id=item) for item in spec.items]
    offer.benefits = [
        OfferBenefit(kind=b.kind, description_ja=b.description_ja) for b in spec.benefits
    ]
    session.flush()
    if spec.approval and session.get(EthicsApproval, spec.approval.approval_id) is None:
        approval = EthicsApproval(
            approval_id=spec.approval.approval_id,
            offer_id=spec.offer_id,
            approved_by=spec.approval.approved_by,
            medical_advisors=spec.approval.medical_advisors,
            approved_at=spec.approval.approved_at.astimezone(dt.UTC),
            valid_until=spec.approval.valid_until.astimezone(dt.UTC),
            scope_item_ids=sorted(spec.items),
        )
        session.add(approval)
        session.flush()
        audit.append(
            session,
            "approval.recorded",
            approval.approval_id,
            {
                "offer_id": spec.offer_id,
                "approved_by": approval.approved_by,
                "medical_advisors": approval.medical_advisors,
                "approved_at": approval.approved_at.isoformat(),
                "valid_until": approval.valid_until.isoformat(),
                "scope_item_ids": approval.scope_item_ids,
            },
            now,
        )


# Part of every offer version, so that a change of what goes into the hash changes every version.
OFFER_VERSION_SCHEME = "offer-version-1"


def offer_version(offer: Offer, now: dt.datetime) -> str:
    """The version of an offer's content at `now`: it changes with anything shown or agreed to.

    Offers are loaded from the catalogue and can be edited in the database, with no version
    column; the version is therefore computed from the content itself (no migration): recipient,
    purpose, title, description, items with their names and levels, benefits in order and the
    ethics approval in force at `now`.

    Args:
        offer: The offer, with its relationships loaded.
        now: The current time (UTC): which approval is in force.

    Returns:
        The hex SHA-256 of the content's canonical JSON.
    """
    approval = offer.active_approval(now)
    content = {
        "scheme": OFFER_VERSION_SCHEME,
        "offer_id": offer.offer_id,
        "title_ja": offer.title_ja,
        "description_ja": offer.description_ja,
        "recipient": [offer.recipient.recipient_id, offer.recipient.name_ja, offer.recipient.kind],
        "purpose": [
            offer.purpose.purpose_id,
            offer.purpose.name_ja,
            offer.purpose.description_ja,
        ],
        "items": sorted([i.item_id, i.item.name_ja, i.item.level] for i in offer.items),
        "benefits": [[b.kind, b.description_ja] for b in offer.benefits],
        "approval": None
        if approval is None
        else [
            approval.approval_id,
            approval.approved_by,
            approval.medical_advisors,
            approval.approved_at.isoformat(),
            approval.valid_until.isoformat(),
            sorted(approval.scope_item_ids),
        ],
    }
    return hashlib.sha256(canonical_json(content).encode("utf-8")).hexdigest()


def current_terms(session: Session, now: dt.datetime) -> Terms | None:
    """The newest terms already in effect at `now`."""
    return session.execute(
        select(Terms).where(Terms.effective_at <= now).order_by(Terms.effective_at.desc()).limit(1)
    ).scalar_one_or_none()
