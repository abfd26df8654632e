"""Refusals in one place: one vocabulary of reasons, one HTTP status each, one error body shape.

Domain code (`consents.py`, `links.py`, the routes' look-ups) raises :class:`Refused` with a
:class:`Reason` and a message; it never chooses an HTTP status. The app's exception handler
(`main.py`) answers every refusal with the status of :data:`STATUS` and the body of
:func:`error_body` — `{"reason", "message"}` plus `consent_id` when one is named — the shape
`schemas.ErrorBody` documents in the OpenAPI description.

The vocabulary is also a table in docs/contract.md ("Error reasons"); the action server's client
(`actions/consent_client.py`) keeps its own copy of the reasons, since the two sides share no
code. A test on each side compares its enum with that table.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class Reason(StrEnum):
    """Every machine-readable `reason` the service answers an error with."""

    # Authentication and malformed requests (main.py, api/deps.py).
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    MALFORMED_BODY = "malformed_body"
    INVALID_REQUEST = "invalid_request"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    HTTP_ERROR = "http_error"
    DATABASE_UNAVAILABLE = "database_unavailable"
    # The catalogue.
    NO_TERMS = "no_terms"
    UNKNOWN_OFFER = "unknown_offer"
    # The consent rules (rules.Reason), in the order they are checked.
    LEVEL3_NOT_HANDLED = "level3_not_handled"
    FAMILY_DOCTOR_ANSWER_REQUIRED = "family_doctor_answer_required"
    NO_ETHICS_APPROVAL = "no_ethics_approval"
    NO_HEALTH_BENEFIT = "no_health_benefit"
    LEVEL0_NEEDS_NO_CONSENT = "level0_needs_no_consent"
    TERMS_OUTDATED = "terms_outdated"
    ITEM_NOT_IN_OFFER = "item_not_in_offer"
    OFFER_CHANGED = "offer_changed"
    # Recording and withdrawing.
    IDEMPOTENCY_KEY_REUSED = "idempotency_key_reused"
    ALREADY_CONSENTED = "already_consented"
    CONSENT_NOT_FOUND = "consent_not_found"
    UNKNOWN_RECEIPT = "unknown_receipt"
    # Receipt codes.
    INVALID_RECEIPT_CODE = "invalid_receipt_code"
    UNKNOWN_RECEIPT_CODE = "unknown_receipt_code"
    TOO_MANY_WRONG_CODES = "too_many_wrong_codes"
    # Links between a resident's channels.
    INVALID_LINK_CODE = "invalid_link_code"
    UNKNOWN_LINK_CODE = "unknown_link_code"
    LINK_CODE_USED = "link_code_used"
    LINK_CODE_EXPIRED = "link_code_expired"
    OWN_LINK_CODE = "own_link_code"
    SAME_CHANNEL = "same_channel"
    ALREADY_LINKED = "already_linked"
    NOT_LINKED = "not_linked"
    NO_LINK_CODE = "no_link_code"
    # Health notices (issue 17, docs/notices.md).
    LINE_RECIPIENT_REQUIRED = "line_recipient_required"
    LINE_RECIPIENT_NOT_ALLOWED = "line_recipient_not_allowed"
    UNKNOWN_TOPIC = "unknown_topic"


# The one status of each reason (`http_error` keeps the status Starlette raised: any other 4xx
# or 5xx, so it has none here). `unknown_offer` is 422 as a broken rule of `POST /v1/consents`;
# `GET /v1/offers/{offer_id}`, whose path names the offer, answers it with 404 (NOT_IN_PATH).
STATUS: dict[Reason, int] = {
    Reason.UNAUTHORIZED: 401,
    Reason.FORBIDDEN: 403,
    Reason.MALFORMED_BODY: 400,
    Reason.INVALID_REQUEST: 422,
    Reason.NOT_FOUND: 404,
    Reason.METHOD_NOT_ALLOWED: 405,
    Reason.DATABASE_UNAVAILABLE: 503,
    Reason.NO_TERMS: 503,
    Reason.UNKNOWN_OFFER: 422,
    Reason.LEVEL3_NOT_HANDLED: 422,
    Reason.FAMILY_DOCTOR_ANSWER_REQUIRED: 422,
    Reason.NO_ETHICS_APPROVAL: 422,
    Reason.NO_HEALTH_BENEFIT: 422,
    Reason.LEVEL0_NEEDS_NO_CONSENT: 422,
    Reason.TERMS_OUTDATED: 422,
    Reason.ITEM_NOT_IN_OFFER: 422,
    Reason.OFFER_CHANGED: 422,
    Reason.IDEMPOTENCY_KEY_REUSED: 422,
    Reason.ALREADY_CONSENTED: 409,
    Reason.CONSENT_NOT_FOUND: 404,
    Reason.UNKNOWN_RECEIPT: 404,
    Reason.INVALID_RECEIPT_CODE: 422,
    Reason.UNKNOWN_RECEIPT_CODE: 404,
    Reason.TOO_MANY_WRONG_CODES: 429,
    Reason.INVALID_LINK_CODE: 422,
    Reason.UNKNOWN_LINK_CODE: 404,
    Reason.LINK_CODE_USED: 409,
    Reason.LINK_CODE_EXPIRED: 410,
    Reason.OWN_LINK_CODE: 422,
    Reason.SAME_CHANNEL: 422,
    Reason.ALREADY_LINKED: 409,
    Reason.NOT_LINKED: 404,
    Reason.NO_LINK_CODE: 503,
    Reason.LINE_RECIPIENT_REQUIRED: 422,
    Reason.LINE_RECIPIENT_NOT_ALLOWED: 422,
    Reason.UNKNOWN_TOPIC: 422,
}
# The status of a refusal whose reason names the resource of the request's path, and the
# reasons that may be answered so.
NOT_IN_PATH = 404
PATH_REASONS = frozenset({Reason.UNKNOWN_OFFER})


class Refused(Exception):
    """A request the service refuses: a reason of the vocabulary and a message for people.

    Attributes:
        reason: The machine-readable reason.
        message: A sentence for operators (never shown to residents as it is).
        consent_id: The consent the refusal is about, when it names one (`already_consented`).
        status: The HTTP status the routes answer with (:data:`STATUS`, unless the path names
            the missing resource).
    """

    def __init__(
        self,
        reason: Reason,
        message: str,
        consent_id: str | None = None,
        *,
        in_path: bool = False,
    ) -> None:
        super().__init__(message)
        self.reason = Reason(reason)
        self.message = message
        self.consent_id = consent_id
        if in_path and self.reason not in PATH_REASONS:
            raise ValueError(f"{self.reason} is never the resource of a path")
        self.status = NOT_IN_PATH if in_path else STATUS[self.reason]


def error_body(
    reason: str, message: str, consent_id: str | None = None, **extra: Any
) -> dict[str, Any]:
    """The one shape of an error body.

    Args:
        reason: The reason (a :class:`Reason`).
        message: The human-readable message.
        consent_id: The consent named, if any (left out when None).
        **extra: Further fields of particular errors (e.g. `errors` of `invalid_request`).

    Returns:
        `{"reason", "message"}`, plus `consent_id` and the extra fields when given.
    """
    body: dict[str, Any] = {"reason": str(reason), "message": message}
    if consent_id is not None:
        body["consent_id"] = consent_id
    body.update(extra)
    return body
