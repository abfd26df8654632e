"""Retention deletes old finished sessions and leaves every current conversation intact.

Runs on SQLite and on a throw-away PostgreSQL database (mandatory with CI=true).
"""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path
from typing import Any, Iterator, List

import pytest
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import (
    ActionExecuted,
    Event,
    SessionStarted,
    SlotSet,
    UserUttered,
)
from rasa.shared.core.trackers import DialogueStateTracker
from sqlalchemy import create_engine, text

from bot.retention import apply_retention
from tests.conftest import PROJECT_ROOT

DAY = 86_400.0
NOW = 1_800_000_000.0
DOMAIN = Domain.from_dict(
    {"slots": {"consent_stage": {"type": "any", "mappings": [{"type": "custom"}]}}}
)
PG_ADMIN = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def _session(start: float, words: List[str], slot: str | None = None) -> List[Event]:
    events: List[Event] = [
        ActionExecuted("action_session_start", timestamp=start),
        SessionStarted(timestamp=start),
    ]
    if slot:
        events.append(SlotSet("consent_stage", slot, timestamp=start))
    events.append(ActionExecuted("action_listen", timestamp=start))
    for n, word in enumerate(words):
        events.append(UserUttered(word, timestamp=start + n + 1))
    return events


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SQLTrackerStore]:
    if request.param == "sqlite":
        yield SQLTrackerStore(DOMAIN, dialect="sqlite", db=str(tmp_path / "rasa.db"))
        return
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    try:
        admin.connect().close()
    except Exception:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL is required in CI and not reachable at {PG_ADMIN}")
        pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN}: start it to run these")
    name = f"retention_{uuid.uuid4().hex[:10]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    store = SQLTrackerStore(
        DOMAIN, dialect="postgresql", host="127.0.0.1", port=5432, db=name, username="postgres"
    )
    try:
        yield store
    finally:
        store.engine.dispose()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _save(store: SQLTrackerStore, sender: str, events: List[Event]) -> None:
    asyncio.run(store.save(DialogueStateTracker.from_events(sender, events)))


def _texts(store: SQLTrackerStore, sender: str) -> List[Any]:
    tracker = asyncio.run(store.retrieve_full_tracker(sender))
    return [e.text for e in tracker.events if isinstance(e, UserUttered)] if tracker else []


def test_old_finished_sessions_and_idle_conversations_go_current_ones_stay(
    store: SQLTrackerStore,
) -> None:
    # a: talked 200 days ago and again yesterday (the old session goes, the current one stays);
    # b: talked once, 200 days ago, one session only (all of it goes: issue #12);
    # c: talked 2 days ago; d: one session started 200 days ago, last message 10 days ago (kept
    # whole: it is in use); e: two sessions, 200 and 150 days ago (all of it goes).
    _save(
        store,
        "a",
        _session(NOW - 200 * DAY, ["血圧は150です"]) + _session(NOW - DAY, ["こんにちは"], "offer"),
    )
    _save(store, "b", _session(NOW - 200 * DAY, ["歩数"]))
    _save(store, "c", _session(NOW - 2 * DAY, ["同意したい"]))
    _save(
        store,
        "d",
        [
            *_session(NOW - 200 * DAY, ["体重"], "offer"),
            UserUttered("最近", timestamp=NOW - 10 * DAY),
        ],
    )
    _save(store, "e", _session(NOW - 200 * DAY, ["脈拍"]) + _session(NOW - 150 * DAY, ["体温"]))
    before = {s: asyncio.run(store.retrieve(s)) for s in "acd"}

    dry = apply_retention(store.engine, days=90, dry_run=True, now=NOW)
    assert dry.events == 16 and not dry.deleted  # a's first session, all of b and of e
    assert _texts(store, "a") == ["血圧は150です", "こんにちは"]
    assert _texts(store, "b") == ["歩数"]

    result = apply_retention(store.engine, days=90, now=NOW)
    assert result.events == 16 and result.deleted
    assert _texts(store, "a") == ["こんにちは"]
    assert _texts(store, "b") == []
    assert _texts(store, "c") == ["同意したい"]
    assert _texts(store, "d") == ["体重", "最近"]
    assert _texts(store, "e") == []
    with store.engine.connect() as connection:
        left = connection.execute(
            text("SELECT COUNT(*) FROM events WHERE sender_id IN ('b', 'e')")
        ).scalar()
    assert left == 0
    after = {s: asyncio.run(store.retrieve(s)) for s in "acd"}
    for sender in "acd":
        assert after[sender].current_state() == before[sender].current_state()
    assert after["a"].get_slot("consent_stage") == "offer"
    assert after["d"].get_slot("consent_stage") == "offer"
    assert apply_retention(store.engine, days=90, now=NOW).events == 0


def test_retention_refuses_less_than_a_day(store: SQLTrackerStore) -> None:
    with pytest.raises(ValueError):
        apply_retention(store.engine, days=0.5, now=NOW)


def test_the_command_reads_the_development_endpoints_with_the_token_from_env_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # endpoints.yml names ${ACTION_SERVER_TOKEN}; in development it is only in .env.
    from bot import retention
    from bot.settings import Settings

    endpoints = tmp_path / "endpoints.yml"
    dev = (PROJECT_ROOT / "endpoints.yml").read_text(encoding="utf-8")
    endpoints.write_text(dev.replace('"var/rasa.db"', f'"{tmp_path / "rasa.db"}"'))
    SQLTrackerStore(DOMAIN, dialect="sqlite", db=str(tmp_path / "rasa.db")).engine.dispose()
    monkeypatch.setenv("ACTION_SERVER_TOKEN", "")  # given back as it was afterwards
    monkeypatch.delenv("ACTION_SERVER_TOKEN")
    settings = Settings(_env_file=None, action_server_token="t" * 8 + uuid.uuid4().hex * 2)
    monkeypatch.setattr("bot.settings.get_settings", lambda: settings)
    retention.main(["--endpoints", str(endpoints), "--days", "90"])
