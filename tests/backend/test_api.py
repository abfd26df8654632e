"""The consent API as a scripted client uses it (issue 3), on SQLite and on PostgreSQL."""

from __future__ import annotations

import logging
import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from consent_service.__main__ import main as cli
from consent_service.config import get_settings
from consent_service.main import create_app
from tests.backend.conftest import ADMIN, AUTH, TOKEN, consent_body, post_consent, subject


def withdraw(client: TestClient, consent_id: str, who: str = "resident"):
    """POST /v1/consents/{consent_id}/withdraw as the subject `who`."""
    url = f"/v1/consents/{consent_id}/withdraw"
    return client.post(url, headers=AUTH, json={"subject_id": subject(who)})


def test_health_needs_no_token(client: TestClient) -> None:
    assert client.get("/health").json() == {"status": "ok", "database": "ok"}


def test_every_call_but_health_needs_the_token(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    routes = [(p, m) for p, methods in paths.items() if p.startswith("/v1") for m in methods]
    assert len(routes) >= 9
    for template, method in routes:
        path = template.replace("{subject_id}", subject()).replace("{consent_id}", "x")
        path = path.replace("{offer_id}", "x").replace("{receipt_id}", "x")
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic x"}):
            response = client.request(method, path, headers=headers)
            assert response.status_code == 401, (method, path, headers)
            assert response.json()["reason"] == "unauthorized"


def test_offers_carry_levels_benefits_and_approval(client: TestClient) -> None:
    offers = {o["offer_id"]: o for o in client.get("/v1/offers", headers=AUTH).json()}
    level2 = offers["city_health_checkup"]
    assert level2["max_level"] == 2 and level2["consentable"]
    assert level2["ethics_approval"]["approved_by"]
    assert level2["ethics_approval"]["medical_advisors"]
    assert {"health"} <= {b["kind"] for b in level2["benefits"]}
    assert offers["city_health_vitals"]["consentable"]
    assert offers["restaurants_allergy"]["ethics_approval"] is None
    assert not offers["restaurants_allergy"]["consentable"]
    assert not offers["regional_statistics"]["consent_required"]


def test_scripted_client_walkthrough(client: TestClient, terms_version: str, clock) -> None:
    # consent to a level-1 offer
    first = post_consent(client, consent_body(terms_version), key="walk-1")
    assert first.status_code == 201
    consent = first.json()
    assert consent["status"] == "active" and consent["receipt"]["receipt_id"]

    clock.advance(minutes=1)

    # refused: level 2 without the family-doctor answer
    level2 = consent_body(terms_version, "city_health_checkup", ["health_checkup"])
    refused = post_consent(client, level2)
    assert (refused.status_code, refused.json()["reason"]) == (422, "family_doctor_answer_required")

    # refused: anything level 3, whatever the offer
    for offer in ("city_health_checkup", "no_such_offer"):
        body = consent_body(terms_version, offer, ["genetic"], "consulted")
        response = post_consent(client, body)
        assert (response.status_code, response.json()["reason"]) == (422, "level3_not_handled")

    # the same Idempotency-Key again gives the same consent, not a second one
    again = post_consent(client, consent_body(terms_version), key="walk-1")
    assert again.status_code == 201 and again.json() == consent

    # level 2 with the answer is recorded and the answer is on the receipt
    level2["family_doctor_consulted"] = "not_yet"
    recorded = post_consent(client, level2)
    assert recorded.status_code == 201
    assert recorded.json()["receipt"]["family_doctor_consulted"] == "not_yet"

    # withdraw, at once, with its own receipt
    withdrawn = withdraw(client, consent["consent_id"])
    assert withdrawn.status_code == 200
    assert withdrawn.json()["status"] == "withdrawn"
    assert withdrawn.json()["receipt"]["kind"] == "withdrawal"
    assert withdrawn.json()["receipt"]["receipt_id"] != consent["receipt"]["receipt_id"]

    # both in the history
    history = client.get(f"/v1/subjects/{subject()}/consents", headers=AUTH).json()
    assert [(c["offer_id"], c["status"]) for c in history] == [
        ("city_health_vitals", "withdrawn"),
        ("city_health_checkup", "active"),
    ]
    assert history[1]["family_doctor_consulted"] == "not_yet"

    # and the audit chain holds: two approvals... plus two consents and one withdrawal
    verification = client.get("/v1/audit/verify", headers=ADMIN).json()
    assert verification["ok"] is True
    assert verification["entries"] == 3 + 3  # three shipped approvals, then our three writes


def test_receipt_has_the_consent_receipt_fields(client: TestClient, terms_version: str) -> None:
    body = consent_body(terms_version, "city_health_checkup", ["health_checkup"], "consulted")
    receipt = post_consent(client, body).json()["receipt"]
    terms = client.get("/v1/terms", headers=AUTH).json()
    assert receipt["pii_controllers"][0]["name_ja"]
    assert receipt["pii_principal_id"] == subject()
    assert receipt["terms"] == {"version": terms["version"], "sha256": terms["sha256"]}
    assert receipt["collection_method"] == "rest"
    assert receipt["sensitive"] is True and receipt["spi_cat"] == ["health"]
    [service] = receipt["services"]
    assert service["recipient"]["kind"] == "city"
    [purpose] = service["purposes"]
    assert purpose["purpose_id"] == "health_support"
    assert purpose["pii_category"] == [
        {"item_id": "health_checkup", "name_ja": "健診等情報（法定健診項目）", "level": 2}
    ]
    url = f"/v1/receipts/{receipt['receipt_id']}"
    assert client.get(url, headers=AUTH, params={"subject_id": subject()}).json() == receipt


def test_a_receipt_is_read_for_its_subject_only(client: TestClient, terms_version: str) -> None:
    receipt = post_consent(client, consent_body(terms_version)).json()["receipt"]
    url = f"/v1/receipts/{receipt['receipt_id']}"
    unknown = client.get("/v1/receipts/no-such-receipt", headers=AUTH,
                         params={"subject_id": subject()})  # fmt: skip
    other = client.get(url, headers=AUTH, params={"subject_id": subject("someone else")})
    assert (other.status_code, other.json()) == (404, unknown.json())
    assert client.get(url, headers=AUTH).status_code == 422  # no subject named


def test_same_key_with_another_body_is_refused(client: TestClient, terms_version: str) -> None:
    assert post_consent(client, consent_body(terms_version), key="k").status_code == 201
    other = consent_body(terms_version, item_ids=["steps"])
    response = post_consent(client, other, key="k")
    assert (response.status_code, response.json()["reason"]) == (422, "idempotency_key_reused")


def test_item_order_does_not_make_another_request(client: TestClient, terms_version: str) -> None:
    first = post_consent(client, consent_body(terms_version, item_ids=["steps", "weight"]), "k")
    second = post_consent(client, consent_body(terms_version, item_ids=["weight", "steps"]), "k")
    assert second.json() == first.json()


def test_the_same_consent_twice_is_a_conflict(client: TestClient, terms_version: str) -> None:
    first = post_consent(client, consent_body(terms_version)).json()
    second = post_consent(client, consent_body(terms_version))
    assert second.status_code == 409
    assert second.json() == {
        "reason": "already_consented",
        "message": "An active consent to this offer and these items exists.",
        "consent_id": first["consent_id"],
    }


def test_consent_again_after_withdrawal(client: TestClient, terms_version: str) -> None:
    first = post_consent(client, consent_body(terms_version)).json()
    withdraw(client, first["consent_id"])
    assert post_consent(client, consent_body(terms_version)).status_code == 201


def test_withdrawing_twice_returns_the_same_receipt(client: TestClient, terms_version: str) -> None:
    consent = post_consent(client, consent_body(terms_version)).json()
    first, second = (withdraw(client, consent["consent_id"]) for _ in range(2))
    assert first.status_code == 200 and first.json() == second.json()
    assert client.get("/v1/audit/verify", headers=ADMIN).json()["entries"] == 3 + 2


def test_consent_and_withdrawal_receipts_carry_their_own_codes(
    client: TestClient, terms_version: str
) -> None:
    consent = post_consent(client, consent_body(terms_version)).json()
    withdrawal = withdraw(client, consent["consent_id"]).json()
    codes = [consent["receipt"]["receipt_code"], withdrawal["receipt"]["receipt_code"]]
    assert codes[0] != codes[1]
    assert all(
        re.fullmatch(r"[0-9A-HJKMNP-TV-Y]{4}-[0-9A-HJKMNP-TV-Y]{4}-[0-9A-HJKMNP-TV-Y]", c)
        for c in codes
    )
    for receipt, code in zip((consent["receipt"], withdrawal["receipt"]), codes, strict=True):
        stored = client.get(
            f"/v1/receipts/{receipt['receipt_id']}", params={"subject_id": subject()}, headers=AUTH
        ).json()
        assert stored["receipt_code"] == code
    (listed,) = client.get(f"/v1/subjects/{subject()}/consents", headers=AUTH).json()
    assert (listed["receipt_code"], listed["withdrawal_receipt_code"]) == tuple(codes)


def test_withdrawal_needs_the_subject(client: TestClient, terms_version: str) -> None:
    consent = post_consent(client, consent_body(terms_version)).json()
    url = f"/v1/consents/{consent['consent_id']}/withdraw"
    for body in (None, {}, {"subject_id": None}, {"subject_id": "U1234567890abcdef"}):
        response = client.post(url, headers=AUTH, json=body)
        assert (response.status_code, response.json()["reason"]) == (422, "invalid_request")
    history = client.get(f"/v1/subjects/{subject()}/consents", headers=AUTH).json()
    assert [c["status"] for c in history] == ["active"]


def test_another_subjects_consent_is_answered_as_unknown(
    client: TestClient, terms_version: str
) -> None:
    consent = post_consent(client, consent_body(terms_version)).json()
    other = withdraw(client, consent["consent_id"], who="someone else")
    unknown = withdraw(client, "00000000-0000-0000-0000-000000000000", who="someone else")
    assert (other.status_code, other.json()["reason"]) == (404, "consent_not_found")
    assert other.json() == unknown.json()
    history = client.get(f"/v1/subjects/{subject()}/consents", headers=AUTH).json()
    assert [c["status"] for c in history] == ["active"]
    assert withdraw(client, consent["consent_id"]).status_code == 200


def test_the_client_token_cannot_verify_the_audit_chain(client: TestClient) -> None:
    refused = client.get("/v1/audit/verify", headers=AUTH)
    assert (refused.status_code, refused.json()["reason"]) == (403, "forbidden")
    assert client.get("/v1/audit/verify", headers=ADMIN).json()["ok"] is True


def test_the_admin_token_is_not_a_client_token(client: TestClient, terms_version: str) -> None:
    for method, path in (("GET", "/v1/offers"), ("GET", f"/v1/subjects/{subject()}/consents")):
        response = client.request(method, path, headers=ADMIN)
        assert (response.status_code, response.json()["reason"]) == (403, "forbidden")
    refused = client.post("/v1/consents", json=consent_body(terms_version),
                          headers={**ADMIN, "Idempotency-Key": "admin"})  # fmt: skip
    assert refused.status_code == 403


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"offer_id": "no_such_offer"}, "unknown_offer"),
        ({"item_ids": ["health_checkup"]}, "family_doctor_answer_required"),
        (
            {"item_ids": ["statistics"], "offer_id": "regional_statistics"},
            "level0_needs_no_consent",
        ),
        ({"terms_version": "1999-01-01"}, "terms_outdated"),
        ({"item_ids": ["steps", "pulse"], "offer_id": "city_care_prevention"}, "item_not_in_offer"),
        (
            {"offer_id": "restaurants_allergy", "item_ids": ["medical_history"],
             "family_doctor_consulted": "consulted"},
            "no_ethics_approval",
        ),
    ],
)  # fmt: skip
def test_rule_violations_are_422_with_a_reason(
    client: TestClient, terms_version: str, change: dict[str, object], reason: str
) -> None:
    response = post_consent(client, {**consent_body(terms_version), **change})
    assert (response.status_code, response.json()["reason"]) == (422, reason)


