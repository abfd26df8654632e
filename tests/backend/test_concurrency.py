"""Concurrent writes: one consent per Idempotency-Key, and an audit chain that never forks."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from fastapi.testclient import TestClient

from tests.backend.conftest import ADMIN, AUTH, consent_body, post_consent, subject

THREADS = 8


def test_parallel_retries_with_one_key_record_one_consent(
    client: TestClient, terms_version: str
) -> None:
    body = consent_body(terms_version)
    with ThreadPoolExecutor(THREADS) as pool:
        responses = list(pool.map(lambda _: post_consent(client, body, "same-key"), range(THREADS)))
    assert {r.status_code for r in responses} == {201}
    assert len({r.json()["consent_id"] for r in responses}) == 1
    history = client.get(f"/v1/subjects/{subject()}/consents", headers=AUTH).json()
    assert len(history) == 1


def test_parallel_identical_consents_with_new_keys_record_one(
    client: TestClient, terms_version: str
) -> None:
    body = consent_body(terms_version)
    with ThreadPoolExecutor(THREADS) as pool:
        responses = list(pool.map(lambda _: post_consent(client, body), range(THREADS)))
    assert sorted(r.status_code for r in responses) == [201] + [409] * (THREADS - 1)


def test_parallel_consents_of_many_residents_keep_the_chain(
    client: TestClient, terms_version: str
) -> None:
    bodies = [consent_body(terms_version, who=f"r{i}") for i in range(THREADS * 3)]
    with ThreadPoolExecutor(THREADS) as pool:
        responses = list(pool.map(lambda b: post_consent(client, b), bodies))
    assert {r.status_code for r in responses} == {201}
    verification = client.get("/v1/audit/verify", headers=ADMIN).json()
    assert verification["ok"] is True and verification["entries"] == 3 + len(bodies)
