"""Start-up: migrations and catalogue are idempotent, catalogue changes apply on restart, and
the service refuses weak secrets and (in production) hides its documentation."""

from __future__ import annotations

import base64
import secrets
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from consent_service.__main__ import main as cli
from consent_service.config import InsecureSettings, Settings, get_settings
from consent_service.main import create_app
from tests.backend.conftest import ADMIN, ADMIN_TOKEN, AUTH, TOKEN, Clock


def offers(settings: Settings, engine: Engine) -> dict[str, dict[str, object]]:
    with TestClient(create_app(settings, engine=engine, clock=Clock())) as client:
        return {o["offer_id"]: o for o in client.get("/v1/offers", headers=AUTH).json()}


def test_restarting_changes_nothing(settings: Settings, engine: Engine) -> None:
    assert offers(settings, engine) == offers(settings, engine)


def test_a_changed_catalogue_applies_on_restart(
    settings: Settings, engine: Engine, tmp_path: Path
) -> None:
    before = offers(settings, engine)
    assert before["gyms_training"]["title_ja"] == "ジムのトレーニング"
    source = settings.consent_catalog_path
    changed = source.read_text(encoding="utf-8").replace("ジムのトレーニング", "ジムの運動メニュー")
    (tmp_path / "catalog.yml").write_text(changed, encoding="utf-8")
    (tmp_path / "terms_ja.md").write_text(
        (source.parent / "terms_ja.md").read_text(encoding="utf-8"), encoding="utf-8"
    )
    moved = settings.model_copy(update={"consent_catalog_path": tmp_path / "catalog.yml"})
    assert offers(moved, engine)["gyms_training"]["title_ja"] == "ジムの運動メニュー"


STRONG = secrets.token_urlsafe(32)  # 43 characters, as scripts/init_env.py writes


def strict(**values: object) -> Settings:
    base: dict[str, object] = {"consent_api_token": STRONG}
    return Settings(_env_file=None, **{**base, **values})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "token",
    [
        "test-client-token",  # a readable word
        secrets.token_urlsafe(32)[:42],  # 31.5 bytes
        secrets.token_hex(32)[:63],  # hex: 4 bits a character
        secrets.token_urlsafe(24) + "!" * 20,  # long, but not a base64 or hex string
    ],
)
def test_a_weak_client_token_is_refused_at_start(token: str) -> None:
    with pytest.raises(InsecureSettings, match="CONSENT_API_TOKEN"):
        create_app(strict(consent_api_token=token))


@pytest.mark.parametrize(
    "token",
    [
        secrets.token_urlsafe(32),
        secrets.token_hex(32),
        base64.b64encode(secrets.token_bytes(32)).decode(),  # openssl rand -base64 32
    ],
)
def test_tokens_of_32_random_bytes_are_accepted(token: str) -> None:
    assert strict(consent_api_token=token).serving_problems() == []


@pytest.mark.parametrize("setting", ["consent_admin_token", "consent_audit_key"])
def test_a_weak_admin_token_or_audit_key_is_refused(setting: str) -> None:
    with pytest.raises(InsecureSettings, match=setting.upper()):
        create_app(strict(**{setting: "short"}))


def test_production_needs_the_admin_token_the_audit_key_and_database_passwords() -> None:
    with pytest.raises(InsecureSettings) as refused:
        create_app(
            strict(
                consent_env="production",
                consent_database_url="postgresql+psycopg://consent_app@db/consent",
            )
        )
    message = str(refused.value)
    for name in ("CONSENT_ADMIN_TOKEN", "CONSENT_AUDIT_KEY", "CONSENT_DATABASE_URL"):
        assert name in message
    fine = strict(
        consent_env="production",
        consent_database_url="postgresql+psycopg://consent_app:pw@db/consent",
        consent_admin_token=secrets.token_urlsafe(32),
        consent_audit_key=secrets.token_urlsafe(32),
        staff_totp_key=secrets.token_urlsafe(32),
    )
    assert fine.serving_problems() == []


def test_the_command_refuses_to_serve_with_a_weak_token(monkeypatch, capsys) -> None:
    monkeypatch.setenv("CONSENT_API_TOKEN", "short-token")
    get_settings.cache_clear()
    try:
        assert cli(["serve"]) == 2
    finally:
        get_settings.cache_clear()
    assert "CONSENT_API_TOKEN must be at least 43 base64 characters" in capsys.readouterr().err


def test_in_development_the_documentation_is_open(client: TestClient) -> None:
    for path in ("/docs", "/redoc", "/openapi.json"):
        assert client.get(path).status_code == 200, path


def test_in_production_the_documentation_needs_the_admin_token(tmp_path: Path) -> None:
    production = strict(
        consent_env="production",
        consent_database_url=f"sqlite+pysqlite:///{tmp_path / 'consent.db'}",
        consent_api_token=TOKEN,
        consent_admin_token=ADMIN_TOKEN,
        consent_audit_key=secrets.token_urlsafe(32),
        staff_totp_key=secrets.token_urlsafe(32),
    )
    basic = base64.b64encode(f"admin:{ADMIN_TOKEN}".encode()).decode()
    with TestClient(create_app(production, clock=Clock())) as client:
        for path in ("/docs", "/redoc", "/openapi.json"):
            for headers in ({}, AUTH, {"Authorization": "Basic " + basic[:-4]}):
                refused = client.get(path, headers=headers)
                assert refused.status_code == 401, (path, headers)
                assert refused.headers["WWW-Authenticate"].startswith("Basic")
            assert client.get(path, headers=ADMIN).status_code == 200, path
            assert client.get(path, headers={"Authorization": f"Basic {basic}"}).is_success
        assert "/v1/consents" in client.get("/openapi.json", headers=ADMIN).json()["paths"]
        assert client.get("/v1/offers", headers=AUTH).status_code == 200
