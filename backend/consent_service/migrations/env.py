"""Alembic environment: runs migrations on the engine handed over by `migrations.upgrade`."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Engine

from consent_service.models import Base

engine: Engine | None = context.config.attributes.get("engine")
if engine is None:
    raise RuntimeError("Run migrations through consent_service.migrations.upgrade().")

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
