"""The consent client: the (resident-independent) list of offers is kept for a short while, and
ids that came from a conversation never steer a call elsewhere."""

from __future__ import annotations

import json

import pytest
import responses

from actions.consent_client import (
    ConsentClient,
    ConsentRefused,
    _segment,
    valid_consent_id,
    valid_item_id,
    valid_offer_id,
    valid_subject_id,
)
from bot.settings import Settings

API = "http://consent.test"
OFFERS = [{"offer_id": "city_health_vitals", "consentable": True}]


def _client(seconds: float) -> ConsentClient:
    return ConsentClient.from_settings(
        Settings(consent_api_url=API, consent_offers_cache_seconds=seconds)
    )


@responses.activate
def test_offers_are_asked_once_within_the_cache_time() -> None:
    call = responses.get(f"{API}/v1/offers", json=OFFERS)
    client = _client(30)
    first = client.offers()
    first[0]["consentable"] = False  # a caller changing its copy changes nothing cached
    assert client.offers() == OFFERS
    assert call.call_count == 1


@responses.activate
def test_offers_are_asked_again_after_the_cache_time(monkeypatch: pytest.MonkeyPatch) -> None:
    call = responses.get(f"{API}/v1/offers", json=OFFERS)
    client = _client(30)
    clock = iter([100.0, 200.0])
    monkeypatch.setattr("actions.consent_client.time.monotonic", lambda: next(clock))
    client.offers()
    client.offers()
    assert call.call_count == 2


@responses.activate
def test_zero_disables_the_cache_and_resident_data_is_never_cached() -> None:
    offers = responses.get(f"{API}/v1/offers", json=OFFERS)
    history = responses.get(f"{API}/v1/subjects/{'a' * 64}/consents", json=[])
    client = _client(0)
    client.offers()
    client.offers()
    client.consents("a" * 64)
    client.consents("a" * 64)
    assert offers.call_count == 2 and history.call_count == 2


# ---- ids from a conversation never steer a call (security issue #12) ----------------------

SUBJECT = "b" * 64
CONSENT_ID = "3f2b8c1e-9d4a-4c6b-8e2f-1a2b3c4d5e6f"
HOSTILE_IDS = [
    "../audit/verify",
    "..",
    "city_health_vitals/../../audit/verify",
    "city_health_vitals?x=1",
    "city_health_vitals#x",
    "%2e%2e",
    "City_Health",
    "a" * 65,
    "",
    "血圧",
    "x\n",
]


@pytest.mark.parametrize("offer_id", HOSTILE_IDS)
def test_an_offer_id_of_the_wrong_shape_is_unknown_without_a_call(offer_id: str) -> None:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        with pytest.raises(ConsentRefused) as refused:
            _client(0).offer(offer_id)
        assert len(mock.calls) == 0
    assert (refused.value.status, refused.value.reason) == (404, "unknown_offer")


@pytest.mark.parametrize(
    "consent_id", [*HOSTILE_IDS, CONSENT_ID.upper(), "{" + CONSENT_ID + "}", "c-1"]
)
def test_a_consent_id_of_the_wrong_shape_withdraws_nothing(consent_id: str) -> None:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        with pytest.raises(ConsentRefused) as refused:
            _client(0).withdraw(consent_id, SUBJECT)
        assert len(mock.calls) == 0
    assert (refused.value.status, refused.value.reason) == (404, "consent_not_found")


@pytest.mark.parametrize("subject", ["../offers", "B" * 64, "b" * 63, "b" * 63 + "/"])
def test_only_a_pseudonym_is_ever_put_in_a_subject_url(subject: str) -> None:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        with pytest.raises(ValueError):
            _client(0).consents(subject)
        with pytest.raises(ValueError):
            _client(0).withdraw(CONSENT_ID, subject)
        assert len(mock.calls) == 0


@responses.activate
def test_withdraw_names_the_subject_in_its_body_and_calls_the_exact_path() -> None:
    call = responses.post(
        f"{API}/v1/consents/{CONSENT_ID}/withdraw",
        json={"consent_id": CONSENT_ID, "status": "withdrawn", "receipt": {"receipt_id": "r"}},
    )
    _client(0).withdraw(CONSENT_ID, SUBJECT)
    [sent] = call.calls
    assert sent.request.path_url == f"/v1/consents/{CONSENT_ID}/withdraw"
    assert json.loads(sent.request.body) == {"subject_id": SUBJECT}


@responses.activate
def test_a_valid_offer_id_is_fetched_at_its_own_path() -> None:
    call = responses.get(f"{API}/v1/offers/city_health_vitals", json=OFFERS[0])
    assert _client(0).offer("city_health_vitals") == OFFERS[0]
    assert call.calls[0].request.path_url == "/v1/offers/city_health_vitals"


def test_path_segments_are_percent_encoded() -> None:
    # Defence in depth behind the shape checks: nothing can leave its path segment.
    assert _segment("../audit/verify") == "..%2Faudit%2Fverify"
    assert _segment("a?b#c d") == "a%3Fb%23c%20d"


def test_id_shapes() -> None:
    assert valid_offer_id("city_health_vitals") and valid_item_id("blood_pressure")
    assert valid_consent_id(CONSENT_ID) and valid_subject_id(SUBJECT)
    assert not valid_offer_id(None) and not valid_consent_id(42) and not valid_subject_id(b"b")
