"""The consent client keeps the (resident-independent) list of offers for a short while."""

from __future__ import annotations

import pytest
import responses

from actions.consent_client import ConsentClient
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
