"""Migrations match the models; the shipped catalogue matches the seed and the contract."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect, text

from consent_service import catalog, migrations
from consent_service.config import Settings
from consent_service.models import Base

SEED_LEVELS = {
    "statistics": 0,
    "steps": 1, "weight": 1, "body_fat": 1, "body_temperature": 1, "blood_pressure": 1,
    "pulse": 1,
    "health_checkup": 2, "medical_history": 2, "vaccination": 2, "claims": 2,
    "other_test_results": 3, "gut_bacteria": 3, "oral_bacteria": 3, "genetic": 3,
    "location": 1,  # not a health level in the seed: consent required, like level 1
}  # fmt: skip


def test_migrations_create_exactly_the_models(engine: Engine) -> None:
    migrations.upgrade(engine)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def schema(engine: Engine) -> dict[str, Any]:
    """Every table's columns, keys, indexes and constraints, as the database reports them.

    Plain JSON values: SQL expressions (a partial index's `WHERE`) compare by their text.
    """
    inspector = inspect(engine)
    found = {
        table: {
            "columns": [
                (c["name"], str(c["type"]), c["nullable"], str(c.get("default")))
                for c in inspector.get_columns(table)
            ],
            "primary_key": inspector.get_pk_constraint(table),
            "foreign_keys": inspector.get_foreign_keys(table),
            "indexes": sorted(inspector.get_indexes(table), key=lambda i: str(i["name"])),
            "unique": sorted(inspector.get_unique_constraints(table), key=lambda u: str(u["name"])),
            "checks": sorted(inspector.get_check_constraints(table), key=lambda c: str(c["name"])),
        }
        for table in sorted(inspector.get_table_names())
    }
    return dict(json.loads(json.dumps(found, default=str, sort_keys=True)))


def test_migrations_run_twice_safely(engine: Engine) -> None:
    migrations.upgrade(engine)
    once = schema(engine)
    migrations.upgrade(engine)
    assert schema(engine) == once
    assert {"consents", "alembic_version"} <= set(once)
    heads = ScriptDirectory.from_config(migrations.alembic_config()).get_heads()
    with engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_heads()
        versions = connection.execute(text("SELECT count(*) FROM alembic_version")).scalar_one()
    assert (current, versions) == (tuple(heads), 1)


@pytest.fixture(scope="module")
def shipped() -> catalog.CatalogSpec:
    spec, _ = catalog.read(Settings.model_fields["consent_catalog_path"].default)
    return spec


def test_item_levels_are_the_seeds(shipped: catalog.CatalogSpec) -> None:
    assert {i.item_id: i.level for i in shipped.items} == SEED_LEVELS


def test_every_offer_has_a_health_benefit_and_no_level3(shipped: catalog.CatalogSpec) -> None:
    levels = {i.item_id: i.level for i in shipped.items}
    for offer in shipped.offers:
        assert any(b.kind == "health" for b in offer.benefits), offer.offer_id
        assert all(levels[i] < 3 for i in offer.items), offer.offer_id


def test_no_offer_asks_for_location(shipped: catalog.CatalogSpec) -> None:
    """domain.yml tells residents that no offer asks for location data."""
    assert all("location" not in offer.items for offer in shipped.offers)


def test_the_contract_minimum_offers_exist(shipped: catalog.CatalogSpec) -> None:
    levels = {i.item_id: i.level for i in shipped.items}
    max_levels = {o.offer_id: max(levels[i] for i in o.items) for o in shipped.offers}
    assert 1 in max_levels.values()
    assert any(max_levels[o.offer_id] == 2 and o.approval for o in shipped.offers)


def test_loader_refuses_an_offer_with_level3_items(tmp_path: Path) -> None:
    source = Settings.model_fields["consent_catalog_path"].default
    text = source.read_text(encoding="utf-8").replace(
        "items: [steps, weight]\n", "items: [steps, genetic]\n", 1
    )
    (tmp_path / "catalog.yml").write_text(text, encoding="utf-8")
    (tmp_path / "terms_ja.md").write_text("約款", encoding="utf-8")
    with pytest.raises(ValueError, match="level-3 data is never offered"):
        catalog.read(tmp_path / "catalog.yml")
