"""Tampering with the audit log or with the consents behind its back is detected, by the
endpoint and by the command; the chain is keyed, so recomputing plain hashes does not help."""

from __future__ import annotations

import datetime as dt
import hashlib
import json

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import Engine, text

from consent_service import audit, migrations
from consent_service.__main__ import main as cli
from consent_service.config import Settings
from consent_service.main import create_app
from tests.backend.conftest import (
    ADMIN,
    AUDIT_KEY,
    AUTH,
    Clock,
    consent_body,
    post_consent,
    subject,
)


def write_some(client: TestClient, terms_version: str) -> list[str]:
    """Three consents (seq 4-6) and the withdrawal of the last (seq 7); their ids."""
    ids = []
    for who in ("a", "b", "c"):
        ids.append(post_consent(client, consent_body(terms_version, who=who)).json()["consent_id"])
    url = f"/v1/consents/{ids[-1]}/withdraw"
    assert client.post(url, headers=AUTH, json={"subject_id": subject("c")}).status_code == 200
    return ids


def verify(client: TestClient) -> dict[str, object]:
    return dict(client.get("/v1/audit/verify", headers=ADMIN).json())


def test_an_untouched_chain_verifies(client: TestClient, terms_version: str) -> None:
    write_some(client, terms_version)
    assert verify(client) == {
        "ok": True, "entries": 7, "first_bad_seq": None, "problem": None, "consent_id": None
    }  # fmt: skip


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


def _rehash_unkeyed(engine: Engine, from_seq: int, to_seq: int | None = None) -> None:
    """What someone with the database but without the key can do: recompute plain SHA-256
    hashes (the pre-0005 algorithm) from `from_seq` to `to_seq` (default: the end and the
    head)."""
    with engine.begin() as connection:
        rows = connection.execute(
            text("SELECT seq, at, event_type, entity_id, payload FROM audit_log ORDER BY seq")
        ).all()
        prev = audit.GENESIS_HASH
        for seq, at, event_type, entity_id, payload in rows:
            if isinstance(payload, str):
                payload = json.loads(payload)
            if isinstance(at, str):
                at = dt.datetime.fromisoformat(at)
            at = at.replace(tzinfo=dt.UTC) if at.tzinfo is None else at
            if seq < from_seq or (to_seq is not None and seq > to_seq):
                prev = connection.execute(
                    text("SELECT hash FROM audit_log WHERE seq = :s"), {"s": seq}
                ).scalar_one()
                continue
            body = audit.canonical_json({
                "seq": seq, "at": at.astimezone(dt.UTC).isoformat(timespec="microseconds"),
                "event_type": event_type, "entity_id": entity_id, "payload": payload,
            })  # fmt: skip
            new = hashlib.sha256(f"{prev}\n{body}".encode()).hexdigest()
            connection.execute(
                text("UPDATE audit_log SET prev_hash = :p, hash = :h WHERE seq = :s"),
                {"p": prev, "h": new, "s": seq},
            )
            prev = new
        if to_seq is None:
            connection.execute(
                text("UPDATE audit_head SET seq = :s, hash = :h"), {"s": rows[-1][0], "h": prev}
            )


def test_an_entry_rewritten_with_recomputed_plain_hashes_is_detected(
    client: TestClient, engine: Engine, terms_version: str
) -> None:
    write_some(client, terms_version)
    payload = "replace(CAST(payload AS TEXT), 'rest', 'line')"
    if engine.dialect.name == "postgresql":
        payload = f"CAST({payload} AS JSON)"
    with engine.begin() as connection:
        connection.execute(text(f"UPDATE audit_log SET payload = {payload} WHERE seq = 5"))  # noqa: S608
    _rehash_unkeyed(engine, from_seq=5)
    result = verify(client)
    assert (result["ok"], result["first_bad_seq"]) == (False, 5)
    assert "changed" in str(result["problem"])


def test_a_whole_chain_recomputed_as_unkeyed_is_detected(
    client: TestClient, engine: Engine, terms_version: str
) -> None:
    write_some(client, terms_version)
    _rehash_unkeyed(engine, from_seq=1)
    result = verify(client)
    assert (result["ok"], result["problem"]) == (False, "the newest entry is not keyed")


def test_another_key_does_not_verify(
    client: TestClient, settings: Settings, engine: Engine, terms_version: str
) -> None:
    write_some(client, terms_version)
    other_key = SecretStr("another-audit-key-" + "o" * 32)
    other = settings.model_copy(update={"consent_audit_key": other_key})
    with TestClient(create_app(other, engine=engine, clock=Clock())) as second:
        result = verify(second)
    assert (result["ok"], result["first_bad_seq"]) == (False, 1)


