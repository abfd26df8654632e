"""The `/v1` routes and `/health` (docs/contract.md)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select, text

from consent_service import audit, code_attempts, consents, links, receipt_codes, rules
from consent_service.api.deps import (
    Admin,
    AppSettings,
    Client,
    DbSession,
    Now,
    ReceiptController,
    SessionFactory,
)
from consent_service.catalog import current_terms
from consent_service.errors import STATUS, Reason, Refused, error_body
from consent_service.models import Consent, DataItem, Offer, Receipt
from consent_service.schemas import (
    SUBJECT_ID_PATTERN,
    ApprovalPublic,
    AuditVerification,
    BenefitPublic,
    CodeWithdrawal,
    ConsentCreate,
    ConsentRecord,
    ConsentResult,
    ErrorBody,
    Health,
    ItemPublic,
    LinkCodeCreate,
    LinkCodeIssued,
    LinkPublic,
    LinkRedeem,
    OfferItemPublic,
    OfferPublic,
    PurposePublic,
    ReceiptCodeInfo,
    RecipientPublic,
    TermsPublic,
)

ERRORS = {
    400: {"model": ErrorBody, "description": "The body is not valid JSON."},
    401: {"model": ErrorBody, "description": "Missing or invalid bearer token."},
    403: {"model": ErrorBody, "description": "A valid token without the right to this call."},
    422: {"model": ErrorBody, "description": "Invalid request or a broken rule (`reason`)."},
}
health_router = APIRouter()
router = APIRouter(prefix="/v1", responses={400: ERRORS[400], 401: ERRORS[401], 403: ERRORS[403]})

IdempotencyKey = Annotated[
    str,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=200,
        pattern=r"^[\x21-\x7e]+$",
        description="Unique per intended consent; a retry with the same key gets the same answer.",
    ),
]
ConsentId = Annotated[str, Path(min_length=1, max_length=36)]


class WithdrawBody(BaseModel):
    """The body of a withdrawal: who asks. The consent must belong to this subject."""

    model_config = ConfigDict(extra="forbid")
    subject_id: str = Field(
        pattern=SUBJECT_ID_PATTERN, description="The pseudonym the consent was recorded for."
    )


@health_router.get(
    "/health", response_model=Health, responses={503: {"model": ErrorBody}}, tags=["health"]
)
def health(session: DbSession) -> Health | JSONResponse:
    """200 when the service and its database answer."""
    try:
        session.execute(text("SELECT 1"))
    except Exception:  # any database failure means "not healthy"
        return JSONResponse(
            error_body(Reason.DATABASE_UNAVAILABLE, "The database does not answer."),
            STATUS[Reason.DATABASE_UNAVAILABLE],
        )
    return Health(status="ok", database="ok")


@router.get("/terms", response_model=TermsPublic, tags=["catalogue"])
def get_terms(session: DbSession, _client: Client, now: Now) -> TermsPublic:
    """The terms currently in effect."""
    terms = current_terms(session, now)
    if terms is None:
        raise Refused(Reason.NO_TERMS, "No terms are in effect; load the catalogue.")
    return TermsPublic(version=terms.version, sha256=terms.sha256, text_ja=terms.text_ja)


@router.get("/catalog/items", response_model=list[ItemPublic], tags=["catalogue"])
def list_items(session: DbSession, _client: Client) -> list[ItemPublic]:
    """Every data item and its level (0-3)."""
    items = session.execute(select(DataItem).order_by(DataItem.level, DataItem.item_id)).scalars()
    return [ItemPublic(item_id=i.item_id, name_ja=i.name_ja, level=i.level) for i in items]


def _offer_public(offer: Offer, levels: dict[str, int], now: Now) -> OfferPublic:
    approval = offer.active_approval(now)
    facts = consents.offer_facts(offer, now)
    max_level = max(i.item.level for i in offer.items)
    # The offer's own rules; the request-specific ones (terms version, family doctor answer) are
    # taken as met, since a resident can always meet them.
    probe = rules.ConsentFacts(sorted(facts.item_ids), "consulted", "current")
    blocked = rules.check(probe, facts, levels, "current")
    return OfferPublic(
        offer_id=offer.offer_id,
        title_ja=offer.title_ja,
        recipient=RecipientPublic(
            id=offer.recipient.recipient_id,
            name_ja=offer.recipient.name_ja,
            kind=offer.recipient.kind,
        ),
        purpose=PurposePublic(
            id=offer.purpose.purpose_id,
            name_ja=offer.purpose.name_ja,
            description_ja=offer.purpose.description_ja,
        ),
        description_ja=offer.description_ja,
        items=[
            OfferItemPublic(item_id=i.item_id, level=i.item.level, name_ja=i.item.name_ja)
            for i in sorted(offer.items, key=lambda i: (i.item.level, i.item_id))
        ],
        max_level=max_level,
        benefits=[
            BenefitPublic(kind=b.kind, description_ja=b.description_ja) for b in offer.benefits
        ],
        ethics_approval=ApprovalPublic(
            approved_by=approval.approved_by,
            medical_advisors=approval.medical_advisors,
            approved_at=approval.approved_at,
            valid_until=approval.valid_until,
            scope_item_ids=approval.scope_item_ids,
        )
        if approval
        else None,
        consent_required=max_level > 0,
        consentable=blocked is None,
        version=facts.version or "",
    )


@router.get("/offers", response_model=list[OfferPublic], tags=["catalogue"])
def list_offers(session: DbSession, _client: Client, now: Now) -> list[OfferPublic]:
    """Every offer, with its items' levels, benefits and the ethics approval in force."""
    offers = session.execute(select(Offer).order_by(Offer.offer_id)).scalars().all()
    levels = consents.item_levels(session)  # once, not once per offer
    return [_offer_public(offer, levels, now) for offer in offers]


