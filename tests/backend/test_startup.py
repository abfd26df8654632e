"""Start-up: migrations and catalogue are idempotent, and catalogue changes apply on restart."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from consent_service.config import Settings
from consent_service.main import create_app
from tests.backend.conftest import AUTH, Clock


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
