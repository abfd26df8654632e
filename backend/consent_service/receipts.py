"""Consent and withdrawal receipts.

They carry the fields of the Kantara Consent Receipt (v1.1) and ISO/IEC TS 27560: controller,
principal, recipient, purpose, items and their levels, sensitive flag, time, collection channel,
terms version and its hash, receipt id; and the receipt code residents read out.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from consent_service.models import Consent, Offer, Terms

RECEIPT_VERSION = "KI-CR-v1.1.0"
SENSITIVE_LEVEL = 2  # 要配慮個人情報 (medical information) starts at level 2


def build(
    *,
    kind: str,
    receipt_id: str,
    receipt_code: str,
    consent: Consent,
    offer: Offer,
    terms: Terms,
    controller_name: str,
    jurisdiction: str,
    at: dt.datetime,
) -> dict[str, Any]:
    """Build the body of a receipt.

    Args:
        kind: "consent" or "withdrawal".
        receipt_id: The receipt's id.
        receipt_code: The receipt's short code (consent_service/receipt_codes.py).
        consent: The consent it is about.
        offer: The consent's offer.
        terms: The terms the consent was given under.
        controller_name: The information bank operating the service.
        jurisdiction: The controller's jurisdiction.
        at: When the consent was given or withdrawn.

    Returns:
        JSON-ready data.
    """
    levels = {i.item_id: (i.item.level, i.item.name_ja) for i in offer.items}
    items: list[dict[str, Any]] = [
        {"item_id": item, "name_ja": levels[item][1], "level": levels[item][0]}
        for item in consent.item_ids
    ]
    sensitive = any(levels[item][0] >= SENSITIVE_LEVEL for item in consent.item_ids)
    return {
        "version": RECEIPT_VERSION,
        "receipt_id": receipt_id,
        "receipt_code": receipt_code,
        "kind": kind,
        "consent_id": consent.consent_id,
        "status": consent.status,
        "jurisdiction": jurisdiction,
        "consent_timestamp": consent.created_at.isoformat(),
        "receipt_timestamp": at.isoformat(),
        "withdrawal_timestamp": consent.withdrawn_at.isoformat() if consent.withdrawn_at else None,
        "collection_method": consent.channel,
        "language": "ja",
        "pii_principal_id": consent.subject_id,
        "pii_controllers": [{"name_ja": controller_name, "on_behalf": False}],
        "terms": {"version": terms.version, "sha256": terms.sha256},
        "services": [
            {
                "service_id": offer.offer_id,
                "recipient": {
                    "id": offer.recipient.recipient_id,
                    "name_ja": offer.recipient.name_ja,
                    "kind": offer.recipient.kind,
                },
                "purposes": [
                    {
                        "purpose_id": offer.purpose.purpose_id,
                        "purpose_ja": offer.purpose.name_ja,
                        "consent_type": "EXPRESSED",
                        "primary_purpose": True,
                        "pii_category": items,
                        "termination": "ご本人による撤回まで",
                        "third_party_disclosure": True,
                        "third_party_name_ja": offer.recipient.name_ja,
                    }
                ],
            }
        ],
        "sensitive": sensitive,
        "spi_cat": ["health"] if sensitive else [],
        "family_doctor_consulted": consent.family_doctor_consulted,
    }