@router.get(
    "/offers/{offer_id}",
    response_model=OfferPublic,
    tags=["catalogue"],
    responses={404: {"model": ErrorBody}},
)
def get_offer(
    offer_id: Annotated[str, Path(max_length=64)], session: DbSession, _client: Client, now: Now
) -> OfferPublic:
    """One offer."""
    offer = session.get(Offer, offer_id)
    if offer is None:
        raise Refused(Reason.UNKNOWN_OFFER, "No offer has this offer_id.", in_path=True)
    return _offer_public(offer, consents.item_levels(session), now)


@router.post(
    "/consents",
    status_code=201,
    response_model=ConsentResult,
    tags=["consents"],
    responses={409: {"model": ErrorBody}, 422: ERRORS[422]},
)
def create_consent(
    body: ConsentCreate,
    idempotency_key: IdempotencyKey,
    factory: SessionFactory,
    client: Client,
    controller: ReceiptController,
    settings: AppSettings,
    now: Now,
) -> ConsentResult:
    """Record a consent after checking every rule; a retry with the same key gets the same.

    The stored answer to a key is kept for CONSENT_IDEMPOTENCY_TTL_HOURS; after that the key
    counts as new.
    """
    answer = consents.create_consent(
        factory,
        body,
        client=client,
        idempotency_key=idempotency_key,
        controller=controller,
        now=now,
        idempotency_ttl=dt.timedelta(hours=settings.consent_idempotency_ttl_hours),
    )
    return ConsentResult.model_validate(answer.body)


@router.get(
    "/subjects/{subject_id}/consents", response_model=list[ConsentRecord], tags=["consents"]
)
def list_consents(
    subject_id: Annotated[str, Path(pattern=SUBJECT_ID_PATTERN)],
    session: DbSession,
    _client: Client,
) -> list[ConsentRecord]:
    """A subject's whole history: active and withdrawn consents.

    While the subject is linked with another channel (`/links`), the linked subject's consents
    too, each with its own `subject_id` and `channel` and `via_link` true.
    """
    found = consents.history(session, subject_id, with_partner=True)
    codes = consents.receipt_codes_of(
        session,
        [c.receipt_id for c in found]
        + [c.withdrawal_receipt_id for c in found if c.withdrawal_receipt_id],
    )
    return [_record_of(c, codes, via_link=c.subject_id != subject_id) for c in found]


def _record_of(consent: Consent, codes: dict[str, str], *, via_link: bool) -> ConsentRecord:
    names = set(ConsentRecord.model_fields) - {
        "receipt_code",
        "withdrawal_receipt_code",
        "via_link",
    }
    values = {name: getattr(consent, name) for name in names}
    return ConsentRecord(
        **values,
        receipt_code=codes[consent.receipt_id],
        withdrawal_receipt_code=codes.get(consent.withdrawal_receipt_id or ""),
        via_link=via_link,
    )


@router.post(
    "/consents/{consent_id}/withdraw",
    response_model=ConsentResult,
    tags=["consents"],
    responses={404: {"model": ErrorBody}, 422: ERRORS[422]},
)
def withdraw(
    consent_id: ConsentId,
    body: WithdrawBody,
    factory: SessionFactory,
    _client: Client,
    controller: ReceiptController,
    now: Now,
) -> ConsentResult:
    """Withdraw a subject's consent at once; the withdrawal is recorded with its own receipt.

    A consent of the subject's linked partner (`/links`) may be withdrawn too. A consent of any
    other subject is answered exactly like an unknown one (404 `consent_not_found`).
    """
    answer = consents.withdraw_consent(
        factory,
        consent_id,
        subject_id=body.subject_id,
        controller=controller,
        now=now,
    )
    return ConsentResult.model_validate(answer.body)


