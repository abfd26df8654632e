"""Engine and sessions. SQLite by default (one writer at a time), PostgreSQL in production."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker


def make_engine(url: str) -> Engine:
    """Create the engine for `url`, with the settings each database needs.

    SQLite gets its folder created, WAL journaling, foreign keys on, and `BEGIN IMMEDIATE`
    transactions so that two writers queue instead of failing with "database is locked".

    Args:
        url: A SQLAlchemy database URL.

    Returns:
        The engine.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # let SQLAlchemy's `begin` event issue BEGIN
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def make_sessionmaker(engine: Engine, audit_key: bytes | None = None) -> sessionmaker[Session]:
    """A session factory whose objects stay readable after commit.

    Args:
        engine: The database.
        audit_key: The audit chain's key, which `audit` reads from each session's `info`
            (needed by every session that writes or verifies audit entries).

    Returns:
        The factory.
    """
    info = {"audit_key": audit_key} if audit_key else {}
    return sessionmaker(engine, expire_on_commit=False, info=info)


def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """Yield a session that commits on success and rolls back on error.

    Args:
        factory: The session factory.

    Yields:
        The session.
    """
    with factory() as session, session.begin():
        yield session
