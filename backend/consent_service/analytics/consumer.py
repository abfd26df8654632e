"""`python -m consent_service consume`: Rasa's events into the analytics tables.

Two sources, chosen by ANALYTICS_SOURCE:

- `sql` (`make run`): the `events` table of Rasa's SQL event broker (`endpoints.yml`), read by
  its id after the offset stored in `analytics_offsets`; the offset moves in the same
  transaction as the facts, so a crash loses or repeats nothing. One Rasa process writes it.
- `rabbitmq` (the production profile): the durable queue of Rasa's Pika event broker
  (`endpoints.prod.yml`), bound to its fanout exchange. Messages are acknowledged only after
  the transaction holding their facts commits; a message delivered again after a crash or a
  dropped connection is recognised by its `event_key` and stored once.

Each event is masked once, here (`staff.masking.mask`, with GiNZA when STAFF_MASK_WITH_GINZA),
and events older than ANALYTICS_RETENTION_DAYS are deleted once an hour, with the staff's labels
of them (`staff.labels.purge`). Nothing of an event
(text, sender id) is ever logged: only counts.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from consent_service.analytics import intake, store
from consent_service.config import Settings
from consent_service.staff import labels
from consent_service.staff.masking import MARK, mask

log = logging.getLogger("consent_service.analytics")

SQL_SOURCE = "sql_broker"
BATCH = 200
RETENTION_EVERY = dt.timedelta(hours=1)
RECONNECT_DELAYS = (0.5, 1.0, 2.0, 5.0)

Masker = Callable[[str], str]
Clock = Callable[[], dt.datetime]


def masker(settings: Settings) -> Masker:
    """The masking function: patterns, plus GiNZA's entities when STAFF_MASK_WITH_GINZA.

    Args:
        settings: The service's settings.

    Returns:
        A function from a text to its masked form (GiNZA loaded now, once).
    """
    if not settings.staff_mask_with_ginza:
        return lambda value: mask(value)
    import spacy

    nlp = spacy.load("ja_ginza")
    return lambda value: mask(value, nlp)


def never_failing(hide: Masker) -> Masker:
    """`hide`, but a text it cannot mask becomes one mark instead of stopping the consumer.

    A message that always failed would otherwise come back for ever (a poison message) and
    hold up every event behind it.
    """

    def safe(value: str) -> str:
        try:
            return hide(value)
        except Exception:  # any failure of the masking pipeline: hide the whole text
            log.warning("Masking failed; the text is stored as one mark")
            return MARK

    return safe


def parse(body: bytes | str) -> dict[str, Any] | None:
    """A published event from its JSON, or None when it is not one (logged without content)."""
    try:
        event = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        log.warning("Skipped a message that is not JSON (%d bytes)", len(body))
        return None
    if not isinstance(event, dict):
        log.warning("Skipped a message that is not a JSON object")
        return None
    return event


def store_events(
    factory: sessionmaker[Session],
    events: list[dict[str, Any]],
    hide: Masker,
    position: tuple[str, int] | None = None,
) -> int:
    """Mask and store `events` in one transaction (with the source's new offset, if any).

    Args:
        factory: Sessions of the consent database.
        events: Events as published.
        hide: The masking function.
        position: (source, last position read) to store with the facts.

    Returns:
        How many events were new.
    """
    safe = never_failing(hide)
    rows: list[dict[str, Any]] = []
    malformed = 0
    for event in events:
        row = intake.facts(event, safe)
        if row is not None:
            rows.append(row)
        elif event.get("event") in intake.KEPT and not intake.well_formed(event):
            malformed += 1
    if malformed:
        log.warning("Skipped %d events of a shape Rasa does not publish", malformed)
    return commit_rows(factory, rows, position)


def commit_rows(
    factory: sessionmaker[Session],
    rows: list[dict[str, Any]],
    position: tuple[str, int] | None = None,
) -> int:
    """Store `rows` (and the source's new offset) in one transaction; skip rows refused.

    When the database refuses the batch for its content (not for a lost connection), it is
    written again row by row, each in a savepoint, and the rows refused are left out (counted
    in the log, never shown): otherwise the batch, its offset or its acknowledgement would never
    move on.

    Args:
        factory: Sessions of the consent database.
        rows: Columns of `AnalyticsEvent` (from `intake.facts`).
        position: (source, last position read) to store with the facts.

    Returns:
        How many rows were new.

    Raises:
        OperationalError: The database is unreachable (the caller reconnects and retries).
    """
    try:
        with factory() as session, session.begin():
            added = store.write(session, rows)
            if position is not None:
                store.set_offset(session, *position)
        return added
    except OperationalError:
        raise
    except SQLAlchemyError:
        pass
    added = refused = 0
    with factory() as session, session.begin():
        for row in rows:
            try:
                with session.begin_nested():
                    added += store.write(session, [row])
            except OperationalError:
                raise
            except SQLAlchemyError:
                refused += 1
        if position is not None:
            store.set_offset(session, *position)
    log.warning("Skipped %d events the database refused", refused)
    return added


def broker_engine(url: str) -> Engine:
    """The SQL event broker's database, opened read-only (SQLite with mode=ro)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return create_engine(
            "sqlite+pysqlite:///file:" + (parsed.database or "") + "?mode=ro&uri=true",
            connect_args={"check_same_thread": False},
        )
    return create_engine(url, execution_options={"postgresql_readonly": True}, pool_pre_ping=True)


def sql_step(
    broker: Engine, factory: sessionmaker[Session], hide: Masker, batch: int = BATCH
) -> int:
    """Read the next rows of the SQL broker's table after the stored offset and store them.

    Args:
        broker: The SQL event broker's database.
        factory: Sessions of the consent database.
        hide: The masking function.
        batch: At most this many rows.

    Returns:
        How many rows were read (0: nothing new, or no table yet).
    """
    with factory() as session:
        after = store.offset(session, SQL_SOURCE)
    query = text("SELECT id, data FROM events WHERE id > :after ORDER BY id LIMIT :batch")
    try:
        with broker.connect() as connection:
            rows = connection.execute(query, {"after": after, "batch": batch}).all()
    except SQLAlchemyError:  # no broker table yet: Rasa has not started
        return 0
    if not rows:
        return 0
    events = [e for e in (parse(row[1] or "") for row in rows) if e is not None]
    store_events(factory, events, hide, (SQL_SOURCE, int(rows[-1][0])))
    return len(rows)


def rabbitmq_parameters(settings: Settings) -> Any:
    """Pika's connection parameters from RABBITMQ_URL and the credentials."""
    import pika  # type: ignore[import-untyped]

    parts = urlsplit(settings.rabbitmq_url)
    credentials = (
        quote(settings.rabbitmq_username, safe="")
        + ":"
        + quote(settings.rabbitmq_password.get_secret_value(), safe="")
    )
    port = parts.port or settings.rabbitmq_port
    netloc = f"{credentials}@{parts.hostname or '127.0.0.1'}:{port}"
    url = urlunsplit((parts.scheme or "amqp", netloc, parts.path or "/%2F", "", ""))
    parameters = pika.URLParameters(url)
    parameters.heartbeat = 30
    parameters.blocked_connection_timeout = 30
    parameters.socket_timeout = 10
    parameters.connection_attempts = 1
    return parameters


def rabbitmq_session(
    settings: Settings,
    factory: sessionmaker[Session],
    hide: Masker,
    stop: threading.Event,
    tick: Callable[[], None] = lambda: None,
) -> None:
    """Consume the queue until `stop` is set (returns) or the connection fails (raises).

    Messages are taken in batches (at most ANALYTICS_BATCH_SIZE, or what arrived within
    ANALYTICS_POLL_SECONDS) and acknowledged together after their transaction commits.

    Args:
        settings: RabbitMQ's address, queue and exchange.
        factory: Sessions of the consent database.
        hide: The masking function.
        stop: Set to end consuming.
        tick: Called between batches (retention).
    """
    import pika

    connection = pika.BlockingConnection(rabbitmq_parameters(settings))
    try:
        channel = connection.channel()
        # The same declarations as Rasa's Pika broker (aio_pika's defaults: a non-durable
        # fanout exchange, a durable queue bound to it), so either side may come up first.
        channel.exchange_declare(settings.rabbitmq_exchange, exchange_type="fanout")
        channel.queue_declare(settings.rabbitmq_queue, durable=True)
        channel.queue_bind(settings.rabbitmq_queue, settings.rabbitmq_exchange)
        batch = settings.analytics_batch_size
        channel.basic_qos(prefetch_count=batch)
        log.info("Consuming Rasa's events from RabbitMQ")
        pending: list[tuple[int, bytes]] = []

        def flush() -> None:
            if not pending:
                return
            events = [e for e in (parse(body) for _, body in pending) if e is not None]
            added = store_events(factory, events, hide)
            channel.basic_ack(pending[-1][0], multiple=True)
            log.info("Stored %d new of %d events", added, len(pending))
            pending.clear()

        for method, _properties, body in channel.consume(
            settings.rabbitmq_queue, inactivity_timeout=settings.analytics_poll_seconds
        ):
            if method is not None:
                pending.append((method.delivery_tag, body))
                if len(pending) < batch:
                    continue
            flush()
            tick()
            if stop.is_set():
                break
        flush()
    finally:
        if connection.is_open:
            connection.close()


class Retention:
    """Deletes events older than ANALYTICS_RETENTION_DAYS, and their labels, at most hourly."""

    def __init__(self, factory: sessionmaker[Session], days: int, clock: Clock) -> None:
        """Nothing runs yet."""
        self.factory, self.days, self.clock = factory, days, clock
        self.last: dt.datetime | None = None

    def __call__(self) -> None:
        """Purge when due."""
        now = self.clock()
        if self.last is not None and now - self.last < RETENTION_EVERY:
            return
        self.last = now
        cutoff = now - dt.timedelta(days=self.days)
        with self.factory() as session, session.begin():
            deleted = store.purge(session, cutoff)
            unlabelled = labels.purge(session, cutoff)
        if deleted or unlabelled:
            log.info(
                "Deleted %d analytics events and %d labels older than %d days",
                deleted, unlabelled, self.days,
            )  # fmt: skip


def run(
    settings: Settings,
    factory: sessionmaker[Session],
    stop: threading.Event,
    clock: Clock,
    hide: Masker | None = None,
) -> None:
    """Consume the configured source until `stop` is set, reconnecting after failures.

    Args:
        settings: ANALYTICS_SOURCE and the source's address.
        factory: Sessions of the consent database.
        stop: Set (by SIGTERM/SIGINT) to end.
        clock: The time, for retention.
        hide: The masking function (default: `masker(settings)`).
    """
    hide = hide or masker(settings)
    retention = Retention(factory, settings.analytics_retention_days, clock)
    failures = 0
    broker = (
        broker_engine(settings.events_database_url) if settings.analytics_source == "sql" else None
    )
    try:
        while not stop.is_set():
            try:
                if broker is not None:
                    retention()
                    if sql_step(broker, factory, hide, settings.analytics_batch_size) == 0:
                        stop.wait(settings.analytics_poll_seconds)
                else:
                    rabbitmq_session(settings, factory, hide, stop, retention)
                failures = 0
            except Exception as error:  # any failure: reconnect, never exit
                delay = RECONNECT_DELAYS[min(failures, len(RECONNECT_DELAYS) - 1)]
                failures += 1
                log.warning("Consumer failed (%s); again in %.1f s", type(error).__name__, delay)
                stop.wait(delay)
    finally:
        if broker is not None:
            broker.dispose()
