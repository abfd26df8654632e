"""Analytics from Rasa's event broker (issue 20): the console's numbers from its own tables.

The console used to read Rasa's tracker store (`events`) with raw SQL and mask texts on each
request. Now the consent service's consumer stores masked facts from the events Rasa publishes.
These tests feed the generated stores' events through the consumer and compare every number and
text the console shows with the old computation, kept here as the reference
(`before_issue_20`): same conversations, same counts, same masked texts.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from consent_service.analytics import consumer, intake, store
from consent_service.analytics.tables import AnalyticsEvent, AnalyticsOffset
from consent_service.config import Settings
from consent_service.db import make_sessionmaker
from consent_service.main import prepare_database
from consent_service.staff import metrics, views
from consent_service.staff.masking import mask
from consent_service.staff.tracker import JST, Conversation, Event, conversations
from consent_service.staff.tracker import read_events as read_analytics
from tests.staff_tracker import (
    DAY1,
    DAY2,
    RANDOM_FIRST_DAY,
    build,
    build_broker,
    build_hostile,
    build_random,
    feed,
    published,
)

NOW = dt.datetime(2026, 11, 24, 3, 0, tzinfo=dt.UTC)
RANDOM_LAST_DAY = RANDOM_FIRST_DAY + dt.timedelta(days=20)


def before_issue_20(tracker: Path, start: dt.date, end: dt.date) -> list[Conversation]:
    """The console's old computation: Rasa's `events` table read with SQL, texts masked on read.

    (staff/tracker.py `read_events` + `conversations` and the views' masking before issue 20.)
    """
    import sqlite3

    low = dt.datetime.combine(start, dt.time.min, JST).timestamp()
    high = dt.datetime.combine(end + dt.timedelta(days=1), dt.time.min, JST).timestamp()
    db = sqlite3.connect(tracker)
    rows = db.execute(
        "SELECT id, sender_id, type_name, timestamp, intent_name, action_name, data FROM events "
        "WHERE sender_id IN (SELECT DISTINCT sender_id FROM events WHERE type_name = 'user' "
        "AND timestamp >= ? AND timestamp < ?) ORDER BY sender_id, id",
        (low, high),
    ).fetchall()
    db.close()
    events = []
    for row_id, sender, kind, timestamp, intent, action, data in rows:
        body = json.loads(data or "{}")
        text = str(body.get("text") or "")
        if kind == "user":  # the transcript showed a button as its intent, the rest masked
            text = "/" + text[1:].split("{")[0] if text.startswith("/") else mask(text)
            # since the hostile review: of a slash text only an intent's name is kept, and an
            # intent that is no name (REST's "/<any text>") is hidden
            name = re.match(r"/([A-Za-z0-9_]+)", text)
            text = ("/" + name.group(1) if name else "［伏せ字］") if text.startswith("/") else text
            if intent is not None and not re.fullmatch(r"[A-Za-z0-9_]+", intent):
                intent = "［伏せ字］"
        elif kind == "bot":
            text, action = mask(text), (body.get("metadata") or {}).get("utter_action")
        events.append(
            Event(
                id=row_id,
                sender=sender,
                kind=kind,
                at=dt.datetime.fromtimestamp(timestamp or 0, JST),
                intent=intent,
                action=action,
                text=text,
                channel=body.get("input_channel"),
                confidence=((body.get("parse_data") or {}).get("intent") or {}).get("confidence"),
                value=body.get("value") if kind == "slot" else None,
            )
        )
    return conversations(events, start, end)


@pytest.fixture
def migrated(settings: Settings, engine: Engine) -> Engine:
    prepare_database(engine, settings, NOW)
    return engine


def read(engine: Engine, start: dt.date, end: dt.date) -> list[Conversation]:
    with make_sessionmaker(engine)() as session:
        return conversations(read_analytics(session, start, end), start, end)


def week_filters(start: dt.date, end: dt.date, channel: str = "all") -> Any:
    filters = object.__new__(views.WeekFilters)
    filters.start, filters.end = metrics.week_of(start), metrics.week_of(end) + dt.timedelta(6)
    filters.channel, filters.weekly = channel, True
    return filters


def everything_shown(convs: list[Conversation], filters: Any) -> dict[str, Any]:
    """Every number and text of the aggregate views and exports, and the transcripts' lines."""
    return {
        "per_day": metrics.per_day(convs),
        "intents": metrics.intents(convs),
        "fallbacks": metrics.fallbacks(convs),
        "funnel_cells": metrics.funnel_cells(convs),
        "funnel": metrics.funnel(convs),
        "groups": metrics.group_similar(metrics.unanswered(convs)),
        "overview": views.overview_data(convs, filters),
        "intents_view": views.intents_data(convs, filters),
        "fallbacks_view": views.fallbacks_data(convs, filters),
        "funnel_view": views.funnel_rows(convs),
        "conversations": [(c.key, c.channel, c.day, len(c.events)) for c in convs],
        "transcripts": [
            [(e.kind, e.at, e.text, e.intent, e.action, e.confidence) for e in c.events]
            for c in convs
        ],
    }


@pytest.mark.parametrize(
    ("generate", "start", "end"),
    [
        (build, DAY1, DAY2),
        (build_hostile, DAY1, DAY1),
        (lambda path: build_random(path)[0], RANDOM_FIRST_DAY, RANDOM_LAST_DAY),
        (lambda path: build_random(path, seed=3)[0], RANDOM_FIRST_DAY, RANDOM_LAST_DAY),
    ],
    ids=["known", "hostile", "random-12", "random-3"],
)
def test_the_console_shows_what_the_old_computation_showed(
    migrated: Engine, tmp_path: Path, generate: Any, start: dt.date, end: dt.date
) -> None:
    tracker = generate(tmp_path / "rasa.db")
    feed(migrated, tracker)
    old = before_issue_20(tracker, start, end)
    new = read(migrated, start, end)
    assert old, "the generated store has conversations in the range"
    filters = week_filters(start, end)
    assert everything_shown(new, filters) == everything_shown(old, filters)
    for channel in ("LINE", "web", "REST"):
        one = week_filters(start, end, channel)
        pick = [c for c in new if c.channel == channel]
        assert everything_shown(pick, one) == everything_shown(
            [c for c in old if c.channel == channel], one
        )


def test_a_redelivered_event_is_stored_once(migrated: Engine, tmp_path: Path) -> None:
    tracker = build(tmp_path / "rasa.db")
    events = published(tracker)
    factory = make_sessionmaker(migrated)
    first = consumer.store_events(factory, events, mask)
    # at-least-once: the whole stream again, and a half of it a third time, in a new order
    again = consumer.store_events(factory, events, mask)
    third = consumer.store_events(factory, list(reversed(events[: len(events) // 2])), mask)
    with factory() as session:
        stored = store.count(session)
    kept = [e for e in events if intake.facts(e, mask) is not None]
    assert (first, again, third, stored) == (len(kept), 0, 0, len(kept))
    assert metrics.per_day(read(migrated, DAY1, DAY2)) == metrics.per_day(
        before_issue_20(tracker, DAY1, DAY2)
    )


def test_the_sql_source_moves_its_offset_with_the_facts(migrated: Engine, tmp_path: Path) -> None:
    tracker = build(tmp_path / "rasa.db")
    events = published(tracker)
    path = build_broker(tmp_path / "events.db", events[:10])
    broker = consumer.broker_engine(f"sqlite+pysqlite:///{path}")
    factory = make_sessionmaker(migrated)
    try:
        assert consumer.sql_step(broker, factory, mask, batch=4) == 4
        assert consumer.sql_step(broker, factory, mask, batch=100) == 6
        assert consumer.sql_step(broker, factory, mask) == 0
        build_broker(path, events[10:])  # Rasa goes on writing
        while consumer.sql_step(broker, factory, mask, batch=7):
            pass
    finally:
        broker.dispose()
    with factory() as session:
        assert session.get(AnalyticsOffset, consumer.SQL_SOURCE).position == len(events)
    assert metrics.funnel(read(migrated, DAY1, DAY2)) == metrics.funnel(
        before_issue_20(tracker, DAY1, DAY2)
    )


def test_no_raw_text_and_no_other_slot_is_stored(migrated: Engine, tmp_path: Path) -> None:
    tracker = build(tmp_path / "rasa.db")
    events = published(tracker)
    sender = "line-5"
    at = events[-1]["timestamp"] + 1
    events += [
        {"sender_id": sender, "event": "slot", "timestamp": at, "name": "contact_phone",
         "value": "047-123-4567"},
        {"sender_id": sender, "event": "user", "timestamp": at + 1, "message_id": "x1",
         "text": '/give_consent{"offer_id": "鈴木花子"}', "input_channel": "line",
         "parse_data": {"intent": {"name": "give_consent", "confidence": 1.0}}},
        {"sender_id": sender, "event": "bot", "timestamp": at + 2,
         "text": "血圧が150ですね", "metadata": {"utter_action": "utter_x"}},
        {"sender_id": sender, "event": "action", "timestamp": at + 3, "name": "action_listen"},
        {"sender_id": sender, "event": "user_featurization", "timestamp": at + 4},
    ]  # fmt: skip
    consumer.store_events(make_sessionmaker(migrated), events, mask)
    with make_sessionmaker(migrated)() as session:
        rows = list(session.scalars(select(AnalyticsEvent)))
    stored = json.dumps([[r.text, r.value, r.action, r.intent] for r in rows], ensure_ascii=False)
    for secret in ("047-123-4567", "鈴木花子", "150", "contact_phone"):
        assert secret not in stored, secret
    assert {r.kind for r in rows} == {"user", "bot", "action", "slot", "session_started"}
    assert "action_listen" not in stored
    assert "/give_consent" in stored  # a button press, without its entities


def test_a_text_that_cannot_be_masked_is_hidden_and_blocks_nothing(
    migrated: Engine, tmp_path: Path
) -> None:
    events = published(build(tmp_path / "rasa.db"))

    def fragile(value: str) -> str:
        if "山田" in value:
            raise ValueError("the pipeline refuses this text")
        return mask(value)

    factory = make_sessionmaker(migrated)
    assert consumer.store_events(factory, events, fragile) > 0
    with factory() as session:
        texts = list(
            session.scalars(select(AnalyticsEvent.text).where(AnalyticsEvent.kind == "user"))
        )
    assert "［伏せ字］" in texts and not [t for t in texts if "山田" in (t or "")]
    assert metrics.per_day(read(migrated, DAY1, DAY2)) == metrics.per_day(
        before_issue_20(tracker_of(tmp_path), DAY1, DAY2)
    )


def tracker_of(folder: Path) -> Path:
    return folder / "rasa.db"


def test_analytics_retention_is_its_own_setting(migrated: Engine, tmp_path: Path) -> None:
    tracker = build(tmp_path / "rasa.db")
    feed(migrated, tracker)
    factory = make_sessionmaker(migrated)
    with factory() as session:
        before = store.count(session)
    # 40 days after DAY1: the generated "old-0" conversation (40 days before DAY1) goes,
    # nothing of the range does
    now = dt.datetime.combine(DAY1, dt.time(12), JST)
    retention = consumer.Retention(factory, days=30, clock=lambda: now)
    retention()
    with factory() as session:
        after = store.count(session)
        senders = set(session.scalars(select(AnalyticsEvent.sender).distinct()))
    assert before - after == 3 and "old-0" not in senders
    assert metrics.per_day(read(migrated, DAY1, DAY2)) == metrics.per_day(
        before_issue_20(tracker, DAY1, DAY2)
    )


# ---- RabbitMQ: the production profile's source --------------------------------------------


def _rabbitmq() -> tuple[str, str] | None:
    """A throw-away vhost on the machine's RabbitMQ: (url without credentials, vhost)."""
    import socket

    with socket.socket() as sock:
        sock.settimeout(1)
        reachable = sock.connect_ex(("127.0.0.1", 5672)) == 0
    if not reachable or shutil.which("rabbitmqctl") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but RabbitMQ (127.0.0.1:5672, rabbitmqctl) is not available")
        return None
    vhost = f"consent_test_{secrets.token_hex(6)}"
    rabbitmqctl = shutil.which("rabbitmqctl") or "rabbitmqctl"
    permissions = ["set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"]
    for command in (["add_vhost", vhost], permissions):
        subprocess.run([rabbitmqctl, "-q", *command], check=True, capture_output=True, timeout=60)
    return f"amqp://127.0.0.1:5672/{vhost}", vhost


@pytest.fixture
def rabbitmq() -> Iterator[str]:
    found = _rabbitmq()
    if found is None:
        pytest.skip("RabbitMQ is not reachable on 127.0.0.1:5672 (CI runs these always)")
    url, vhost = found
    try:
        yield url
    finally:
        subprocess.run([shutil.which("rabbitmqctl") or "rabbitmqctl", "-q", "delete_vhost", vhost],
                       check=False,
                       capture_output=True, timeout=60)  # fmt: skip


def publish(settings: Settings, events: list[dict]) -> None:
    """Publish as Rasa's Pika broker does: persistent JSON messages to the fanout exchange."""
    import pika

    connection = pika.BlockingConnection(consumer.rabbitmq_parameters(settings))
    channel = connection.channel()
    channel.exchange_declare(settings.rabbitmq_exchange, exchange_type="fanout")
    channel.queue_declare(settings.rabbitmq_queue, durable=True)
    channel.queue_bind(settings.rabbitmq_queue, settings.rabbitmq_exchange)
    channel.confirm_delivery()
    for event in events:
        channel.basic_publish(
            settings.rabbitmq_exchange, "", json.dumps(event).encode(),
            pika.BasicProperties(delivery_mode=2),
        )  # fmt: skip
    connection.close()


def test_the_rabbitmq_consumer_killed_mid_run_loses_and_doubles_nothing(
    settings: Settings, migrated: Engine, rabbitmq: str, tmp_path: Path
) -> None:
    """SIGKILL the consumer process while it works, twice; drop its connection; start it again.

    Unacknowledged messages come back (at-least-once); what was stored before the kill is
    recognised by its key. In the end the console's numbers equal the old computation's.
    """
    tracker = build_random(tmp_path / "rasa.db")[0]
    events = published(tracker)
    configured = settings.model_copy(
        update={"analytics_source": "rabbitmq", "rabbitmq_url": rabbitmq,
                "rabbitmq_queue": "analytics", "analytics_poll_seconds": 0.2}
    )  # fmt: skip
    publish(configured, events)
    env = {
        **os.environ,
        "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "backend"),
        "CONSENT_DATABASE_URL": configured.database_url,
        "CONSENT_API_TOKEN": "x" * 43,
        "ANALYTICS_SOURCE": "rabbitmq",
        "RABBITMQ_URL": rabbitmq,
        "RABBITMQ_QUEUE": "analytics",
        "ANALYTICS_POLL_SECONDS": "0.2",
        # Two events a transaction (and a prefetch of two), so the kills land mid-run: with
        # batches of 10 a consumer on a loaded CI machine once stored all 666 events between the
        # poll that saw its first store and the kill. Two, not one, keeps the path where a kill
        # leaves a batch of several unacknowledged messages (acknowledged with `multiple=True`).
        "ANALYTICS_BATCH_SIZE": "2",
        "STAFF_MASK_WITH_GINZA": "false",
    }
    factory = make_sessionmaker(migrated)
    kept = len([e for e in events if intake.facts(e, mask) is not None])

    def stored() -> int:
        with factory() as session:
            return int(session.scalar(select(func.count()).select_from(AnalyticsEvent)) or 0)

    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen([sys.executable, "-m", "consent_service", "consume"], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip

    for _ in range(2):  # killed as soon as it has stored something, before it is done
        process = start()
        deadline = time.monotonic() + 60
        begun = stored()
        while stored() == begun and time.monotonic() < deadline:
            time.sleep(0.01)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    assert 0 < stored() < kept, "the consumer was killed mid-run"
    publish(configured, events[: len(events) // 3])  # and Rasa's broker resent a third
    process = start()
    try:
        deadline = time.monotonic() + 120
        while stored() < kept and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1.0)  # the resent third: nothing more may arrive
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    assert stored() == kept
    old = before_issue_20(tracker, RANDOM_FIRST_DAY, RANDOM_LAST_DAY)
    new = read(migrated, RANDOM_FIRST_DAY, RANDOM_LAST_DAY)
    filters = week_filters(RANDOM_FIRST_DAY, RANDOM_LAST_DAY)
    assert everything_shown(new, filters) == everything_shown(old, filters)


def test_the_web_app_never_loads_ginza(tmp_path: Path) -> None:
    """Masking happens at intake: serving every page and export loads no spaCy (a new process)."""
    program = f"""
import sys, datetime as dt, re, pyotp
from fastapi.testclient import TestClient
from consent_service.config import Settings
from consent_service.main import create_app
from consent_service.staff import auth
from tests.backend.conftest import Clock
from tests.staff_tracker import build, feed
settings = Settings(_env_file=None, consent_database_url="sqlite+pysqlite:///{tmp_path}/c.db",
                    consent_api_token="x" * 43)
assert settings.staff_mask_with_ginza
now = dt.datetime(2026, 11, 24, 3, 0, tzinfo=dt.UTC)
app = create_app(settings, clock=Clock(now))
with TestClient(app, base_url="https://testserver") as client:
    from consent_service.db import make_engine
    engine = make_engine(settings.database_url)
    feed(engine, build(__import__("pathlib").Path("{tmp_path}") / "rasa.db"))
    with app.state.sessionmaker() as session, session.begin():
        secret = auth.create_user(session, "kanri", "correct horse battery staple", "admin", now,
                                  settings)
    form = client.get("/staff/login").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', form).group(1)
    client.post("/staff/login", data={{"username": "kanri", "password": "correct horse battery "
                "staple", "code": pyotp.TOTP(secret).at(now), "csrf": csrf}})
    for path in ("/staff/", "/staff/intents", "/staff/fallbacks", "/staff/funnel",
                 "/staff/conversations", "/staff/conversations/line-9:0",
                 "/staff/export/fallbacks.csv"):
        assert client.get(path + "?start=2026-11-20&end=2026-11-21").status_code == 200, path
print("spacy" in sys.modules, "ginza" in sys.modules)
"""
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", program],
        env={**os.environ, "PYTHONPATH": f"{root / 'backend'}:{root}"},
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == ["False", "False"]


# ---- poison messages: a malformed event never stalls the consumer ---------------------------

POISON: list[dict[str, Any]] = [
    {"event": "user", "sender_id": "poison", "timestamp": "x"},
    {"event": "user", "sender_id": "poison", "timestamp": float("inf")},
    {"event": "user", "sender_id": "poison", "timestamp": 1.0, "parse_data": "p"},
    {"event": "user", "sender_id": "poison", "timestamp": 2.0, "parse_data": {"intent": [1]}},
    {"event": "user", "sender_id": "poison", "timestamp": 3.0,
     "parse_data": {"intent": {"name": {"n": 1}, "confidence": "high"}}},
    {"event": "user", "sender_id": "poison", "timestamp": 4.0, "text": ["山田太郎"]},
    {"event": "user", "sender_id": "poison", "timestamp": 5.0, "input_channel": {"c": 1}},
    {"event": "bot", "sender_id": "poison", "timestamp": 6.0, "metadata": [1]},
    {"event": "bot", "sender_id": "poison", "timestamp": 7.0, "metadata": {"utter_action": [1]}},
    {"event": "bot", "sender_id": "poison", "timestamp": 8.0, "text": {"t": "山田太郎"}},
    {"event": "action", "sender_id": "poison", "timestamp": 9.0, "name": {"n": "x"}},
    {"event": "slot", "sender_id": "poison", "timestamp": 10.0, "name": ["x"],
     "value": "consulted"},
]  # fmt: skip
# well-formed, but longer than the name columns (PostgreSQL refused the insert)
TOO_LONG: list[dict[str, Any]] = [
    {"event": "action", "sender_id": "long", "timestamp": 11.0, "name": "a" * 300},
    {"event": "bot", "sender_id": "long", "timestamp": 12.0, "text": "x",
     "metadata": {"utter_action": "utter_" + "b" * 300}},
    {"event": "user", "sender_id": "long", "timestamp": 13.0, "text": "x",
     "input_channel": "c" * 40, "parse_data": {"intent": {"name": "i" * 300}}},
]  # fmt: skip


def poisoned(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`events` with every poison shape spread between them."""
    mixed = list(events)
    for n, bad in enumerate(POISON + TOO_LONG):
        mixed.insert(min(len(mixed), 3 + n * 5), bad)
    return mixed


def test_intake_keeps_nothing_of_a_malformed_event_and_never_raises() -> None:
    for bad in POISON:
        assert intake.facts(bad, mask) is None, bad
    for long in TOO_LONG:
        row = intake.facts(long, mask)
        assert row is not None
        assert all(len(row[c] or "") <= 255 for c in ("intent", "action"))
        assert len(row["channel"] or "") <= 32


def test_the_sql_source_moves_on_past_poison_messages(migrated: Engine, tmp_path: Path) -> None:
    events = published(build(tmp_path / "rasa.db"))
    mixed = poisoned(events)
    path = build_broker(tmp_path / "events.db", mixed)
    broker = consumer.broker_engine(f"sqlite+pysqlite:///{path}")
    factory = make_sessionmaker(migrated)
    try:
        for _ in range(len(mixed)):  # never more steps than rows: each step moves on
            if consumer.sql_step(broker, factory, mask, batch=7) == 0:
                break
    finally:
        broker.dispose()
    with factory() as session:
        assert session.get(AnalyticsOffset, consumer.SQL_SOURCE).position == len(mixed)
        senders = set(session.scalars(select(AnalyticsEvent.sender).distinct()))
        assert store.count(session) == len(
            [e for e in events if intake.facts(e, mask) is not None]
        ) + len(TOO_LONG)
    assert "poison" not in senders and "long" in senders


def test_a_row_the_database_refuses_is_skipped_not_retried(migrated: Engine) -> None:
    """Defence in depth behind `facts`: one refused insert does not undo its batch."""
    factory = make_sessionmaker(migrated)
    good = [intake.facts({"event": "action", "sender_id": f"s{n}", "timestamp": float(n),
                          "name": "utter_greet"}, mask) for n in range(3)]  # fmt: skip
    bad = {**good[0], "event_key": "k" * 64, "action": {"not": "a string"}}
    rows = [good[0], bad, good[1], good[2]]
    assert consumer.commit_rows(factory, rows, (consumer.SQL_SOURCE, 42)) == 3  # type: ignore[arg-type]
    with factory() as session:
        assert store.count(session) == 3
        assert store.offset(session, consumer.SQL_SOURCE) == 42


def test_the_rabbitmq_consumer_acks_poison_messages(
    settings: Settings, migrated: Engine, rabbitmq: str, tmp_path: Path
) -> None:
    import threading

    import pika

    events = published(build(tmp_path / "rasa.db"))
    mixed = poisoned(events)
    configured = settings.model_copy(
        update={"analytics_source": "rabbitmq", "rabbitmq_url": rabbitmq,
                "rabbitmq_queue": "analytics", "analytics_poll_seconds": 0.2,
                "analytics_batch_size": 10}
    )  # fmt: skip
    publish(configured, mixed)
    factory = make_sessionmaker(migrated)
    kept = len([e for e in events if intake.facts(e, mask) is not None]) + len(TOO_LONG)
    stop, failed = threading.Event(), []

    def consume() -> None:
        try:
            consumer.rabbitmq_session(configured, factory, mask, stop)
        except Exception as error:  # the test reports it
            failed.append(error)

    worker = threading.Thread(target=consume)
    worker.start()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not failed:
            with factory() as session:
                if store.count(session) >= kept:
                    break
            time.sleep(0.1)
    finally:
        stop.set()
        worker.join(timeout=30)
    assert failed == [] and not worker.is_alive()
    with factory() as session:
        assert store.count(session) == kept
    connection = pika.BlockingConnection(consumer.rabbitmq_parameters(configured))
    try:  # every message acknowledged: none is left to come back
        waiting = connection.channel().queue_declare("analytics", durable=True, passive=True)
        assert waiting.method.message_count == 0
    finally:
        connection.close()


def test_a_slash_text_keeps_only_an_intent_name() -> None:
    def user(text: str, intent: str) -> dict[str, Any]:
        return {"event": "user", "sender_id": "rest-1", "timestamp": 1.0, "text": text,
                "input_channel": "rest",
                "parse_data": {"intent": {"name": intent, "confidence": 1.0}}}  # fmt: skip

    for text, intent in [
        ("/山田太郎 090-1234-5678", "山田太郎 090-1234-5678"),
        ('/x{"n":"山田"}', "x"),
        ("/greet 山田です 090-1234-5678", "greet 山田です 090-1234-5678"),
    ]:
        row = intake.facts(user(text, intent), mask)
        assert row is not None
        kept = json.dumps(row, ensure_ascii=False)
        for secret in ("山田", "090", "1234", "5678"):
            assert secret not in kept, (text, secret)
    assert intake.facts(user('/x{"n":"山田"}', "x"), mask)["text"] == "/x"  # type: ignore[index]
    assert intake.facts(user("/greet 山田", "greet"), mask)["text"] == "/greet"  # type: ignore[index]
    assert intake.button_or_masked("/山田太郎 090-1234-5678", mask) == "［伏せ字］"