@router.get("/receipts/{receipt_id}", tags=["consents"], responses={404: {"model": ErrorBody}})
def get_receipt(
    receipt_id: Annotated[str, Path(max_length=36)],
    subject_id: Annotated[
        str, Query(pattern=SUBJECT_ID_PATTERN, description="Whose receipt it must be.")
    ],
    session: DbSession,
    _client: Client,
) -> dict[str, object]:
    """One consent or withdrawal receipt of the subject (another's is answered as unknown)."""
    receipt = session.get(Receipt, receipt_id)
    consent = session.get(Consent, receipt.consent_id) if receipt else None
    if (
        receipt is None
        or consent is None
        or consent.subject_id not in {subject_id, consents.linked_partner(session, subject_id)}
    ):
        raise Refused(Reason.UNKNOWN_RECEIPT, "No such receipt.")
    return dict(receipt.body)


CODE_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "`unknown_receipt_code`: no receipt has this code."},
    422: {
        "model": ErrorBody,
        "description": "`invalid_receipt_code` (a typo: length, symbol, check) or a bad request.",
    },
    429: {
        "model": ErrorBody,
        "description": (
            "`too_many_wrong_codes`: the requester, or the client as a whole, tried too many "
            "wrong codes within RECEIPT_CODE_WINDOW_SECONDS."
        ),
    },
}
ReceiptCodeText = Annotated[
    str,
    Path(
        min_length=1,
        max_length=receipt_codes.MAX_INPUT,
        description="A receipt code as typed: full-width, lower case and hyphens are accepted.",
    ),
]


def _limits(settings: AppSettings) -> code_attempts.Limits:
    return code_attempts.Limits(
        window=dt.timedelta(seconds=settings.receipt_code_window_seconds),
        per_requester=settings.receipt_code_failures_per_requester,
        per_client=settings.receipt_code_failures_per_client,
    )


def _begin_attempt(
    factory: SessionFactory, client: str, requester: str, settings: AppSettings, now: dt.datetime
) -> int:
    try:
        return code_attempts.begin(
            factory, client=client, requester=requester, limits=_limits(settings), now=now
        )
    except code_attempts.TooManyWrongCodes:
        raise Refused(
            Reason.TOO_MANY_WRONG_CODES, "Too many wrong receipt codes; try again later."
        ) from None


def _normalised(code: str) -> str:
    try:
        return receipt_codes.normalise(code)
    except receipt_codes.InvalidCode:
        raise Refused(
            Reason.INVALID_RECEIPT_CODE, "This is not a receipt code (check for a typo)."
        ) from None


@router.get(
    "/receipt-codes/{code}",
    response_model=ReceiptCodeInfo,
    tags=["receipt codes"],
    responses=CODE_ERRORS,
)
def look_up_code(
    code: ReceiptCodeText,
    requester: Annotated[
        str,
        Query(pattern=SUBJECT_ID_PATTERN, description="The pseudonym of whoever typed the code."),
    ],
    factory: SessionFactory,
    client: Client,
    settings: AppSettings,
    now: Now,
) -> ReceiptCodeInfo:
    """What a receipt code names: only the offer's name and the consent's status.

    Wrong (422) and unknown (404) codes count towards RECEIPT_CODE_FAILURES_PER_REQUESTER and
    RECEIPT_CODE_FAILURES_PER_CLIENT; over either, 429 without looking at the code.
    """
    attempt = _begin_attempt(factory, client, requester, settings, now)
    normalised = _normalised(code)
    with factory() as session:
        match = consents.find_by_code(session, normalised)
    if match is None:
        raise Refused(Reason.UNKNOWN_RECEIPT_CODE, "No receipt has this code.")
    code_attempts.succeeded(factory, attempt)
    return ReceiptCodeInfo.model_validate(match.public())


@router.post(
    "/receipt-codes/{code}/withdraw",
    response_model=ConsentResult,
    tags=["receipt codes"],
    responses=CODE_ERRORS,
)
def withdraw_by_code(
    code: ReceiptCodeText,
    body: CodeWithdrawal,
    idempotency_key: IdempotencyKey,
    factory: SessionFactory,
    client: Client,
    controller: ReceiptController,
    settings: AppSettings,
    now: Now,
) -> ConsentResult:
    """Withdraw the consent a receipt code names, whoever holds the code.

    The code may be the consent's or its withdrawal's. Already withdrawn: 200 with the existing
    withdrawal receipt (nothing changes). The consent's subject stays the withdrawal's subject;
    the requester and channel are written to the audit entry only. Wrong codes count as for the
    look-up.
    """
    attempt = _begin_attempt(factory, client, body.requester, settings, now)
    normalised = _normalised(code)
    answer = consents.withdraw_by_code(
        factory,
        normalised,
        made_by={"by": "receipt_code", "requester": body.requester, "channel": body.channel},
        controller=controller,
        now=now,
        idempotency=(
            consents.IdempotencyScope(
                client, now - dt.timedelta(hours=settings.consent_idempotency_ttl_hours)
            ),
            idempotency_key,
        ),
    )
    code_attempts.succeeded(factory, attempt)
    return ConsentResult.model_validate(answer.body)


