"""PostgreSQL roles: the schema owner migrates, the app has no DDL and cannot rewrite the audit
log, the read-only analytics role only reads. On throw-away databases and roles (PostgreSQL is
mandatory with CI=true, skipped elsewhere without it)."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ProgrammingError

from consent_service.__main__ import main as cli
from consent_service.config import Settings, get_settings
from consent_service.main import create_app
from consent_service.models import Base
from consent_service.roles import APP_PRIVILEGES, READONLY_TABLES
from tests.backend.conftest import (
    ADMIN,
    ADMIN_TOKEN,
    AUDIT_KEY,
    AUTH,
    POSTGRES_ADMIN_URL,
    TOKEN,
    Clock,
    _postgres_admin,
    consent_body,
    post_consent,
    subject,
)


def test_every_table_declares_what_the_app_may_do() -> None:
    assert set(Base.metadata.tables) <= set(APP_PRIVILEGES)
    assert set(READONLY_TABLES) <= set(Base.metadata.tables)
    assert APP_PRIVILEGES["audit_log"] == ("SELECT", "INSERT")
    for table in ("consents", "receipts", "audit_log", "audit_head"):
        assert "DELETE" not in APP_PRIVILEGES[table], table
    assert not {"staff_users", "staff_sessions", "idempotency_records"} & set(READONLY_TABLES)
    # the analytics retention deletes labels with the messages they copy (hostile review)
    assert "DELETE" in APP_PRIVILEGES["staff_labels"]


@pytest.fixture
def role_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """A consent and a tracker database, and three roles set up by `db create-roles`."""
    admin = _postgres_admin()
    if admin is None:
        pytest.skip("PostgreSQL is not reachable on 127.0.0.1:5432; CI runs these always.")
    suffix = uuid.uuid4().hex[:10]
    consent_db, tracker_db = f"consent_roles_{suffix}", f"tracker_roles_{suffix}"
    names = {kind: f"c1_{suffix}_{kind}" for kind in ("owner", "app", "ro")}
    server = make_url(POSTGRES_ADMIN_URL)

    def url(kind: str, database: str) -> str:
        password = secrets.token_urlsafe(16)
        user = server.set(username=names[kind], password=password, database=database)
        return user.render_as_string(hide_password=False)

    with admin.connect() as connection:
        for name in (consent_db, tracker_db):
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    env = {
        "CONSENT_MIGRATION_DATABASE_URL": url("owner", consent_db),
        "CONSENT_DATABASE_URL": url("app", consent_db),
        "CONSENT_READONLY_DATABASE_URL": url("ro", consent_db),
        "CONSENT_API_TOKEN": TOKEN,
        "CONSENT_ADMIN_TOKEN": ADMIN_TOKEN,
        "CONSENT_AUDIT_KEY": AUDIT_KEY,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    try:
        assert cli(["db", "create-roles"]) == 2  # no superuser named
        monkeypatch.setenv("CONSENT_DB_ADMIN_URL", server.render_as_string(hide_password=False))
        get_settings.cache_clear()
        assert cli(["db", "create-roles"]) == 0
        assert cli(["db", "create-roles"]) == 0  # again: nothing breaks
        monkeypatch.delenv("CONSENT_DB_ADMIN_URL")
        get_settings.cache_clear()
        yield get_settings()
    finally:
        get_settings.cache_clear()
        with admin.connect() as connection:
            for name in (consent_db, tracker_db):
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            for role in names.values():
                connection.execute(text(f'DROP ROLE IF EXISTS "{role}"'))
        admin.dispose()


def _refused(url: str, statement: str) -> str:
    """Run `statement` as the role of `url`; return PostgreSQL's refusal (fails if accepted)."""
    engine = create_engine(url)
    try:
        with pytest.raises(ProgrammingError) as refused, engine.begin() as connection:
            connection.execute(text(statement))
        return str(refused.value.orig)
    finally:
        engine.dispose()


def _scalar(url: str, statement: str) -> object:
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            return connection.execute(text(statement)).scalar()
    finally:
        engine.dispose()


def test_the_app_role_has_no_ddl_and_cannot_rewrite_the_audit_log(
    role_settings: Settings,
) -> None:
    # The service migrates as the owner and then works as the app role.
    with TestClient(create_app(role_settings, clock=Clock())) as client:
        terms = client.get("/v1/terms", headers=AUTH).json()["version"]
        consent = post_consent(client, consent_body(terms)).json()
        url = f"/v1/consents/{consent['consent_id']}/withdraw"
        assert client.post(url, headers=AUTH, json={"subject_id": subject()}).status_code == 200
        assert client.get("/v1/audit/verify", headers=ADMIN).json()["ok"] is True
    app = role_settings.database_url
    assert _scalar(app, "SELECT current_user") == make_url(app).username
    for statement in (
        "CREATE TABLE intruder (id integer)",
        "ALTER TABLE consents ADD COLUMN note text",
        "DROP TABLE audit_log",
        "UPDATE audit_log SET event_type = 'x' WHERE seq = 1",
        "DELETE FROM audit_log WHERE seq = 1",
        "TRUNCATE audit_log",
        "DELETE FROM consents",
        "DELETE FROM receipts",
        "CREATE TEMP TABLE scratch (id integer)",
    ):
        refusal = _refused(app, statement)
        assert refusal.startswith(("permission denied", "must be owner")), (statement, refusal)
    # retention runs as the app role: it deletes analytics events and the labels copying them
    assert _scalar(app, "DELETE FROM staff_labels RETURNING id") is None
    assert _scalar(app, "DELETE FROM analytics_events RETURNING id") is None
    # ... while the owner still can (it runs the migrations).
    owner = role_settings.migration_database_url
    assert _scalar(owner, "SELECT count(*) FROM audit_log") == 3 + 2


def test_the_read_only_role_only_reads(role_settings: Settings) -> None:
    with TestClient(create_app(role_settings, clock=Clock())) as client:
        terms = client.get("/v1/terms", headers=AUTH).json()["version"]
        post_consent(client, consent_body(terms))
    readonly = role_settings.consent_readonly_database_url
    assert _scalar(readonly, "SELECT count(*) FROM consents") == 1
    for statement in (
        "INSERT INTO audit_head (id, seq, hash) VALUES (2, 0, 'x')",
        "UPDATE consents SET status = 'withdrawn'",
        "DELETE FROM consents",
        "SELECT count(*) FROM staff_users",
        "SELECT count(*) FROM idempotency_records",
        "CREATE TABLE intruder (id integer)",
    ):
        assert "permission denied" in _refused(readonly, statement), statement
    # Rasa's tracker store: no role of the consent service may read it (issue 20: the console's
    # analytics come from Rasa's event broker).
    tracker_db = "tracker_roles_" + make_url(readonly).username.split("_")[1]
    admin = make_url(POSTGRES_ADMIN_URL).set(database=tracker_db)
    engine = create_engine(admin)
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE events (id serial PRIMARY KEY, data text)"))
    engine.dispose()
    tracker_url = make_url(readonly).set(database=tracker_db).render_as_string(hide_password=False)
    assert "permission denied" in _refused(tracker_url, "SELECT count(*) FROM events")


def test_production_accepts_the_roles_with_passwords(role_settings: Settings) -> None:
    production = role_settings.model_copy(update={"consent_env": "production"})
    assert [p for p in production.serving_problems() if "STAFF_" not in p] == []