@pytest.mark.parametrize(
    ("which", "change", "field"),
    [
        # a withdrawn consent made active again (and its withdrawal time removed)
        (2, "status = 'active', withdrawn_at = NULL", "status, withdrawn_at"),
        # an active consent marked withdrawn without a withdrawal in the chain
        (0, "status = 'withdrawn'", "status"),
        # items added to a consent
        (1, "item_ids = :items, item_set = 'pulse,steps,weight'", "item_ids, item_set"),
    ],
)
def test_a_consent_changed_behind_the_chain_is_named(
    client: TestClient, engine: Engine, terms_version: str, which: int, change: str, field: str
) -> None:
    ids = write_some(client, terms_version)
    items = json.dumps(["steps", "weight", "pulse"])
    with engine.begin() as connection:
        updated = connection.execute(
            text(f"UPDATE consents SET {change} WHERE consent_id = :id"),  # noqa: S608
            {"id": ids[which], "items": items},
        )
        assert updated.rowcount == 1
    result = verify(client)
    assert (result["ok"], result["consent_id"]) == (False, ids[which])
    assert str(result["problem"]).endswith(field)


def test_a_consent_without_audit_entry_or_deleted_is_named(
    client: TestClient, engine: Engine, terms_version: str
) -> None:
    ids = write_some(client, terms_version)
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM receipts WHERE consent_id = :id"), {"id": ids[0]})
        connection.execute(text("DELETE FROM consents WHERE consent_id = :id"), {"id": ids[0]})
    result = verify(client)
    assert (result["ok"], result["consent_id"]) == (False, ids[0])
    assert "deleted" in str(result["problem"])


def test_a_chain_from_before_the_key_is_sealed_and_still_guarded(
    settings: Settings, engine: Engine
) -> None:
    # A database from before the keyed chain, with entries hashed the old way.
    migrations.upgrade(engine, "0003")
    at = dt.datetime(2026, 1, 5, tzinfo=dt.UTC)
    prev = audit.GENESIS_HASH
    with engine.begin() as connection:
        for seq in (1, 2):
            payload = {"offer_id": f"old-{seq}"}
            digest = audit.entry_hash(None, prev, seq, at, "approval.recorded", "old", payload)
            connection.execute(
                text("INSERT INTO audit_log (seq, at, event_type, entity_id, payload, prev_hash,"
                     " hash) VALUES (:seq, :at, 'approval.recorded', 'old', :payload, :prev, :h)"),
                {"seq": seq, "at": at, "payload": json.dumps(payload), "prev": prev, "h": digest},
            )  # fmt: skip
            prev = digest
        connection.execute(
            text("INSERT INTO audit_head (id, seq, hash) VALUES (1, 2, :h)"), {"h": prev}
        )
    with TestClient(create_app(settings, engine=engine, clock=Clock())) as client:
        result = verify(client)
        # two old entries, the seal, the three approvals of the catalogue
        assert result == {
            "ok": True, "entries": 6, "first_bad_seq": None, "problem": None, "consent_id": None
        }  # fmt: skip
        with engine.connect() as connection:
            seal = connection.execute(
                text("SELECT event_type, payload FROM audit_log WHERE seq = 3")
            ).one()
        payload = seal[1] if isinstance(seal[1], dict) else json.loads(seal[1])
        assert (seal[0], payload) == ("audit.keyed", {"unkeyed_entries": 2, "unkeyed_head": prev})
        # The old entries stay guarded: rewriting one and recomputing the old hashes breaks
        # the link to the keyed seal, which nobody can recompute without the key.
        with engine.begin() as connection:
            connection.execute(text("UPDATE audit_log SET entity_id = 'forged' WHERE seq = 1"))
        _rehash_unkeyed(engine, from_seq=1, to_seq=2)
        forged = verify(client)
        assert (forged["ok"], forged["first_bad_seq"]) == (False, 3)


def test_the_command_verifies_and_fails_on_tampering(
    client: TestClient, engine: Engine, terms_version: str, settings, monkeypatch, capsys
) -> None:
    write_some(client, terms_version)
    monkeypatch.setenv("CONSENT_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("CONSENT_API_TOKEN", "x")
    monkeypatch.setenv("CONSENT_AUDIT_KEY", AUDIT_KEY)
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
