"""Recording, withdrawing and listing consents: the rules, idempotency, receipts and audit."""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from consent_service import audit, receipt_codes, receipts, rules
from consent_service.audit import canonical_json
from consent_service.catalog import current_terms, offer_version
from consent_service.errors import Reason, Refused
from consent_service.models import (
    Consent,
    DataItem,
    IdempotencyRecord,
    Offer,
    Receipt,
    SubjectLink,
    SubjectLinkMember,
    Terms,
)
from consent_service.schemas import ConsentCreate


@dataclass(frozen=True)
class Controller:
    """Who issues the receipts."""

    name_ja: str
    jurisdiction: str


@dataclass(frozen=True)
class Outcome:
    """What a consent write answers: `consent_id`, `status` and `receipt` (`ConsentResult`).

    A domain result, not an HTTP answer: the routes choose the status (201 for a recorded
    consent, 200 for a withdrawal) and validate the body against their response model.
    """

    body: dict[str, Any]


# The status the routes answer a recorded consent and a withdrawal with, kept in the
# idempotency record beside the answer (its column predates this module's domain results).
RECORDED, WITHDRAWN = 201, 200


def offer_facts(offer: Offer, now: dt.datetime) -> rules.OfferFacts:
    """What the rules need to know about `offer` at `now`."""
    return rules.OfferFacts(
        item_ids=frozenset(i.item_id for i in offer.items),
        has_health_benefit=any(b.kind == "health" for b in offer.benefits),
        has_active_approval=offer.active_approval(now) is not None,
        version=offer_version(offer, now),
    )


def item_levels(session: Session) -> dict[str, int]:
    """The level of every catalogue item."""
    return {item.item_id: item.level for item in session.execute(select(DataItem)).scalars()}


