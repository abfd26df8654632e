"""Fixtures of the consent-service tests: each test gets its own throw-away database.

`db_url` runs a test on SQLite and on the real PostgreSQL server (127.0.0.1:5432, a database
created for the test and dropped after it). With CI=true PostgreSQL is mandatory; elsewhere a
machine without it skips those cases and says how to run them.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, text

from consent_service.config import Settings
from consent_service.db import make_engine
from consent_service.main import create_app

# Secrets as strong as the service demands (32 random bytes: 43 base64 characters).
TOKEN = "test-client-token-" + "c" * 32
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ADMIN_TOKEN = "test-admin-token-" + "a" * 32
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
AUDIT_KEY = "test-audit-key-" + "k" * 32
POSTGRES_ADMIN_URL = os.environ.get(
    "CONSENT_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
START = dt.datetime(2026, 11, 30, 3, 0, tzinfo=dt.UTC)


@dataclass
class Clock:
    """A settable clock, so tests decide what 'now' is."""

    now: dt.datetime = field(default=START)

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)


def subject(name: str = "resident") -> str:
    """A subject pseudonym (64 hex characters) derived from a readable name."""
    import hashlib

    return hashlib.sha256(name.encode()).hexdigest()


def _postgres_admin() -> Engine | None:
    engine = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as error:
        engine.dispose()
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but PostgreSQL is not reachable at {POSTGRES_ADMIN_URL}: {error}")
        return None
    return engine


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL of an empty database of each kind."""
    if request.param == "sqlite":
        yield f"sqlite+pysqlite:///{tmp_path / 'consent.db'}"
        return
    admin = _postgres_admin()
    if admin is None:
        pytest.skip(
            "PostgreSQL is not reachable on 127.0.0.1:5432: start it (or set "
            "CONSENT_TEST_POSTGRES_URL) to run the PostgreSQL cases; CI runs them always."
        )
    name = f"consent_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def settings(db_url: str) -> Settings:
    return Settings(
        _env_file=None,
        consent_database_url=db_url,
        consent_api_token=TOKEN,
        consent_admin_token=ADMIN_TOKEN,
        consent_audit_key=AUDIT_KEY,
    )


@pytest.fixture
def engine(settings: Settings) -> Iterator[Engine]:
    engine = make_engine(settings.database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def client(settings: Settings, engine: Engine, clock: Clock) -> Iterator[TestClient]:
    with TestClient(create_app(settings, engine=engine, clock=clock)) as test_client:
        yield test_client


@pytest.fixture
def terms_version(client: TestClient) -> str:
    return str(client.get("/v1/terms", headers=AUTH).json()["version"])


def consent_body(
    terms_version: str,
    offer_id: str = "city_health_vitals",
    item_ids: list[str] | None = None,
    family_doctor_consulted: str | None = None,
    who: str = "resident",
) -> dict[str, object]:
    """A consent request body."""
    return {
        "subject_id": subject(who),
        "offer_id": offer_id,
        "item_ids": item_ids or ["steps", "weight"],
        "channel": "rest",
        "family_doctor_consulted": family_doctor_consulted,
        "terms_version": terms_version,
    }


def post_consent(client: TestClient, body: dict[str, object], key: str | None = None):
    """POST /v1/consents with a fresh (or the given) Idempotency-Key."""
    headers = {**AUTH, "Idempotency-Key": key or uuid.uuid4().hex}
    return client.post("/v1/consents", json=body, headers=headers)