def test_approval_expiry_stops_level2_consents(client, terms_version, clock) -> None:
    body = consent_body(terms_version, "city_health_checkup", ["health_checkup"], "consulted")
    clock.advance(days=365 * 3)
    response = post_consent(client, body)
    assert (response.status_code, response.json()["reason"]) == (422, "no_ethics_approval")


@pytest.mark.parametrize(
    "change",
    [
        {"subject_id": "U1234567890abcdef"},  # a raw LINE user id, not a pseudonym
        {"channel": "fax"},
        {"item_ids": []},
        {"item_ids": ["steps", "steps"]},
        {"family_doctor_consulted": "maybe"},
        {"unexpected": "field"},
    ],
)
def test_invalid_requests_are_422_without_echoing_values(client, terms_version, change) -> None:
    response = post_consent(client, {**consent_body(terms_version), **change})
    assert response.status_code == 422
    assert response.json()["reason"] == "invalid_request"
    assert "U1234567890abcdef" not in response.text and "maybe" not in response.text


def test_idempotency_key_is_required(client: TestClient, terms_version: str) -> None:
    response = client.post("/v1/consents", json=consent_body(terms_version), headers=AUTH)
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["header", "Idempotency-Key"]


def test_unknown_paths_answer_json(client: TestClient) -> None:
    response = client.get("/v1/nothing-here", headers=AUTH)
    assert response.status_code == 404 and response.json()["reason"] == "not_found"


