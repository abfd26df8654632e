"""Linking two channels of one resident with a one-time code (issue #14, consent_service/links.py).

A link joins exactly two pseudonyms of different channels; both then list (and may withdraw) the
consents of the other. Wrong, expired, used, same-channel and already-linked codes link nothing;
a third subject can never join; unlinking restores exactly the state before.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from consent_service import __main__ as cli
from consent_service import audit, links
from consent_service.config import Settings
from consent_service.db import make_sessionmaker
from consent_service.models import AuditEntry, LinkCode, SubjectLink, SubjectLinkMember
from tests.backend.conftest import ADMIN, AUTH, Clock, consent_body, post_consent, subject

WEB, LINE, OTHER = subject("web-browser"), subject("line-user"), subject("someone-else")


def issue(client: TestClient, who: str, channel: str) -> Any:
    return client.post(f"/v1/subjects/{who}/link-codes", json={"channel": channel}, headers=AUTH)


def redeem(client: TestClient, who: str, code: str, channel: str) -> Any:
    return client.post(
        f"/v1/subjects/{who}/links", json={"code": code, "channel": channel}, headers=AUTH
    )


def listing(client: TestClient, who: str) -> list[dict[str, Any]]:
    answer = client.get(f"/v1/subjects/{who}/consents", headers=AUTH)
    assert answer.status_code == 200
    return list(answer.json())


def consent_of(client: TestClient, terms_version: str, who: str, channel: str) -> str:
    body = consent_body(terms_version, who=who)
    body["subject_id"], body["channel"] = who, channel
    answer = post_consent(client, body)
    assert answer.status_code == 201, answer.text
    return str(answer.json()["consent_id"])


def link(client: TestClient, first: str = WEB, second: str = LINE) -> None:
    code = issue(client, first, "web").json()["code"]
    assert redeem(client, second, code, "line").status_code == 201


def test_an_issued_code_is_8_digits_valid_for_10_minutes(client: TestClient, clock: Clock) -> None:
    answer = issue(client, WEB, "web")
    assert answer.status_code == 201
    assert re.fullmatch(r"\d{4}-\d{4}", answer.json()["code"])
    expires = dt.datetime.fromisoformat(answer.json()["expires_at"])
    assert expires == clock.now + dt.timedelta(minutes=10)


def test_only_a_keyed_hash_of_the_code_is_stored(client: TestClient, engine: Engine) -> None:
    code = issue(client, WEB, "web").json()["code"]
    with Session(engine) as session:
        rows = session.execute(select(LinkCode)).scalars().all()
    assert len(rows) == 1
    assert rows[0].code_hash != code.replace("-", "")
    assert code.replace("-", "") not in rows[0].code_hash
    assert len(rows[0].code_hash) == 64


def test_redeeming_on_the_other_channel_links_and_both_list_the_same_consents(
    client: TestClient, terms_version: str
) -> None:
    web_consent = consent_of(client, terms_version, WEB, "web")
    line_consent = consent_of(client, terms_version, LINE, "line")
    assert [c["consent_id"] for c in listing(client, WEB)] == [web_consent]

    code = issue(client, WEB, "web").json()["code"]
    answer = redeem(client, LINE, code, "line")
    assert answer.status_code == 201, answer.text
    assert answer.json()["linked"] is True
    assert answer.json()["partner_channel"] == "web"

    from_web, from_line = listing(client, WEB), listing(client, LINE)
    assert {c["consent_id"] for c in from_web} == {web_consent, line_consent}
    assert from_web == [{**c, "via_link": c["subject_id"] != WEB} for c in from_line]
    by_id = {c["consent_id"]: c for c in from_line}
    # Each consent keeps its own subject and channel.
    assert (by_id[web_consent]["subject_id"], by_id[web_consent]["channel"]) == (WEB, "web")
    assert by_id[web_consent]["via_link"] is True
    assert (by_id[line_consent]["subject_id"], by_id[line_consent]["channel"]) == (LINE, "line")
    assert by_id[line_consent]["via_link"] is False
    state = client.get(f"/v1/subjects/{WEB}/links", headers=AUTH).json()
    assert (state["linked"], state["partner_channel"]) == (True, "line")


def test_typed_spellings_of_the_code_are_accepted(client: TestClient) -> None:
    code = issue(client, WEB, "web").json()["code"]
    typed = " ".join(code.replace("-", "")).translate(
        str.maketrans("0123456789", "０１２３４５６７８９")
    )
    assert redeem(client, LINE, typed, "line").status_code == 201


@pytest.mark.parametrize(
    ("code", "status", "reason"),
    [("0000-0000", 404, "unknown_link_code"), ("12345", 422, "invalid_link_code")],
)
def test_a_wrong_code_links_nothing(
    client: TestClient, code: str, status: int, reason: str
) -> None:
    issued = issue(client, WEB, "web").json()["code"]
    if code == issued:  # a one-in-10^8 draw: the test must still test a wrong code
        code = "0000-0001"
    answer = redeem(client, LINE, code, "line")
    assert (answer.status_code, answer.json()["reason"]) == (status, reason)
    assert client.get(f"/v1/subjects/{LINE}/links", headers=AUTH).json()["linked"] is False


def test_an_expired_code_links_nothing(client: TestClient, clock: Clock) -> None:
    code = issue(client, WEB, "web").json()["code"]
    clock.advance(minutes=10)
    answer = redeem(client, LINE, code, "line")
    assert (answer.status_code, answer.json()["reason"]) == (410, "link_code_expired")
    assert client.get(f"/v1/subjects/{LINE}/links", headers=AUTH).json()["linked"] is False


def test_a_code_works_once(client: TestClient, terms_version: str) -> None:
    code = issue(client, WEB, "web").json()["code"]
    assert redeem(client, LINE, code, "line").status_code == 201
    consent_of(client, terms_version, OTHER, "line")
    again = redeem(client, OTHER, code, "line")
    assert (again.status_code, again.json()["reason"]) == (409, "link_code_used")
    # The third subject sees nothing of the pair, and they see nothing of it.
    assert {c["subject_id"] for c in listing(client, OTHER)} == {OTHER}
    assert OTHER not in {c["subject_id"] for c in listing(client, WEB)}


def test_a_retried_redemption_gets_the_same_link(client: TestClient) -> None:
    code = issue(client, WEB, "web").json()["code"]
    first = redeem(client, LINE, code, "line")
    retry = redeem(client, LINE, code, "line")
    assert first.status_code == retry.status_code == 201
    assert retry.json() == first.json()


def test_issuing_again_voids_the_previous_code(client: TestClient) -> None:
    first = issue(client, WEB, "web").json()["code"]
    second = issue(client, WEB, "web").json()["code"]
    if first != second:
        assert redeem(client, LINE, first, "line").json()["reason"] == "unknown_link_code"
    assert redeem(client, LINE, second, "line").status_code == 201


def test_the_same_channel_and_ones_own_code_are_refused_without_using_the_code(
    client: TestClient,
) -> None:
    code = issue(client, WEB, "web").json()["code"]
    own = redeem(client, WEB, code, "line")
    assert (own.status_code, own.json()["reason"]) == (422, "own_link_code")
    same = redeem(client, OTHER, code, "web")
    assert (same.status_code, same.json()["reason"]) == (422, "same_channel")
    assert client.get(f"/v1/subjects/{OTHER}/links", headers=AUTH).json()["linked"] is False
    assert redeem(client, LINE, code, "line").status_code == 201


def test_a_third_subject_can_never_join_a_link(client: TestClient, terms_version: str) -> None:
    consent_of(client, terms_version, OTHER, "rest")
    link(client)
    # The linked subjects cannot issue a code for another link ...
    for who in (WEB, LINE):
        refused = issue(client, who, "web")
        assert (refused.status_code, refused.json()["reason"]) == (409, "already_linked")
    # ... nor redeem another subject's code.
    code = issue(client, OTHER, "rest").json()["code"]
    for who, channel in ((WEB, "web"), (LINE, "line")):
        refused = redeem(client, who, code, channel)
        assert (refused.status_code, refused.json()["reason"]) == (409, "already_linked")
    assert {c["subject_id"] for c in listing(client, OTHER)} == {OTHER}
    assert {c["subject_id"] for c in listing(client, WEB)} <= {WEB, LINE}


def test_an_issued_code_of_a_subject_linked_since_cannot_be_redeemed(client: TestClient) -> None:
    code = issue(client, OTHER, "rest").json()["code"]
    # OTHER is linked by typing someone else's code; its own code stays live but cannot link.
    stale = issue(client, subject("fourth"), "line").json()["code"]
    assert redeem(client, OTHER, stale, "rest").status_code == 201
    refused = redeem(client, subject("fifth"), code, "line")
    assert (refused.status_code, refused.json()["reason"]) == (409, "already_linked")


def test_withdrawal_across_the_link(client: TestClient, terms_version: str) -> None:
    web_consent = consent_of(client, terms_version, WEB, "web")
    other_consent = consent_of(client, terms_version, OTHER, "rest")
    body = {"subject_id": LINE}
    before = client.post(f"/v1/consents/{web_consent}/withdraw", json=body, headers=AUTH)
    assert (before.status_code, before.json()["reason"]) == (404, "consent_not_found")
    link(client)
    answer = client.post(f"/v1/consents/{web_consent}/withdraw", json=body, headers=AUTH)
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "withdrawn"
    withdrawn = {c["consent_id"]: c for c in listing(client, WEB)}[web_consent]
    assert (withdrawn["status"], withdrawn["subject_id"]) == ("withdrawn", WEB)
    receipt_id = answer.json()["receipt"]["receipt_id"]
    assert (
        client.get(
            f"/v1/receipts/{receipt_id}", params={"subject_id": LINE}, headers=AUTH
        ).status_code
        == 200
    )
    # Another resident's consent stays out of reach.
    other = client.post(f"/v1/consents/{other_consent}/withdraw", json=body, headers=AUTH)
    assert (other.status_code, other.json()["reason"]) == (404, "consent_not_found")
    assert client.get("/v1/audit/verify", headers=ADMIN).json()["ok"] is True


def test_unlinking_restores_exactly_the_state_before(
    client: TestClient, terms_version: str
) -> None:
    consent_of(client, terms_version, WEB, "web")
    consent_of(client, terms_version, LINE, "line")
    before = {who: listing(client, who) for who in (WEB, LINE)}
    link(client)
    answer = client.delete(f"/v1/subjects/{LINE}/links", headers=AUTH)
    assert answer.status_code == 200
    assert answer.json()["linked"] is False
    assert {who: listing(client, who) for who in (WEB, LINE)} == before
    again = client.delete(f"/v1/subjects/{WEB}/links", headers=AUTH)
    assert (again.status_code, again.json()["reason"]) == (404, "not_linked")
    # Either may link again (with a new code), with anyone.
    link(client, WEB, OTHER)
    assert {c["subject_id"] for c in listing(client, OTHER)} == {WEB}


def test_link_and_unlink_are_in_the_audit_chain(
    client: TestClient, engine: Engine, settings: Settings
) -> None:
    link(client)
    client.delete(f"/v1/subjects/{WEB}/links", headers=AUTH)
    with Session(engine) as session:
        entries = session.execute(select(AuditEntry).order_by(AuditEntry.seq)).scalars().all()
        events = [(e.event_type, e.payload) for e in entries if e.event_type.startswith("subject.")]
        link_row = session.execute(select(SubjectLink)).scalar_one()
    assert events == [
        (
            "subject.linked",
            {"subject_a": WEB, "channel_a": "web", "subject_b": LINE, "channel_b": "line"},
        ),
        ("subject.unlinked", {"subject_a": WEB, "subject_b": LINE, "by": WEB}),
    ]
    assert link_row.unlinked_at is not None
    assert client.get("/v1/audit/verify", headers=ADMIN).json()["ok"] is True
    factory = make_sessionmaker(engine, settings.audit_key())
    with factory() as session:
        assert audit.verify(session).ok


def test_wrong_link_codes_count_towards_the_wrong_code_limit(client: TestClient) -> None:
    issue(client, WEB, "web")
    answers = [redeem(client, LINE, f"9999-{n:04d}", "line") for n in range(6)]
    assert [a.json()["reason"] for a in answers[:5]] == ["unknown_link_code"] * 5
    assert answers[5].status_code == 429
    assert answers[5].json()["reason"] == "too_many_wrong_codes"


def test_expired_codes_are_deleted_after_their_grace(
    client: TestClient, clock: Clock, engine: Engine, settings: Settings
) -> None:
    issue(client, WEB, "web")
    issue(client, OTHER, "rest")

    def stored() -> int:
        with Session(engine) as session:
            return int(session.execute(select(func.count()).select_from(LinkCode)).scalar_one())

    clock.advance(minutes=19)
    issue(client, LINE, "line")
    assert stored() == 3  # expired 9 minutes ago: still told "expired"
    clock.advance(minutes=2)
    issue(client, subject("fourth"), "line")
    assert stored() == 2  # the first two are gone (issue and redemption purge)
    factory = make_sessionmaker(engine, settings.audit_key())
    with factory() as session, session.begin():
        assert links.purge(session, clock.now + dt.timedelta(hours=1)) == 2
    assert stored() == 0


def test_the_retention_command_deletes_expired_link_codes(
    client: TestClient, engine: Engine, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    issue(client, WEB, "web")
    monkeypatch.setattr(cli, "get_settings", lambda: settings)
    future = dt.datetime.now(dt.UTC) + dt.timedelta(days=400)
    monkeypatch.setattr(cli, "utc_now", lambda: future)
    assert cli.main(["retention"]) == 0
    with Session(engine) as session:
        assert session.execute(select(func.count()).select_from(LinkCode)).scalar_one() == 0


def test_a_subject_id_of_the_wrong_shape_is_refused(client: TestClient) -> None:
    answer = client.post(
        "/v1/subjects/..%2Faudit/link-codes", json={"channel": "web"}, headers=AUTH
    )
    assert answer.status_code in (404, 422)
    assert (
        client.post(
            f"/v1/subjects/{WEB}/link-codes", json={"channel": "fax"}, headers=AUTH
        ).status_code
        == 422
    )


def _verify(engine: Engine, settings: Settings) -> audit.Verification:
    with make_sessionmaker(engine, settings.audit_key())() as session:
        return audit.verify(session)


def test_a_member_added_behind_the_chain_is_named_by_verification(
    client: TestClient, engine: Engine, settings: Settings
) -> None:
    link(client)
    assert _verify(engine, settings).ok
    with Session(engine) as session, session.begin():
        link_id = session.execute(select(SubjectLink.link_id)).scalar_one()
        session.add(SubjectLinkMember(subject_id=OTHER, link_id=link_id))
    result = _verify(engine, settings)
    assert (result.ok, result.problem) == (
        False,
        "the linked subjects differ from the audit chain",
    )


def test_a_link_row_changed_behind_the_chain_is_named_by_verification(
    client: TestClient, engine: Engine, settings: Settings
) -> None:
    link(client)
    with Session(engine) as session, session.begin():
        row = session.execute(select(SubjectLink)).scalar_one()
        row.subject_b = OTHER
    result = _verify(engine, settings)
    assert not result.ok
    assert result.problem is not None and result.problem.startswith(
        "a link differs from the audit chain"
    )
