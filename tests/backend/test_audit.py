"""Tampering with the audit log is detected, by the endpoint and by the command."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from consent_service.__main__ import main as cli
from tests.backend.conftest import AUTH, consent_body, post_consent


def write_some(client: TestClient, terms_version: str) -> None:
    for who in ("a", "b", "c"):
        consent = post_consent(client, consent_body(terms_version, who=who)).json()
    client.post(f"/v1/consents/{consent['consent_id']}/withdraw", headers=AUTH)


def verify(client: TestClient) -> dict[str, object]:
    return dict(client.get("/v1/audit/verify", headers=AUTH).json())


def test_an_untouched_chain_verifies(client: TestClient, terms_version: str) -> None:
    write_some(client, terms_version)
    assert verify(client) == {"ok": True, "entries": 7, "first_bad_seq": None, "problem": None}


@pytest.mark.parametrize(
    ("tamper", "bad_seq", "problem"),
    [
        (
            "UPDATE audit_log SET payload = replace(CAST(payload AS TEXT), 'rest', 'line')"
            " WHERE seq = 5",
            5,
            "the entry was changed",
        ),
        ("UPDATE audit_log SET event_type = 'consent.nothing' WHERE seq = 4", 4, "changed"),
        ("DELETE FROM audit_log WHERE seq = 5", 5, "missing"),
        ("DELETE FROM audit_log WHERE seq = 7", 7, "deleted"),
    ],
)
def test_tampering_is_detected(
    client: TestClient, engine: Engine, terms_version: str, tamper: str, bad_seq: int, problem: str
) -> None:
    write_some(client, terms_version)
    statement = tamper
    if engine.dialect.name == "postgresql":
        statement = statement.replace(
            "payload = replace(CAST(payload AS TEXT), 'rest', 'line')",
            "payload = CAST(replace(CAST(payload AS TEXT), 'rest', 'line') AS JSON)",
        )
    with engine.begin() as connection:
        assert connection.execute(text(statement)).rowcount == 1
    result = verify(client)
    assert result["ok"] is False
    assert result["first_bad_seq"] == bad_seq
    assert problem in str(result["problem"])


def test_rewriting_a_whole_entry_consistently_still_breaks_the_next_link(
    client: TestClient, engine: Engine, terms_version: str
) -> None:
    write_some(client, terms_version)
    with engine.begin() as connection:
        connection.execute(text("UPDATE audit_log SET hash = :h WHERE seq = 5"), {"h": "f" * 64})
    result = verify(client)
    assert result["ok"] is False and result["first_bad_seq"] == 5


def test_the_command_verifies_and_fails_on_tampering(
    client: TestClient, engine: Engine, terms_version: str, settings, monkeypatch, capsys
) -> None:
    write_some(client, terms_version)
    monkeypatch.setenv("CONSENT_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("CONSENT_API_TOKEN", "x")
    from consent_service.config import get_settings

    get_settings.cache_clear()
    try:
        assert cli(["audit", "verify"]) == 0
        with engine.begin() as connection:
            connection.execute(text("DELETE FROM audit_log WHERE seq = 2"))
        assert cli(["audit", "verify"]) == 1
    finally:
        get_settings.cache_clear()
    assert '"ok": false' in capsys.readouterr().out