def test_no_subject_or_health_detail_in_logs(client, terms_version, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    body = consent_body(terms_version, "city_health_checkup", ["health_checkup"], "consulted")
    consent = post_consent(client, body).json()
    client.get(f"/v1/subjects/{subject()}/consents", headers=AUTH)
    assert withdraw(client, consent["consent_id"]).status_code == 200
    # Everything the service (and its libraries) logged; the test client's own log is not ours.
    logged = "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith("httpx"))
    for secret in (subject(), "health_checkup", "健診", "consulted"):
        assert secret not in logged


def test_an_idempotency_key_is_replayed_until_it_expires(
    client: TestClient, terms_version: str, clock, settings
) -> None:
    first = post_consent(client, consent_body(terms_version), key="k").json()
    assert withdraw(client, first["consent_id"]).status_code == 200
    clock.advance(hours=settings.consent_idempotency_ttl_hours - 1)
    assert post_consent(client, consent_body(terms_version), key="k").json() == first
    clock.advance(hours=2)
    # Expired: the stored answer (with its receipt) is gone and the key counts as new.
    again = post_consent(client, consent_body(terms_version), key="k")
    assert again.status_code == 201
    assert again.json()["consent_id"] != first["consent_id"]
    assert post_consent(client, consent_body(terms_version), key="k").json() == again.json()


def _stored_keys(engine) -> list[str]:
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT key FROM idempotency_records ORDER BY key"))
        return [str(key) for (key,) in rows]


def test_expired_idempotency_records_are_deleted_at_start(
    client: TestClient, terms_version: str, clock, settings, engine
) -> None:
    post_consent(client, consent_body(terms_version, who="a"), key="old")
    clock.advance(hours=settings.consent_idempotency_ttl_hours + 1)
    post_consent(client, consent_body(terms_version, who="b"), key="new")
    assert _stored_keys(engine) == ["new", "old"]
    with TestClient(create_app(settings, engine=engine, clock=clock)):
        pass
    assert _stored_keys(engine) == ["new"]


def test_the_retention_command_deletes_expired_idempotency_records(
    client: TestClient, terms_version: str, settings, engine, monkeypatch, capsys
) -> None:
    post_consent(client, consent_body(terms_version), key="old")  # stored at the test clock's time
    monkeypatch.setenv("CONSENT_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("CONSENT_API_TOKEN", TOKEN)
    monkeypatch.setenv("CONSENT_IDEMPOTENCY_TTL_HOURS", "1")  # START is hours before real time
    get_settings.cache_clear()
    try:
        assert cli(["retention"]) == 0
    finally:
        get_settings.cache_clear()
    assert _stored_keys(engine) == []
    assert "Deleted 1 expired idempotency records" in capsys.readouterr().out


# ---- the offer's version: what was read back is what is submitted (issue #13) -------------


def _offer(client: TestClient, offer_id: str) -> dict:
    return dict(client.get(f"/v1/offers/{offer_id}", headers=AUTH).json())


def _read_back(client: TestClient, terms_version: str, offer_id: str) -> dict[str, object]:
    """The body the assistant sends: the offer's version and every item it had when shown."""
    offer = _offer(client, offer_id)
    return {
        **consent_body(terms_version, offer_id, [i["item_id"] for i in offer["items"]]),
        "offer_version": offer["version"],
    }


def test_offers_carry_a_stable_content_version(client: TestClient) -> None:
    listed = {o["offer_id"]: o["version"] for o in client.get("/v1/offers", headers=AUTH).json()}
    assert all(len(v) == 64 and int(v, 16) >= 0 for v in listed.values())
    assert len(set(listed.values())) == len(listed)  # every offer's content differs
    assert _offer(client, "city_health_vitals")["version"] == listed["city_health_vitals"]
    assert {o["offer_id"]: o["version"] for o in client.get("/v1/offers", headers=AUTH).json()} == (
        listed
    )


@pytest.mark.parametrize(
    "change",
    [
        "UPDATE offers SET description_ja = 'ちがう説明' WHERE offer_id = 'city_health_vitals'",
        "DELETE FROM offer_items WHERE offer_id = 'city_health_vitals' AND item_id = 'pulse'",
        "UPDATE offer_benefits SET description_ja = 'ちがう特典' "
        "WHERE offer_id = 'city_health_vitals'",
        "UPDATE recipients SET name_ja = 'ちがう提供先' WHERE recipient_id = 'city_health'",
        "UPDATE data_items SET name_ja = 'ちがう名前' WHERE item_id = 'steps'",
    ],
    ids=["description", "items", "benefits", "recipient", "item name"],
)
def test_a_changed_offer_between_read_back_and_yes_is_refused(
    client: TestClient, terms_version: str, engine, change: str
) -> None:
    body = _read_back(client, terms_version, "city_health_vitals")
    with engine.begin() as connection:
        connection.execute(text(change))
    assert _offer(client, "city_health_vitals")["version"] != body["offer_version"]
    response = post_consent(client, body)
    assert (response.status_code, response.json()["reason"]) == (422, "offer_changed")
    assert client.get(f"/v1/subjects/{subject()}/consents", headers=AUTH).json() == []
    # Read back again, the new content can be consented to.
    again = _read_back(client, terms_version, "city_health_vitals")
    assert post_consent(client, again).status_code == 201


def test_the_read_back_offer_is_recorded_with_its_version(
    client: TestClient, terms_version: str
) -> None:
    body = _read_back(client, terms_version, "city_health_checkup")
    response = post_consent(client, {**body, "family_doctor_consulted": "consulted"})
    assert response.status_code == 201
    stale = {**_read_back(client, terms_version, "city_health_vitals"), "offer_version": "0" * 64}
    assert post_consent(client, stale).json()["reason"] == "offer_changed"


def test_a_version_with_only_some_items_is_refused(client: TestClient, terms_version: str) -> None:
    body = {**_read_back(client, terms_version, "city_health_vitals"), "item_ids": ["steps"]}
    assert post_consent(client, body).json()["reason"] == "offer_changed"


def test_a_version_naming_nothing_is_an_invalid_request(
    client: TestClient, terms_version: str
) -> None:
    for bad in ("", "x" * 200, 5):
        body = {**consent_body(terms_version), "offer_version": bad}
        assert post_consent(client, body).json()["reason"] == "invalid_request"


def test_an_idempotency_key_stored_before_versions_still_replays(
    client: TestClient, terms_version: str
) -> None:
    """A body without offer_version has the digest it had before the field existed."""
    import hashlib

    from consent_service.audit import canonical_json
    from consent_service.consents import _request_digest
    from consent_service.schemas import ConsentCreate

    body = consent_body(terms_version)
    expected = hashlib.sha256(
        canonical_json({**body, "item_ids": sorted(body["item_ids"])}).encode("utf-8")  # type: ignore[arg-type]
    ).hexdigest()
    assert _request_digest(ConsentCreate.model_validate(body)) == expected
