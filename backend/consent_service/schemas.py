"""Request and response bodies of the `/v1` API (docs/contract.md)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Channel = Literal["line", "web", "rest"]
FamilyDoctorAnswer = Literal["consulted", "not_yet", "will_not"]
SUBJECT_ID_PATTERN = r"^[0-9a-f]{64}$"
ItemId = Annotated[str, Field(min_length=1, max_length=64)]


class Strict(BaseModel):
    """Refuse unknown fields: a typo must not silently drop a value."""

    model_config = ConfigDict(extra="forbid")


class Health(BaseModel):
    """`GET /health`."""

    status: Literal["ok"]
    database: Literal["ok"]


class TermsPublic(BaseModel):
    """The current terms."""

    version: str
    sha256: str
    text_ja: str


class ItemPublic(BaseModel):
    """One catalogue item."""

    item_id: str
    name_ja: str
    level: int


class RecipientPublic(BaseModel):
    """Who receives the data."""

    id: str
    name_ja: str
    kind: Literal["city", "business"]


class PurposePublic(BaseModel):
    """What the data is used for."""

    id: str
    name_ja: str
    description_ja: str


class OfferItemPublic(BaseModel):
    """An item of an offer, with its level and name."""

    item_id: str
    level: int
    name_ja: str


class BenefitPublic(BaseModel):
    """What the resident gets back."""

    kind: Literal["health", "economic"]
    description_ja: str


class ApprovalPublic(BaseModel):
    """The data ethics board approval in force for an offer."""

    approved_by: str
    medical_advisors: str
    approved_at: dt.datetime
    valid_until: dt.datetime
    scope_item_ids: list[str]


class OfferPublic(BaseModel):
    """An offer residents can consent to."""

    offer_id: str
    title_ja: str = Field(description="A short title (at most 20 characters) for buttons.")
    recipient: RecipientPublic
    purpose: PurposePublic
    description_ja: str
    items: list[OfferItemPublic]
    max_level: int
    benefits: list[BenefitPublic]
    ethics_approval: ApprovalPublic | None
    consent_required: bool = Field(description="False for level-0 (statistics) offers.")
    consentable: bool = Field(description="True when a consent to it can be recorded now.")
    version: str = Field(
        description=(
            "SHA-256 (hex) of everything the offer shows and asks for: recipient, purpose, title, "
            "description, items with names and levels, benefits and the approval in force. It "
            "changes whenever any of them changes."
        )
    )


class ConsentCreate(Strict):
    """`POST /v1/consents`."""

    subject_id: str = Field(pattern=SUBJECT_ID_PATTERN, description="A keyed pseudonym.")
    offer_id: str = Field(min_length=1, max_length=64)
    item_ids: list[ItemId] = Field(
        min_length=1, max_length=32, json_schema_extra={"uniqueItems": True}
    )
    channel: Channel
    family_doctor_consulted: FamilyDoctorAnswer | None = None
    terms_version: str = Field(min_length=1, max_length=64)
    offer_version: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description=(
            "The offer's `version` when it was read back to the resident. When given, the consent "
            "is refused as `offer_changed` unless the offer still has this version and item_ids "
            "are exactly its items. Optional: requests without it are checked as before."
        ),
    )

    @field_validator("item_ids")
    @classmethod
    def _distinct_items(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("item_ids must not repeat an item")
        return value


class ConsentRecord(BaseModel):
    """A consent as the subject's history shows it."""

    consent_id: str
    offer_id: str
    item_ids: list[str]
    status: Literal["active", "withdrawn"]
    family_doctor_consulted: FamilyDoctorAnswer | None
    channel: Channel
    terms_version: str
    created_at: dt.datetime
    withdrawn_at: dt.datetime | None
    receipt_id: str
    withdrawal_receipt_id: str | None
    receipt_code: str = Field(description="The code of the consent's receipt (XXXX-XXXX-C).")
    withdrawal_receipt_code: str | None = Field(
        default=None, description="The code of the withdrawal receipt, once withdrawn."
    )
    subject_id: str = Field(
        default="", description="The pseudonym the consent was given under (never rewritten)."
    )
    via_link: bool = Field(
        default=False,
        description="True for a consent of the subject's linked partner (another channel).",
    )


class ConsentResult(BaseModel):
    """The answer to a consent or a withdrawal: the consent's state and its receipt."""

    consent_id: str
    status: Literal["active", "withdrawn"]
    receipt: dict[str, Any]


class AuditVerification(BaseModel):
    """The result of verifying the audit chain and the consents against it."""

    ok: bool
    entries: int
    first_bad_seq: int | None
    problem: str | None
    consent_id: str | None = Field(
        default=None, description="The consent whose row differs from what the chain says."
    )


class ErrorBody(BaseModel):
    """Every error: a machine-readable reason and a human-readable message."""

    reason: str
    message: str
    consent_id: str | None = None


RECEIPT_CODE_TEXT_MAX = 40  # what a resident may type (receipt_codes.MAX_INPUT)


class ReceiptCodeInfo(BaseModel):
    """What a receipt code shows: the offer's name and the consent's status, nothing else."""

    receipt_code: str = Field(description="The code, normalised to XXXX-XXXX-C.")
    kind: Literal["consent", "withdrawal"] = Field(description="Which receipt the code is of.")
    offer_id: str
    offer_title_ja: str
    status: Literal["active", "withdrawn"]


class CodeWithdrawal(Strict):
    """`POST /v1/receipt-codes/{code}/withdraw`: who asks (never becomes the consent's subject)."""

    requester: str = Field(
        pattern=SUBJECT_ID_PATTERN,
        description="The pseudonym of whoever typed the code (recorded in the audit entry).",
    )
    channel: Channel


class LinkCodeCreate(Strict):
    """`POST /v1/subjects/{subject_id}/link-codes`: the channel the code is shown on."""

    channel: Channel


class LinkCodeIssued(BaseModel):
    """A one-time link code, shown once: type it on the other channel before `expires_at`."""

    code: str = Field(description="8 digits shown as 1234-5678.")
    expires_at: dt.datetime


class LinkRedeem(Strict):
    """`POST /v1/subjects/{subject_id}/links`: the code typed, and the channel it was typed on."""

    code: str = Field(
        min_length=1,
        max_length=40,
        description="The link code as typed (full-width digits and separators are accepted).",
    )
    channel: Channel


class LinkPublic(BaseModel):
    """A subject's link: whether in force, the other channel and since when (no pseudonym)."""

    linked: bool
    link_id: str | None = None
    partner_channel: Channel | None = None
    linked_at: dt.datetime | None = None
