"""The information bank's consent rules, as one pure function.

The order is fixed by docs/contract.md: the first broken rule is the one reported, so a
level-3 item is refused as `level3_not_handled` whatever the offer. `offer_changed` (an
addition to the contract, for requests that name the `offer_version` they were read back from)
is checked after `unknown_offer` and before `item_not_in_offer`, so an item removed from the
offer since the read-back is reported as the change it is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum


class Reason(StrEnum):
    """Machine-readable reasons a consent is refused (HTTP 422)."""

    LEVEL3_NOT_HANDLED = "level3_not_handled"
    FAMILY_DOCTOR_ANSWER_REQUIRED = "family_doctor_answer_required"
    NO_ETHICS_APPROVAL = "no_ethics_approval"
    NO_HEALTH_BENEFIT = "no_health_benefit"
    LEVEL0_NEEDS_NO_CONSENT = "level0_needs_no_consent"
    TERMS_OUTDATED = "terms_outdated"
    UNKNOWN_OFFER = "unknown_offer"
    ITEM_NOT_IN_OFFER = "item_not_in_offer"
    OFFER_CHANGED = "offer_changed"


MESSAGES = {
    Reason.LEVEL3_NOT_HANDLED: "Level-3 data is on hold and never handled by the bank.",
    Reason.FAMILY_DOCTOR_ANSWER_REQUIRED: (
        "A consent containing level-2 data must state family_doctor_consulted."
    ),
    Reason.NO_ETHICS_APPROVAL: (
        "The offer includes level-2 data and has no active data ethics board approval."
    ),
    Reason.NO_HEALTH_BENEFIT: "The offer has no health benefit (points alone are not enough).",
    Reason.LEVEL0_NEEDS_NO_CONSENT: "Level-0 data (statistics) needs no consent.",
    Reason.TERMS_OUTDATED: "terms_version is not the current version of the terms.",
    Reason.UNKNOWN_OFFER: "No offer has this offer_id.",
    Reason.ITEM_NOT_IN_OFFER: "An item is not part of this offer.",
    Reason.OFFER_CHANGED: (
        "The offer changed after it was read back: offer_version is not its current version, "
        "or item_ids are not exactly its items."
    ),
}


@dataclass(frozen=True)
class OfferFacts:
    """What the rules need to know about an offer."""

    item_ids: frozenset[str]
    has_health_benefit: bool
    has_active_approval: bool
    version: str | None = None


@dataclass(frozen=True)
class ConsentFacts:
    """What the rules need to know about a consent request."""

    item_ids: Sequence[str]
    family_doctor_consulted: str | None
    terms_version: str
    offer_version: str | None = None


def check(
    request: ConsentFacts,
    offer: OfferFacts | None,
    item_levels: Mapping[str, int],
    current_terms_version: str,
) -> Reason | None:
    """Return the first rule the request breaks, or None when it may be recorded.

    Args:
        request: The consent asked for.
        offer: The offer it names, or None when there is no such offer.
        item_levels: The level of every item in the catalogue.
        current_terms_version: The version of the terms in force.

    Returns:
        The reason for refusal, or None.
    """
    levels = [item_levels.get(item) for item in request.item_ids]
    if 3 in levels:
        return Reason.LEVEL3_NOT_HANDLED
    if 2 in levels and request.family_doctor_consulted is None:
        return Reason.FAMILY_DOCTOR_ANSWER_REQUIRED
    if offer is not None:
        offer_has_level2 = any(item_levels.get(item) == 2 for item in offer.item_ids)
        if (offer_has_level2 or 2 in levels) and not offer.has_active_approval:
            return Reason.NO_ETHICS_APPROVAL
        if not offer.has_health_benefit:
            return Reason.NO_HEALTH_BENEFIT
    if levels and all(level == 0 for level in levels):
        return Reason.LEVEL0_NEEDS_NO_CONSENT
    if request.terms_version != current_terms_version:
        return Reason.TERMS_OUTDATED
    if offer is None:
        return Reason.UNKNOWN_OFFER
    if request.offer_version is not None and (
        request.offer_version != offer.version or set(request.item_ids) != offer.item_ids
    ):
        return Reason.OFFER_CHANGED
    if not set(request.item_ids) <= offer.item_ids:
        return Reason.ITEM_NOT_IN_OFFER
    return None