SubjectId = Annotated[str, Path(pattern=SUBJECT_ID_PATTERN)]
LINK_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "`unknown_link_code`, or `not_linked` (unlink)."},
    409: {
        "model": ErrorBody,
        "description": "`link_code_used`, or `already_linked` (either subject; unlink first).",
    },
    410: {"model": ErrorBody, "description": "`link_code_expired`."},
    422: {
        "model": ErrorBody,
        "description": (
            "`invalid_link_code` (not 8 digits), `own_link_code`, `same_channel`, or a bad request."
        ),
    },
    429: CODE_ERRORS[429],
}


def _link_ttl(settings: AppSettings) -> dt.timedelta:
    return dt.timedelta(seconds=settings.link_code_ttl_seconds)


@router.post(
    "/subjects/{subject_id}/link-codes",
    status_code=201,
    response_model=LinkCodeIssued,
    tags=["links"],
    responses={409: LINK_ERRORS[409], 422: ERRORS[422]},
)
def issue_link_code(
    subject_id: SubjectId,
    body: LinkCodeCreate,
    factory: SessionFactory,
    _client: Client,
    settings: AppSettings,
    now: Now,
) -> LinkCodeIssued:
    """Issue a one-time code (8 digits) that links this subject with its resident's other channel.

    Valid for LINK_CODE_TTL_SECONDS and once; issuing another voids the previous. Refused with
    409 `already_linked` while the subject is linked.
    """
    issued = links.issue(factory, subject_id, body.channel, now=now, ttl=_link_ttl(settings))
    return LinkCodeIssued(code=issued.code, expires_at=issued.expires_at)


@router.post(
    "/subjects/{subject_id}/links",
    status_code=201,
    response_model=LinkPublic,
    tags=["links"],
    responses=LINK_ERRORS,
)
def redeem_link_code(
    subject_id: SubjectId,
    body: LinkRedeem,
    factory: SessionFactory,
    client: Client,
    settings: AppSettings,
    now: Now,
) -> LinkPublic:
    """Link this subject with the one that issued the code (typed on the OTHER channel).

    Then each lists the other's consents and may withdraw them. Unknown (404), malformed (422),
    used (409) and expired (410) codes count as wrong codes like receipt codes (429 over the
    limit, without looking at the code). `own_link_code`, `same_channel` and `already_linked`
    refuse without using the code up. Nothing is linked on any refusal.
    """
    attempt = _begin_attempt(factory, client, subject_id, settings, now)
    try:
        digits = links.normalise(body.code)
    except links.InvalidLinkCode:
        raise Refused(Reason.INVALID_LINK_CODE, "This is not a link code.") from None
    try:
        state = links.redeem(
            factory, subject_id, body.channel, digits, now=now, ttl=_link_ttl(settings)
        )
    except Refused as error:
        if error.reason in links.NOT_WRONG_CODE:
            code_attempts.succeeded(factory, attempt)
        raise
    code_attempts.succeeded(factory, attempt)
    return LinkPublic.model_validate(state.public())


@router.get("/subjects/{subject_id}/links", response_model=LinkPublic, tags=["links"])
def get_link(subject_id: SubjectId, session: DbSession, _client: Client) -> LinkPublic:
    """Whether the subject is linked, with which channel and since when."""
    return LinkPublic.model_validate(links.state(session, subject_id).public())


@router.delete(
    "/subjects/{subject_id}/links",
    response_model=LinkPublic,
    tags=["links"],
    responses={404: LINK_ERRORS[404]},
)
def unlink(subject_id: SubjectId, factory: SessionFactory, _client: Client, now: Now) -> LinkPublic:
    """Undo the subject's link (either side): each lists only its own consents again.

    Consents were never rewritten, so this restores exactly the state before the link. 404
    `not_linked` when there is none.
    """
    return LinkPublic.model_validate(links.unlink(factory, subject_id, now=now).public())


@router.get("/audit/verify", response_model=AuditVerification, tags=["audit"])
def verify_audit(session: DbSession, _admin: Admin) -> AuditVerification:
    """Replay the audit chain and compare it with the consents (admin token only).

    `ok` is false, naming the first bad entry or the consent that differs, if anything changed.
    """
    return AuditVerification(**audit.verify(session).as_dict())
