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

from consent_service import audit, receipts, rules
from consent_service.audit import canonical_json
from consent_service.catalog import current_terms, offer_version
from consent_service.models import Consent, DataItem, IdempotencyRecord, Offer, Receipt, Terms
from consent_service.schemas import ConsentCreate


class ServiceError(Exception):
    """A request the service refuses, with an HTTP status and a machine-readable reason."""

    def __init__(
        self, status: int, reason: str, message: str, consent_id: str | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message
        self.consent_id = consent_id


@dataclass(frozen=True)
class Controller:
    """Who issues the receipts."""

    name_ja: str
    jurisdiction: str


@dataclass(frozen=True)
class Outcome:
    """An answer to a write: its HTTP status and body."""

    status: int
    body: dict[str, Any]


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
        raise ServiceError(
            422,
            "idempotency_key_reused",
            "This Idempotency-Key was used for a different request.",
        )
    return Outcome(record.status_code, record.response)


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
    raise ServiceError(
        409,
        "already_consented",
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
        ServiceError: When a rule is broken (422), the key was used for another request (422),
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
        raise ServiceError(503, "no_terms", "No terms are in effect; load the catalogue.")
    reason = rules.check(
        rules.ConsentFacts(
            body.item_ids, body.family_doctor_consulted, body.terms_version, body.offer_version
        ),
        offer_facts(offer, now) if offer else None,
        item_levels(session),
        terms.version,
    )
    if reason is not None:
        raise ServiceError(422, reason.value, rules.MESSAGES[reason])
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
        201, {"consent_id": consent.consent_id, "status": consent.status, "receipt": receipt}
    )
    session.add(
        IdempotencyRecord(
            client_digest=scope.client,
            key=key,
            request_sha256=digest,
            status_code=outcome.status,
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
    body = receipts.build(
        kind=kind,
        receipt_id=receipt_id,
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
        ServiceError: 404 `consent_not_found` when there is no such consent, or it is another
            subject's (the same answer, so that it reveals nothing).
    """
    with factory() as session, session.begin():
        consent = session.execute(
            select(Consent).where(Consent.consent_id == consent_id).with_for_update()
        ).scalar_one_or_none()
        if consent is None or consent.subject_id != subject_id:
            raise ServiceError(404, "consent_not_found", "No such consent.")
        if consent.status == "withdrawn":
            assert consent.withdrawal_receipt_id is not None
            stored = session.get(Receipt, consent.withdrawal_receipt_id)
            assert stored is not None
            return Outcome(
                200, {"consent_id": consent_id, "status": "withdrawn", "receipt": stored.body}
            )
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
            },
            now,
        )
        return Outcome(200, {"consent_id": consent_id, "status": "withdrawn", "receipt": receipt})


def history(session: Session, subject_id: str) -> list[Consent]:
    """Every consent of a subject, active and withdrawn, oldest first."""
    return list(
        session.execute(
            select(Consent)
            .where(Consent.subject_id == subject_id)
            .order_by(Consent.created_at, Consent.consent_id)
        ).scalars()
    )
