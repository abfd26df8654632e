"""The city counter (窓口, issue 14): counter staff look consents up by receipt code and withdraw
them on a resident's behalf, with a reason, logged and audited as made by staff."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import pyotp
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from consent_service import receipt_codes
from consent_service.audit import verify
from consent_service.config import Settings
from consent_service.main import create_app
from consent_service.models import AuditEntry, StaffAccessLog
from consent_service.staff import auth
from tests.backend.conftest import AUTH, START, Clock, consent_body, subject
from tests.backend.test_staff_console import PASSWORD, STAFF_PAGES, tracker_url  # noqa: F401


@pytest.fixture
def console(settings: Settings, engine: Engine, tracker_url: str) -> Iterator[TestClient]:  # noqa: F811
    configured = settings.model_copy(
        update={"staff_tracker_database_url": tracker_url, "staff_mask_with_ginza": False}
    )
    app = create_app(configured, engine=engine, clock=Clock(START))
    with TestClient(app, base_url="https://testserver") as client:
        yield client


def add_user(client: TestClient, name: str, role: str) -> str:
    with client.app.state.sessionmaker() as session, session.begin():
        return auth.create_user(session, name, PASSWORD, role, START, client.app.state.settings)


def log_in(client: TestClient, name: str, secret: str):
    form = client.get("/staff/login").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', form).group(1)
    code = pyotp.TOTP(secret).at(START)
    return client.post(
        "/staff/login",
        data={"username": name, "password": PASSWORD, "code": code, "csrf": csrf},
        follow_redirects=False,
    )


UNKNOWN = "AAAA-AAAA-" + receipt_codes.check_symbol("AAAAAAAA")  # valid, issued to nobody


def consent(client: TestClient, who: str = "resident") -> dict:
    terms = client.get("/v1/terms", headers=AUTH).json()["version"]
    response = client.post(
        "/v1/consents",
        json=consent_body(terms, who=who),
        headers={**AUTH, "Idempotency-Key": uuid.uuid4().hex},
    )
    assert response.status_code == 201, response.text
    return response.json()


def counter_session(client: TestClient, name: str = "madoguchi") -> str:
    response = log_in(client, name, add_user(client, name, "counter"))
    assert response.headers["location"] == "/staff/counter"
    page = client.get("/staff/counter")
    assert page.status_code == 200
    return re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)


def access_log(client: TestClient) -> list[tuple[str, str, str]]:
    with client.app.state.sessionmaker() as session:
        entries = session.execute(select(StaffAccessLog).order_by(StaffAccessLog.id)).scalars()
        return [(e.username, e.action, e.target) for e in entries if e.action != "login"]


def test_counter_staff_see_only_the_counter(console: TestClient) -> None:
    counter_session(console)
    for path in STAFF_PAGES:
        response = console.get(path, follow_redirects=False)
        assert (response.status_code, response.headers["location"]) == (302, "/staff/counter")


@pytest.mark.parametrize("role", ["viewer", "admin"])
def test_other_staff_cannot_use_the_counter(console: TestClient, role: str) -> None:
    log_in(console, role, add_user(console, role, role))
    response = console.get("/staff/counter", follow_redirects=False)
    assert (response.status_code, response.headers["location"]) == (302, "/staff/")
    post = console.post(
        "/staff/counter/withdraw",
        data={"code": "x", "reason": "in_person", "csrf": "x"},
        follow_redirects=False,
    )
    assert post.status_code == 302


def test_a_look_up_shows_the_offer_and_status_only_and_is_logged(console: TestClient) -> None:
    created = consent(console, who="owner")
    code = created["receipt"]["receipt_code"]
    csrf = counter_session(console)
    page = console.post(
        "/staff/counter/lookup", data={"code": code.lower().replace("-", ""), "csrf": csrf}
    )
    assert page.status_code == 200
    title = {o["offer_id"]: o for o in console.get("/v1/offers", headers=AUTH).json()}[
        "city_health_vitals"
    ]["title_ja"]
    assert title in page.text and "同意中" in page.text and code in page.text
    for private in (subject("owner"), created["consent_id"], created["receipt"]["receipt_id"]):
        assert private not in page.text
    assert access_log(console) == [("madoguchi", "counter_lookup", code)]


def test_wrong_and_unknown_codes_are_told_apart_and_logged(console: TestClient) -> None:
    csrf = counter_session(console)
    invalid = console.post("/staff/counter/lookup", data={"code": "K7Q2-M9XD-0O", "csrf": csrf})
    assert "形が正しくありません" in invalid.text
    unknown = console.post("/staff/counter/lookup", data={"code": UNKNOWN, "csrf": csrf})
    assert "記録はありません" in unknown.text
    assert [a for _, a, _ in access_log(console)] == [
        "counter_lookup_invalid",
        "counter_lookup_unknown",
    ]


def test_a_withdrawal_needs_a_listed_reason_and_the_csrf_token(console: TestClient) -> None:
    created = consent(console)
    code = created["receipt"]["receipt_code"]
    csrf = counter_session(console)
    for data in (
        {"code": code, "reason": "", "csrf": csrf},
        {"code": code, "reason": "because I say so", "csrf": csrf},
        {"code": code, "reason": "in_person", "csrf": "forged"},
    ):
        console.post("/staff/counter/withdraw", data=data)
    missing = console.post("/staff/counter/withdraw", data={"code": code, "csrf": csrf})
    assert missing.status_code == 422
    listed = console.get(f"/v1/subjects/{subject()}/consents", headers=AUTH).json()
    assert listed[0]["status"] == "active"
    assert "counter_withdraw" not in [a for _, a, _ in access_log(console)]


def test_counter_staff_withdraw_on_the_residents_behalf(console: TestClient) -> None:
    created = consent(console, who="owner")
    code = created["receipt"]["receipt_code"]
    csrf = counter_session(console)
    page = console.post(
        "/staff/counter/withdraw", data={"code": code, "reason": "in_person", "csrf": csrf}
    )
    assert page.status_code == 200 and "取り消しました" in page.text
    listed = console.get(f"/v1/subjects/{subject('owner')}/consents", headers=AUTH).json()
    assert listed[0]["status"] == "withdrawn"
    withdrawal_code = listed[0]["withdrawal_receipt_code"]
    assert withdrawal_code and withdrawal_code in page.text
    receipt = console.get(
        f"/v1/receipts/{listed[0]['withdrawal_receipt_id']}",
        params={"subject_id": subject("owner")},
        headers=AUTH,
    ).json()
    assert (receipt["kind"], receipt["pii_principal_id"]) == ("withdrawal", subject("owner"))
    assert access_log(console) == [("madoguchi", "counter_withdraw", f"{code} reason=in_person")]
    with console.app.state.sessionmaker() as session:
        entry = session.execute(
            select(AuditEntry).where(AuditEntry.event_type == "consent.withdrawn")
        ).scalar_one()
        assert entry.entity_id == created["consent_id"]
        assert entry.payload["subject_id"] == subject("owner")
        assert entry.payload["by"] == "staff"
        assert entry.payload["staff_username"] == "madoguchi"
        assert entry.payload["reason"] == "in_person"
        assert verify(session).ok
    # The code now shows the withdrawn consent, with no second withdrawal offered.
    again = console.post("/staff/counter/lookup", data={"code": code, "csrf": csrf})
    assert "取り消し済み" in again.text and "/staff/counter/withdraw" not in again.text


def test_wrong_codes_at_the_counter_are_limited(console: TestClient) -> None:
    code = consent(console)["receipt"]["receipt_code"]
    csrf = counter_session(console)
    limit = console.app.state.settings.receipt_code_failures_per_requester
    for _ in range(limit):
        console.post("/staff/counter/lookup", data={"code": UNKNOWN, "csrf": csrf})
    blocked = console.post("/staff/counter/lookup", data={"code": code, "csrf": csrf})
    assert "しばらく確認できません" in blocked.text and "同意中" not in blocked.text


def test_roles_are_checked(console: TestClient) -> None:
    with (
        console.app.state.sessionmaker() as session,
        session.begin(),
        pytest.raises(ValueError, match="role"),
    ):
        auth.create_user(session, "x", PASSWORD, "clerk", START, console.app.state.settings)
