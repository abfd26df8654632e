"""Backup-and-restore drill of the consent database: pg_dump, pg_restore, verify the audit chain.

The city's recovery plan rests on this: a dump taken while the service runs restores into a new
database whose audit chain verifies end to end and holds exactly the same consents, withdrawals
and receipts. PostgreSQL only (mandatory with CI=true, skipped elsewhere without it).
"""

from __future__ import annotations

import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from consent_service.config import Settings
from consent_service.db import make_engine
from consent_service.main import create_app
from tests.backend.conftest import (
    ADMIN,
    AUTH,
    POSTGRES_ADMIN_URL,
    Clock,
    consent_body,
    post_consent,
    subject,
)


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} missing: install Debian's postgresql-client")
    return path


def _libpq(url: str) -> str:
    """A SQLAlchemy PostgreSQL URL as libpq understands it."""
    return url.replace("postgresql+psycopg://", "postgresql://")


def _rows(url: str) -> dict[str, list[tuple[object, ...]]]:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            names = {
                row[0]
                for row in connection.execute(
                    text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
                )
            }
            tables = {}
            for name in sorted(names):
                query = text(f'SELECT * FROM "{name}"')  # noqa: S608 (names from the catalog)
                tables[name] = sorted(map(tuple, connection.execute(query)), key=str)
            return tables
    finally:
        engine.dispose()


def test_dump_restore_and_the_audit_chain_verifies(
    db_url: str, settings: Settings, tmp_path: Path
) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("the drill is for PostgreSQL, the production database")
    engine = make_engine(settings.database_url)
    with TestClient(create_app(settings, engine=engine, clock=Clock())) as client:
        terms = str(client.get("/v1/terms", headers=AUTH).json()["version"])
        ids = [
            post_consent(client, consent_body(terms, who=f"resident-{n}")).json()["consent_id"]
            for n in range(5)
        ]
        url = f"/v1/consents/{ids[0]}/withdraw"
        client.post(url, headers=AUTH, json={"subject_id": subject("resident-0")})
        before = client.get("/v1/audit/verify", headers=ADMIN).json()
    engine.dispose()
    # the catalogue's and terms' entries at start, five consents, one withdrawal
    assert before["ok"] and before["entries"] == 3 + 5 + 1

    dump = tmp_path / "consent.dump"
    subprocess.run(
        [_tool("pg_dump"), "--format=custom", f"--file={dump}", _libpq(db_url)],
        check=True, timeout=120,
    )  # fmt: skip
    restored_name = f"consent_restore_{uuid.uuid4().hex[:10]}"
    admin = POSTGRES_ADMIN_URL.replace("postgresql+psycopg://", "postgresql://")
    subprocess.run(
        [_tool("createdb"), "--maintenance-db", admin, restored_name], check=True, timeout=60
    )
    restored = db_url.rsplit("/", 1)[0] + f"/{restored_name}"
    try:
        subprocess.run(
            [_tool("pg_restore"), "--exit-on-error", "--no-owner", f"--dbname={_libpq(restored)}",
             str(dump)],
            check=True, timeout=120,
        )  # fmt: skip
        # Exactly the same rows, before anything touches the restored database.
        assert _rows(restored) == _rows(db_url)
        # the same settings (client token, admin token, audit key), on the restored database
        restored_settings = settings.model_copy(update={"consent_database_url": restored})
        restored_engine = make_engine(restored_settings.database_url)
        with TestClient(
            create_app(restored_settings, engine=restored_engine, clock=Clock())
        ) as client:
            after = client.get("/v1/audit/verify", headers=ADMIN).json()
            who = subject("resident-0")
            history = client.get(f"/v1/subjects/{who}/consents", headers=AUTH)
        restored_engine.dispose()
        assert after == before
        assert [c["status"] for c in history.json()] == ["withdrawn"]
    finally:
        subprocess.run(
            [_tool("dropdb"), "--maintenance-db", admin, "--if-exists", "--force", restored_name],
            check=False, timeout=60,
        )  # fmt: skip
