"""The rules as a pure function: examples and properties (hypothesis)."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from consent_service.rules import ConsentFacts, OfferFacts, Reason, check

LEVELS = {"stats": 0, "steps": 1, "weight": 1, "checkup": 2, "history": 2, "genes": 3, "gut": 3}
GOOD_OFFER = OfferFacts(frozenset({"steps", "checkup"}), True, True)


def test_a_valid_level2_request_passes() -> None:
    request = ConsentFacts(["checkup"], "consulted", "v1")
    assert check(request, GOOD_OFFER, LEVELS, "v1") is None


def test_level3_wins_over_every_other_problem() -> None:
    request = ConsentFacts(["genes", "checkup"], None, "old")
    assert check(request, None, LEVELS, "v1") is Reason.LEVEL3_NOT_HANDLED


def test_points_alone_are_refused() -> None:
    points_only = OfferFacts(
        frozenset({"steps"}), has_health_benefit=False, has_active_approval=True
    )
    assert check(ConsentFacts(["steps"], None, "v1"), points_only, LEVELS, "v1") is (
        Reason.NO_HEALTH_BENEFIT
    )


def test_an_offer_with_level2_items_needs_approval_even_for_its_level1_items() -> None:
    unapproved = OfferFacts(frozenset({"steps", "checkup"}), True, has_active_approval=False)
    assert check(ConsentFacts(["steps"], None, "v1"), unapproved, LEVELS, "v1") is (
        Reason.NO_ETHICS_APPROVAL
    )


items = st.lists(st.sampled_from([*LEVELS, "unknown"]), min_size=1, max_size=4, unique=True)
offers = st.one_of(
    st.none(),
    st.builds(
        OfferFacts,
        item_ids=st.frozensets(st.sampled_from([k for k, v in LEVELS.items() if v < 3])),
        has_health_benefit=st.booleans(),
        has_active_approval=st.booleans(),
    ),
)
answers = st.sampled_from([None, "consulted", "not_yet", "will_not"])
versions = st.sampled_from(["v1", "v0"])


def obeys_every_rule(item_ids, answer, version, offer) -> bool:
    """The rules of docs/contract.md written out once more, independently of `check`."""
    levels = [LEVELS.get(i) for i in item_ids]
    return (
        offer is not None
        and 3 not in levels
        and None not in levels
        and (2 not in levels or answer is not None)
        and offer.has_health_benefit
        and (
            offer.has_active_approval
            or not (2 in levels or any(LEVELS[i] == 2 for i in offer.item_ids))
        )
        and any(level != 0 for level in levels)
        and version == "v1"
        and set(item_ids) <= offer.item_ids
    )


@given(items, answers, versions, offers)
@example(["steps"], None, "v1", OfferFacts(frozenset({"steps"}), True, False))
@example(["checkup", "steps"], "not_yet", "v1", GOOD_OFFER)
def test_accepted_exactly_when_every_rule_is_obeyed(item_ids, answer, version, offer) -> None:
    reason = check(ConsentFacts(item_ids, answer, version), offer, LEVELS, "v1")
    assert (reason is None) == obeys_every_rule(item_ids, answer, version, offer)


@given(items, answers, versions, offers)
def test_level3_is_always_refused_as_level3(item_ids, answer, version, offer) -> None:
    reason = check(ConsentFacts(item_ids, answer, version), offer, LEVELS, "v1")
    assert (reason is Reason.LEVEL3_NOT_HANDLED) == any(LEVELS.get(i) == 3 for i in item_ids)


# Every list holds at least one level-2 item.
with_level2 = st.tuples(st.sampled_from(["checkup", "history"]), items).map(
    lambda drawn: list(dict.fromkeys([drawn[0], *drawn[1]]))
)


@given(with_level2, versions, offers)
def test_level2_without_an_answer_is_never_accepted(item_ids, version, offer) -> None:
    reason = check(ConsentFacts(item_ids, None, version), offer, LEVELS, "v1")
    level3 = any(LEVELS.get(i) == 3 for i in item_ids)
    assert reason is (Reason.LEVEL3_NOT_HANDLED if level3 else Reason.FAMILY_DOCTOR_ANSWER_REQUIRED)


# ---- offer_changed: what was read back is what is submitted (issue #13) -------------------

VERSIONED = OfferFacts(frozenset({"steps", "checkup"}), True, True, version="v-now")


def test_a_request_naming_the_current_version_and_every_item_passes() -> None:
    request = ConsentFacts(["checkup", "steps"], "consulted", "v1", offer_version="v-now")
    assert check(request, VERSIONED, LEVELS, "v1") is None


def test_a_request_naming_an_older_version_is_refused_as_offer_changed() -> None:
    request = ConsentFacts(["checkup", "steps"], "consulted", "v1", offer_version="v-before")
    assert check(request, VERSIONED, LEVELS, "v1") is Reason.OFFER_CHANGED


@pytest.mark.parametrize(
    "item_ids", [["steps"], ["steps", "checkup", "weight"]], ids=["fewer", "one removed since"]
)
def test_with_a_version_the_items_must_be_exactly_the_offers(item_ids) -> None:
    request = ConsentFacts(item_ids, "consulted", "v1", offer_version="v-now")
    assert check(request, VERSIONED, LEVELS, "v1") is Reason.OFFER_CHANGED


def test_without_a_version_the_contracts_rules_are_unchanged() -> None:
    assert check(ConsentFacts(["steps"], None, "v1"), VERSIONED, LEVELS, "v1") is None
    request = ConsentFacts(["steps", "weight"], None, "v1")
    assert check(request, VERSIONED, LEVELS, "v1") is Reason.ITEM_NOT_IN_OFFER


def test_the_contracts_reasons_keep_their_order_before_offer_changed() -> None:
    stale = {"offer_version": "v-before"}
    level3 = ConsentFacts(["genes", "checkup"], "consulted", "v1", **stale)
    assert check(level3, VERSIONED, LEVELS, "v1") is Reason.LEVEL3_NOT_HANDLED
    old_terms = ConsentFacts(["checkup", "steps"], "consulted", "v0", **stale)
    assert check(old_terms, VERSIONED, LEVELS, "v1") is Reason.TERMS_OUTDATED
    gone = ConsentFacts(["steps"], None, "v1", **stale)
    assert check(gone, None, LEVELS, "v1") is Reason.UNKNOWN_OFFER


offer_versions = st.sampled_from(["v-now", "v-before"])


@given(items, answers, versions, offers, offer_versions)
def test_a_versioned_request_passes_only_for_the_offer_exactly_as_read_back(
    item_ids, answer, version, offer, offer_version
) -> None:
    if offer is not None:
        offer = OfferFacts(
            offer.item_ids, offer.has_health_benefit, offer.has_active_approval, version="v-now"
        )
    request = ConsentFacts(item_ids, answer, version, offer_version=offer_version)
    reason = check(request, offer, LEVELS, "v1")
    exactly = offer is not None and offer_version == "v-now" and set(item_ids) == offer.item_ids
    assert (reason is None) == (obeys_every_rule(item_ids, answer, version, offer) and exactly)