def _request_digest(body: ConsentCreate) -> str:
    data = body.model_dump()
    if data.get("offer_version") is None:
        # Without it, the digest is the one stored before the field existed (keys still replay).
        del data["offer_version"]
    data["item_ids"] = sorted(data["item_ids"])
    return hashlib.sha256(canonical_json(data).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class IdempotencyScope:
    """Whose keys (the client's token digest), and since when stored answers count."""

    client: str
    not_before: dt.datetime


def _stored(session: Session, scope: IdempotencyScope, key: str) -> IdempotencyRecord | None:
    """The stored answer to `key`, unless it has expired (an expired one is never replayed)."""
    return session.execute(
        select(IdempotencyRecord).where(
            IdempotencyRecord.client_digest == scope.client,
            IdempotencyRecord.key == key,
            IdempotencyRecord.created_at >= scope.not_before,
        )
    ).scalar_one_or_none()


def purge_expired_idempotency(session: Session, not_before: dt.datetime) -> int:
    """Delete every stored answer older than `not_before`, inside the caller's transaction.

    Args:
        session: The open session.
        not_before: The oldest time still kept (now minus CONSENT_IDEMPOTENCY_TTL_HOURS).

    Returns:
        How many were deleted.
    """
    result = session.execute(
        delete(IdempotencyRecord).where(IdempotencyRecord.created_at < not_before)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def _replay(record: IdempotencyRecord, digest: str) -> Outcome:
    if record.request_sha256 != digest:
        raise Refused(
            Reason.IDEMPOTENCY_KEY_REUSED,
            "This Idempotency-Key was used for a different request.",
        )
    return Outcome(record.response)


def _active_duplicate(session: Session, body: ConsentCreate) -> Consent | None:
    return session.execute(
        select(Consent).where(
            Consent.subject_id == body.subject_id,
            Consent.offer_id == body.offer_id,
            Consent.item_set == ",".join(sorted(body.item_ids)),
            Consent.status == "active",
        )
    ).scalar_one_or_none()


def _conflict_or_replay(
    session: Session, duplicate: Consent, scope: IdempotencyScope, key: str, digest: str
) -> Outcome:
    """Answer a request whose consent is already active.

    If it was recorded under this very key (a retry racing its first attempt, seen here once the
    first attempt committed), the stored answer is replayed; otherwise it is a conflict.
    """
    record = _stored(session, scope, key)
    if record is not None:
        return _replay(record, digest)
    raise Refused(
        Reason.ALREADY_CONSENTED,
        "An active consent to this offer and these items exists.",
        duplicate.consent_id,
    )


def create_consent(
    factory: sessionmaker[Session],
    body: ConsentCreate,
    *,
    client: str,
    idempotency_key: str,
    controller: Controller,
    now: dt.datetime,
    idempotency_ttl: dt.timedelta,
) -> Outcome:
    """Check the rules and record one consent, exactly once per Idempotency-Key.

    Args:
        factory: Session factory.
        body: The request.
        client: The digest of the calling client's token (idempotency keys are per client).
        idempotency_key: The request's Idempotency-Key.
        controller: Who issues the receipt.
        now: The current time (UTC).
        idempotency_ttl: How long a stored answer is replayed; an older one is deleted and the
            key counts as new.

    Returns:
        201 with the consent and its receipt, or the stored answer of an earlier identical
        request with the same key within `idempotency_ttl`.

    Raises:
        Refused: When a rule is broken (422), the key was used for another request (422),
            or the same consent is already active (409).
    """
    digest = _request_digest(body)
    scope = IdempotencyScope(client, now - idempotency_ttl)
    try:
        with factory() as session, session.begin():
            record = _stored(session, scope, idempotency_key)
            if record is not None:
                return _replay(record, digest)
            # An expired answer to this key (if any) makes way for the new one.
            session.execute(
                delete(IdempotencyRecord).where(
                    IdempotencyRecord.client_digest == client,
                    IdempotencyRecord.key == idempotency_key,
                    IdempotencyRecord.created_at < scope.not_before,
                )
            )
            return _record(session, body, scope, idempotency_key, digest, controller, now)
    except IntegrityError:
        # A concurrent request with the same key, or the same consent, committed first.
        with factory() as session:
            duplicate = _active_duplicate(session, body)
            if duplicate is None:
                record = _stored(session, scope, idempotency_key)
                if record is not None:
                    return _replay(record, digest)
                raise
            return _conflict_or_replay(session, duplicate, scope, idempotency_key, digest)


def _record(
    session: Session,
    body: ConsentCreate,
    scope: IdempotencyScope,
    key: str,
    digest: str,
    controller: Controller,
    now: dt.datetime,
) -> Outcome:
    offer = session.get(Offer, body.offer_id)
    terms = current_terms(session, now)
    if terms is None:
        raise Refused(Reason.NO_TERMS, "No terms are in effect; load the catalogue.")
    reason = rules.check(
        rules.ConsentFacts(
            body.item_ids, body.family_doctor_consulted, body.terms_version, body.offer_version
        ),
        offer_facts(offer, now) if offer else None,
        item_levels(session),
        terms.version,
    )
    if reason is not None:
        raise Refused(Reason(reason.value), rules.MESSAGES[reason])
    assert offer is not None  # the rules refuse unknown offers
    duplicate = _active_duplicate(session, body)
    if duplicate is not None:
        return _conflict_or_replay(session, duplicate, scope=scope, key=key, digest=digest)
    consent = Consent(
        consent_id=str(uuid.uuid4()),
        subject_id=body.subject_id,
        offer_id=body.offer_id,
        item_ids=list(body.item_ids),
        item_set=",".join(sorted(body.item_ids)),
        status="active",
        family_doctor_consulted=body.family_doctor_consulted,
        channel=body.channel,
        terms_version=terms.version,
        created_at=now,
        receipt_id=str(uuid.uuid4()),
    )
    session.add(consent)
    session.flush()
    receipt = _issue_receipt(
        session, "consent", consent.receipt_id, consent, offer, terms, controller, now
    )
    audit.append(
        session,
        "consent.created",
        consent.consent_id,
        {
            "subject_id": consent.subject_id,
            "offer_id": consent.offer_id,
            "item_ids": consent.item_ids,
            "family_doctor_consulted": consent.family_doctor_consulted,
            "channel": consent.channel,
            "terms_version": consent.terms_version,
            "receipt_id": consent.receipt_id,
        },
        now,
    )
    outcome = Outcome(
        {"consent_id": consent.consent_id, "status": consent.status, "receipt": receipt}
    )
    session.add(
        IdempotencyRecord(
            client_digest=scope.client,
            key=key,
            request_sha256=digest,
            status_code=RECORDED,
            response=outcome.body,
            created_at=now,
        )
    )
    session.flush()
    return outcome


def _issue_receipt(
    session: Session,
    kind: str,
    receipt_id: str,
    consent: Consent,
    offer: Offer,
    terms: Terms,
    controller: Controller,
    now: dt.datetime,
) -> dict[str, Any]:
    code = receipt_codes.issue(session)
    body = receipts.build(
        kind=kind,
        receipt_id=receipt_id,
        receipt_code=code,
        consent=consent,
        offer=offer,
        terms=terms,
        controller_name=controller.name_ja,
        jurisdiction=controller.jurisdiction,
        at=now,
    )
    session.add(
        Receipt(
            receipt_id=receipt_id,
            consent_id=consent.consent_id,
            kind=kind,
            body=body,
            created_at=now,
            receipt_code=code,
        )
    )
    return body


def withdraw_consent(
    factory: sessionmaker[Session],
    consent_id: str,
    *,
    subject_id: str,
    controller: Controller,
    now: dt.datetime,
) -> Outcome:
    """Withdraw a consent at once and record the withdrawal; repeating it changes nothing.

    Args:
        factory: Session factory.
        consent_id: The consent.
        subject_id: Who asks: the consent must belong to this subject.
        controller: Who issues the receipt.
        now: The current time (UTC).

    Returns:
        200 with the withdrawal receipt (the same one when the consent was already withdrawn).

    Raises:
        Refused: 404 `consent_not_found` when there is no such consent, or it is another
            subject's (the same answer, so that it reveals nothing).
    """
    with factory() as session, session.begin():
        consent = session.execute(
            select(Consent).where(Consent.consent_id == consent_id).with_for_update()
        ).scalar_one_or_none()
        if consent is None:
            raise Refused(Reason.CONSENT_NOT_FOUND, "No such consent.")
        made_by: dict[str, Any] = {}
        if consent.subject_id != subject_id:
            # The linked partner's consent (consent_service/links.py) may be withdrawn too; the
            # consent's subject stays the withdrawal's subject.
            if linked_partner(session, subject_id) != consent.subject_id:
                raise Refused(Reason.CONSENT_NOT_FOUND, "No such consent.")
            made_by = {"by": "linked_subject", "requester": subject_id}
        return _withdraw_locked(session, consent, controller, now, made_by)


def _withdraw_locked(
    session: Session,
    consent: Consent,
    controller: Controller,
    now: dt.datetime,
    made_by: dict[str, Any],
) -> Outcome:
    """Withdraw `consent` (locked by the caller) or answer its existing withdrawal.

    Args:
        session: The open session.
        consent: The consent row, locked FOR UPDATE.
        controller: Who issues the receipt.
        now: The current time (UTC).
        made_by: Who made the withdrawal, added to the audit entry (empty: the subject). The
            consent's subject stays the subject of the withdrawal whoever asks.

    Returns:
        200 with the withdrawal receipt.
    """
    consent_id = consent.consent_id
    if consent.status == "withdrawn":
        assert consent.withdrawal_receipt_id is not None
        stored = session.get(Receipt, consent.withdrawal_receipt_id)
        assert stored is not None
        return Outcome({"consent_id": consent_id, "status": "withdrawn", "receipt": stored.body})
    offer = session.get(Offer, consent.offer_id)
    terms = session.get(Terms, consent.terms_version)
    assert offer is not None and terms is not None
    consent.status, consent.withdrawn_at = "withdrawn", now
    consent.withdrawal_receipt_id = str(uuid.uuid4())
    session.flush()
    receipt = _issue_receipt(
        session,
        "withdrawal",
        consent.withdrawal_receipt_id,
        consent,
        offer,
        terms,
        controller,
        now,
    )
    audit.append(
        session,
        "consent.withdrawn",
        consent_id,
        {
            "subject_id": consent.subject_id,
            "offer_id": consent.offer_id,
            "receipt_id": consent.withdrawal_receipt_id,
            **made_by,
        },
        now,
    )
    return Outcome({"consent_id": consent_id, "status": "withdrawn", "receipt": receipt})


@dataclass(frozen=True)
class CodeMatch:
    """What a receipt code names: the receipt's kind and code, its consent and offer."""

    receipt_code: str
    kind: str
    consent_id: str
    offer_id: str
    offer_title_ja: str
    status: str

    def public(self) -> dict[str, str]:
        """All a look-up by code may show: the offer's name and the consent's status."""
        return {
            "receipt_code": self.receipt_code,
            "kind": self.kind,
            "offer_id": self.offer_id,
            "offer_title_ja": self.offer_title_ja,
            "status": self.status,
        }


def find_by_code(session: Session, code: str) -> CodeMatch | None:
    """The consent a normalised receipt code (of its consent or its withdrawal) belongs to.

    Args:
        session: The open session.
        code: A code as `receipt_codes.normalise` returns it.

    Returns:
        The match, or None for an unknown code.
    """
    row = session.execute(
        select(Receipt, Consent, Offer)
        .join(Consent, Consent.consent_id == Receipt.consent_id)
        .join(Offer, Offer.offer_id == Consent.offer_id)
        .where(Receipt.receipt_code == code)
    ).first()
    if row is None:
        return None
    receipt, consent, offer = row
    return CodeMatch(
        receipt_code=receipt.receipt_code,
        kind=receipt.kind,
        consent_id=consent.consent_id,
        offer_id=offer.offer_id,
        offer_title_ja=offer.title_ja or offer.purpose.name_ja,
        status=consent.status,
    )


def _code_request_digest(code: str, requester: str, channel: str) -> str:
    data = {"withdraw_by_code": code, "requester": requester, "channel": channel}
    return hashlib.sha256(canonical_json(data).encode("utf-8")).hexdigest()


def withdraw_by_code(
    factory: sessionmaker[Session],
    code: str,
    *,
    made_by: dict[str, Any],
    controller: Controller,
    now: dt.datetime,
    idempotency: tuple[IdempotencyScope, str] | None = None,
) -> Outcome:
    """Withdraw the consent a receipt code names, whoever holds the code.

    Withdrawal is the safe direction: holding the code is enough. The consent's subject stays
    the subject of the withdrawal and its receipt; who asked (`made_by`) is only written to the
    audit entry.

    Args:
        factory: Session factory.
        code: A code as `receipt_codes.normalise` returns it (of the consent's receipt or of its
            withdrawal receipt).
        made_by: Who asks, for the audit entry: `{"by": "receipt_code", "requester": ...,
            "channel": ...}` or `{"by": "staff", "staff_username": ..., "reason": ...}`.
        controller: Who issues the receipt.
        now: The current time (UTC).
        idempotency: The client's scope and Idempotency-Key, when the caller sent one: the
            answer is stored and replayed like a consent's.

    Returns:
        200 with the withdrawal receipt (the existing one when already withdrawn).

    Raises:
        Refused: 404 `unknown_receipt_code`; 422 `idempotency_key_reused`.
    """
    digest = _code_request_digest(
        code, str(made_by.get("requester", "")), str(made_by.get("channel", ""))
    )
    try:
        with factory() as session, session.begin():
            if idempotency is not None:
                record = _stored(session, idempotency[0], idempotency[1])
                if record is not None:
                    return _replay(record, digest)
                session.execute(
                    delete(IdempotencyRecord).where(
                        IdempotencyRecord.client_digest == idempotency[0].client,
                        IdempotencyRecord.key == idempotency[1],
                        IdempotencyRecord.created_at < idempotency[0].not_before,
                    )
                )
            receipt = session.execute(
                select(Receipt).where(Receipt.receipt_code == code)
            ).scalar_one_or_none()
            consent = (
                session.execute(
                    select(Consent)
                    .where(Consent.consent_id == receipt.consent_id)
                    .with_for_update()
                ).scalar_one_or_none()
                if receipt is not None
                else None
            )
            if consent is None:
                raise Refused(Reason.UNKNOWN_RECEIPT_CODE, "No receipt has this code.")
            outcome = _withdraw_locked(session, consent, controller, now, made_by)
            if idempotency is not None:
                session.add(
                    IdempotencyRecord(
                        client_digest=idempotency[0].client,
                        key=idempotency[1],
                        request_sha256=digest,
                        status_code=WITHDRAWN,
                        response=outcome.body,
                        created_at=now,
                    )
                )
                session.flush()
            return outcome
    except IntegrityError:
        # A concurrent request with the same key committed first: answer what it stored.
        if idempotency is None:
            raise
        with factory() as session:
            record = _stored(session, idempotency[0], idempotency[1])
            if record is None:
                raise
            return _replay(record, digest)


def linked_partner(session: Session, subject_id: str) -> str | None:
    """The other subject of `subject_id`'s channel link in force (consent_service/links.py).

    Args:
        session: The open session.
        subject_id: A pseudonym.

    Returns:
        The partner's pseudonym, or None when the subject is not linked.
    """
    member = session.get(SubjectLinkMember, subject_id)
    link = session.get(SubjectLink, member.link_id) if member is not None else None
    if link is None:
        return None
    return link.subject_b if link.subject_a == subject_id else link.subject_a


def history(session: Session, subject_id: str, *, with_partner: bool = False) -> list[Consent]:
    """Every consent of a subject, active and withdrawn, oldest first.

    Args:
        session: The open session.
        subject_id: A pseudonym.
        with_partner: Also the consents of the subject it is linked with (each keeps its own
            subject and channel).

    Returns:
        The consents.
    """
    subjects = [subject_id]
    partner = linked_partner(session, subject_id) if with_partner else None
    if partner is not None:
        subjects.append(partner)
    return list(
        session.execute(
            select(Consent)
            .where(Consent.subject_id.in_(subjects))
            .order_by(Consent.created_at, Consent.consent_id)
        ).scalars()
    )


def receipt_codes_of(session: Session, receipt_ids: list[str]) -> dict[str, str]:
    """The receipt code of each of `receipt_ids` (one query)."""
    if not receipt_ids:
        return {}
    rows = session.execute(
        select(Receipt.receipt_id, Receipt.receipt_code).where(Receipt.receipt_id.in_(receipt_ids))
    ).all()
    return {receipt_id: code for receipt_id, code in rows}
