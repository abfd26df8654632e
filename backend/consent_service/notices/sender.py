"""The notice sender: `python -m consent_service send-notices [--once]` (docs/notices.md).

The only component that holds NOTICE_PRIVATE_KEY. Each pass:

1. Outside the quiet hours (NOTICE_QUIET_HOURS, JST) only: every approved notice whose time has
   come is planned once, in one transaction: refused (`too_late`) when its time is more than
   NOTICE_MAX_DELAY_HOURS past, or (`monthly_limit`) when its topic already had
   `max_per_month` notices this month (JST); otherwise its recipients (subjects with an active
   LINE subscription on the topic and a sealed recipient) are cut into batches of at most
   NOTICE_BATCH_SIZE, each with its own uuid4 `X-Line-Retry-Key`, and the notice is `sending`.
2. Every pending batch due is sent: the time of its first attempt is committed, the sealed ids
   of its subjects still subscribed are opened (in memory only), one
   `POST /v2/bot/message/multicast` with the batch's retry key. 200, or 409 (LINE already
   accepted this key), means sent; 429 backs off (Retry-After, else exponentially) and 5xx,
   timeouts and connection errors try again later, always with the same key, so LINE never
   delivers a batch twice, even after a crash or restart. LINE keeps a retry key 24 hours, so a
   batch still pending 24 hours after its first attempt fails (`retry_window_passed`) rather
   than risk a second delivery. A 429 for the used-up monthly quota fails the batch at once
   (`monthly_quota`); 401/403 (a wrong access token) keeps it pending and logs an error; another
   4xx fails the batch with its detail.
3. A `sending` notice without pending batches is `sent` (access log `notice_sent`), or, when
   LINE accepted none of its batches, `refused` with `line_rejected` (access log
   `notice_failed`).

User ids are never logged or stored; only subject pseudonyms are (in the batches).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy import func, or_, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from consent_service.catalog.notice_topics import read_topics, topics_path
from consent_service.config import InsecureSettings, SenderSecrets, Settings
from consent_service.models import StaffAccessLog
from consent_service.notices import seal
from consent_service.notices.quiet_hours import JST, in_quiet_hours, next_allowed
from consent_service.notices.tables import (
    Notice,
    NoticeBatch,
    NoticeRecipient,
    NoticeSubscription,
    NoticeTopic,
)

log = logging.getLogger("consent_service.notices.sender")

SENDER = "sender"  # the access log's username of this component
MULTICAST_PATH = "/v2/bot/message/multicast"
MAX_BACKOFF_SECONDS = 600
# After a 401/403 (a configuration error) the sender waits at least this long.
AUTH_BACKOFF_SECONDS = 60
DETAIL_CHARS = 300
# LINE keeps a retry key this long: a batch is not retried once this has passed since its first
# attempt (a later retry would be a new request to LINE and could deliver twice).
RETRY_WINDOW = dt.timedelta(hours=24)
# LINE's 429 message when the channel's monthly message quota is used up.
MONTHLY_QUOTA_MESSAGE = "monthly limit"


@dataclass(frozen=True)
class SenderConfig:
    """What the sender needs, checked once at start (fail fast)."""

    private_key: str
    access_token: str
    base_url: str
    batch_size: int
    poll_seconds: float
    quiet_hours: str
    timeout_seconds: float
    stop_line_ja: str
    max_delay: dt.timedelta

    @classmethod
    def from_settings(cls, settings: Settings, secrets: SenderSecrets) -> SenderConfig:
        """The sender's configuration.

        Args:
            settings: The service's settings.
            secrets: NOTICE_PRIVATE_KEY (read by `send-notices` alone).

        Returns:
            The configuration.

        Raises:
            InsecureSettings: Without NOTICE_PRIVATE_KEY (or with a malformed one), or without
                LINE_CHANNEL_ACCESS_TOKEN.
        """
        private_key = secrets.private_key()
        try:
            seal.public_key_of(private_key)
        except (seal.SealError, ValueError) as error:
            raise InsecureSettings(
                "NOTICE_PRIVATE_KEY is not a base64url X25519 key of 32 bytes."
            ) from error
        token = settings.line_channel_access_token
        if token is None or not token.get_secret_value():
            raise InsecureSettings(
                "LINE_CHANNEL_ACCESS_TOKEN is not set: the sender cannot call LINE."
            )
        topics = read_topics(topics_path(settings.consent_catalog_path))
        return cls(
            private_key=private_key,
            access_token=token.get_secret_value(),
            base_url=settings.line_api_base_url.rstrip("/"),
            batch_size=settings.notice_batch_size,
            poll_seconds=settings.notice_poll_seconds,
            quiet_hours=settings.notice_quiet_hours,
            timeout_seconds=settings.notice_http_timeout_seconds,
            stop_line_ja=topics.stop_line_ja,
            max_delay=dt.timedelta(hours=settings.notice_max_delay_hours),
        )


@dataclass
class SenderState:
    """What one sender remembers between passes: no call before `paused_until`.

    LINE's rate limit (429) and a refused access token (401/403) apply to all calls.
    """

    paused_until: dt.datetime | None = None
    calls: int = field(default=0)


def message_text(notice: Notice, stop_line_ja: str) -> str:
    """The LINE text of a notice: the text, the link (if any) and the stop line."""
    body = notice.text_ja + (f"\n{notice.link_url}" if notice.link_url else "")
    return f"{body}\n\n{stop_line_ja}"


def _month_bounds(now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    local = now.astimezone(JST)
    start = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    end = (start + dt.timedelta(days=32)).replace(day=1)
    return start.astimezone(dt.UTC), end.astimezone(dt.UTC)


def _sent_this_month(session: Session, topic_id: str, notice_id: str, now: dt.datetime) -> int:
    start, end = _month_bounds(now)
    when = func.coalesce(Notice.sent_at, Notice.scheduled_at, Notice.approved_at)
    return int(
        session.execute(
            select(func.count())
            .select_from(Notice)
            .where(
                Notice.topic_id == topic_id,
                Notice.notice_id != notice_id,
                Notice.status.in_(("sending", "sent")),
                when >= start,
                when < end,
            )
        ).scalar_one()
    )


def _line_subjects(session: Session, topic_id: str) -> list[str]:
    """Subjects with an active LINE subscription on the topic and a sealed recipient."""
    return list(
        session.execute(
            select(NoticeSubscription.subject_id)
            .join(NoticeRecipient, NoticeRecipient.subject_id == NoticeSubscription.subject_id)
            .where(
                NoticeSubscription.topic_id == topic_id,
                NoticeSubscription.status == "active",
                NoticeSubscription.channel == "line",
            )
            .order_by(NoticeSubscription.subject_id)
        ).scalars()
    )


def _chunks(items: list[str], size: int) -> Iterable[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def plan_due(factory: sessionmaker[Session], config: SenderConfig, now: dt.datetime) -> int:
    """Plan every approved notice whose time has come (each in its own transaction).

    Args:
        factory: Session factory.
        config: Batch size.
        now: The current time (UTC).

    Returns:
        How many notices were planned or refused.
    """
    return sum(_plan_one(factory, config, notice_id, now) for notice_id in _due(factory, now))


def _due(factory: sessionmaker[Session], now: dt.datetime) -> list[str]:
    with factory() as session:
        due = list(
            session.execute(
                select(Notice.notice_id)
                .where(
                    Notice.status == "approved",
                    Notice.approved_by.is_not(None),
                    or_(Notice.scheduled_at.is_(None), Notice.scheduled_at <= now),
                )
                .order_by(Notice.scheduled_at, Notice.notice_id)
            ).scalars()
        )
    return due


def _refuse(session: Session, notice: Notice, refusal: str, now: dt.datetime) -> None:
    notice.status = "refused"
    notice.refusal = refusal
    session.add(_access(now, "notice_refused", notice.notice_id))
    log.warning("Notice %s refused: %s", notice.notice_id, refusal)


def _plan_one(
    factory: sessionmaker[Session], config: SenderConfig, notice_id: str, now: dt.datetime
) -> int:
    """Plan (or refuse) one due notice in one transaction; 1 when it was handled now."""
    with factory() as session, session.begin():
        notice = session.execute(
            select(Notice).where(Notice.notice_id == notice_id).with_for_update()
        ).scalar_one()
        if notice.status != "approved":
            return 0  # cancelled or planned by another sender meanwhile
        due_at = notice.scheduled_at or notice.approved_at
        if due_at is not None and now - due_at > config.max_delay:
            # The sender was away (or stopped) too long: a dated notice would go out stale.
            _refuse(session, notice, "too_late", now)
            return 1
        topic = session.get(NoticeTopic, notice.topic_id)
        limit = topic.max_per_month if topic else 0
        if _sent_this_month(session, notice.topic_id, notice.notice_id, now) >= limit:
            _refuse(session, notice, "monthly_limit", now)
            return 1
        subjects = _line_subjects(session, notice.topic_id)
        for number, chunk in enumerate(_chunks(subjects, config.batch_size)):
            session.add(
                NoticeBatch(
                    notice_id=notice.notice_id,
                    batch_no=number,
                    retry_key=str(uuid.uuid4()),
                    subject_ids=chunk,
                    status="pending",
                    attempts=0,
                )
            )
        notice.status = "sending"
        notice.recipients_planned = len(subjects)
        notice.recipients_sent = 0
        log.info("Notice %s planned: %d LINE recipients", notice.notice_id, len(subjects))
        return 1


def _access(now: dt.datetime, action: str, notice_id: str) -> StaffAccessLog:
    return StaffAccessLog(at=now, username=SENDER, action=action, target=notice_id)


@dataclass(frozen=True)
class _Call:
    """A batch ready to send: its key, the LINE ids (memory only) and the text."""

    batch_id: int
    notice_id: str
    batch_no: int
    retry_key: str
    user_ids: list[str]
    text: str
    unopened: int


def _prepare(session: Session, batch: NoticeBatch, config: SenderConfig) -> _Call:
    notice = session.get(Notice, batch.notice_id)
    assert notice is not None
    still = set(
        session.execute(
            select(NoticeSubscription.subject_id).where(
                NoticeSubscription.subject_id.in_(batch.subject_ids),
                NoticeSubscription.topic_id == notice.topic_id,
                NoticeSubscription.status == "active",
                NoticeSubscription.channel == "line",
            )
        ).scalars()
    )
    sealed = session.execute(
        select(NoticeRecipient.sealed_user_id).where(NoticeRecipient.subject_id.in_(sorted(still)))
    ).scalars()
    user_ids: dict[str, None] = {}
    unopened = 0
    for value in sealed:
        try:
            user_ids[seal.open_sealed(value, config.private_key)] = None
        except seal.SealError:
            unopened += 1
    return _Call(
        batch.id,
        batch.notice_id,
        batch.batch_no,
        batch.retry_key,
        list(user_ids),
        message_text(notice, config.stop_line_ja),
        unopened,
    )


def _backoff(attempts: int) -> dt.timedelta:
    return dt.timedelta(seconds=min(2 ** max(attempts, 1), MAX_BACKOFF_SECONDS))


def _retry_after(response: httpx.Response) -> dt.timedelta | None:
    value = response.headers.get("Retry-After", "").strip()
    if value.isdigit():
        return dt.timedelta(seconds=min(int(value), MAX_BACKOFF_SECONDS))
    return None


def _error_detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return ""
    message = body.get("message", "") if isinstance(body, dict) else ""
    return str(message)[:DETAIL_CHARS]


def _post(http: httpx.Client, config: SenderConfig, call: _Call) -> httpx.Response | str:
    """One multicast call; an error string for a timeout or a connection failure."""
    try:
        return http.post(
            config.base_url + MULTICAST_PATH,
            headers={
                "Authorization": f"Bearer {config.access_token}",
                "X-Line-Retry-Key": call.retry_key,
            },
            json={"to": call.user_ids, "messages": [{"type": "text", "text": call.text}]},
        )
    except httpx.TimeoutException:
        return "timeout"
    except httpx.TransportError as error:
        return type(error).__name__


def _record(
    session: Session,
    call: _Call,
    outcome: httpx.Response | str,
    now: dt.datetime,
    state: SenderState,
) -> str:
    """Write a call's outcome to its batch (and notice); returns the batch's new status."""
    batch = session.execute(
        select(NoticeBatch).where(NoticeBatch.id == call.batch_id).with_for_update()
    ).scalar_one()
    if batch.status != "pending":
        return batch.status
    batch.attempts += 1
    status = outcome if isinstance(outcome, str) else outcome.status_code
    batch.last_http_status = None if isinstance(outcome, str) else outcome.status_code
    if isinstance(outcome, httpx.Response) and outcome.status_code in (200, 409):
        batch.status = "sent"
        batch.sent_at = now
        batch.next_attempt_at = None
        batch.detail = {
            "recipients": len(call.user_ids),
            "unopened": call.unopened,
            "accepted_before": outcome.status_code == 409,
        }
        notice = session.get(Notice, call.notice_id)
        assert notice is not None
        notice.recipients_sent = (notice.recipients_sent or 0) + len(call.user_ids)
    elif (
        isinstance(outcome, httpx.Response)
        and outcome.status_code == 429
        and MONTHLY_QUOTA_MESSAGE in _error_detail(outcome).lower()
    ):
        # The channel's messages for this month are used up: no retry helps before next month.
        batch.status = "failed"
        batch.next_attempt_at = None
        batch.detail = {
            "reason": "monthly_quota",
            "status": 429,
            "message": _error_detail(outcome),
        }
        log.error("LINE's monthly message quota is used up: notice %s not sent", call.notice_id)
    elif isinstance(outcome, httpx.Response) and outcome.status_code == 429:
        wait = _retry_after(outcome) or _backoff(batch.attempts)
        batch.next_attempt_at = now + wait
        state.paused_until = now + wait
        batch.detail = {"last_error": "rate_limited"}
    elif isinstance(outcome, httpx.Response) and outcome.status_code in (401, 403):
        # A configuration error (the channel access token): kept pending, tried again later
        # with the same key until the token is fixed or the retry window has passed.
        wait = max(_backoff(batch.attempts), dt.timedelta(seconds=AUTH_BACKOFF_SECONDS))
        batch.next_attempt_at = now + wait
        state.paused_until = now + wait
        batch.detail = {"last_error": str(outcome.status_code)}
        log.error(
            "LINE refused the channel access token (HTTP %d): check LINE_CHANNEL_ACCESS_TOKEN; "
            "the batches stay pending and are tried again",
            outcome.status_code,
        )
    elif isinstance(outcome, str) or outcome.status_code >= 500:
        batch.next_attempt_at = now + _backoff(batch.attempts)
        batch.detail = {"last_error": str(status)}
    else:
        batch.status = "failed"
        batch.next_attempt_at = None
        batch.detail = {"status": outcome.status_code, "message": _error_detail(outcome)}
    log.info(
        "Notice %s batch %d: %s (%d recipients, attempt %d) -> %s",
        call.notice_id,
        call.batch_no,
        status,
        len(call.user_ids),
        batch.attempts,
        batch.status,
    )
    return batch.status


def _skip_empty(batch: NoticeBatch, call: _Call, now: dt.datetime) -> None:
    batch.status = "sent"
    batch.sent_at = now
    batch.detail = {"recipients": 0, "unopened": call.unopened, "accepted_before": False}


def _give_up(batch: NoticeBatch) -> None:
    """Fail a batch whose retry key LINE may have forgotten (24 hours after its first attempt)."""
    batch.status = "failed"
    batch.next_attempt_at = None
    batch.detail = {"reason": "retry_window_passed", "attempts": batch.attempts}
    log.warning(
        "Notice %s batch %d given up: no answer from LINE within %s of its first attempt",
        batch.notice_id,
        batch.batch_no,
        RETRY_WINDOW,
    )


def _ready(
    factory: sessionmaker[Session], batch_id: int, config: SenderConfig, now: dt.datetime
) -> _Call | None:
    """The call of a pending batch, its first attempt committed before it is made.

    A batch past its retry window is failed, and one without a reachable recipient is done,
    without a call (None).
    """
    with factory() as session, session.begin():
        batch = session.execute(
            select(NoticeBatch).where(NoticeBatch.id == batch_id).with_for_update()
        ).scalar_one_or_none()
        if batch is None or batch.status != "pending":
            return None
        if batch.first_attempt_at is not None and now >= batch.first_attempt_at + RETRY_WINDOW:
            _give_up(batch)
            return None
        call = _prepare(session, batch, config)
        if not call.user_ids:
            _skip_empty(batch, call, now)
            return None
        if batch.first_attempt_at is None:
            batch.first_attempt_at = now
        return call


def send_pending(
    factory: sessionmaker[Session],
    config: SenderConfig,
    http: httpx.Client,
    now: Callable[[], dt.datetime],
    state: SenderState,
    stop: threading.Event | None = None,
) -> int:
    """Send every pending batch that is due, one call each, outside the quiet hours.

    Args:
        factory: Session factory.
        config: The sender's configuration.
        http: The HTTP client (with its timeouts).
        now: The clock.
        state: What this sender remembers (LINE's rate limit, a refused token).
        stop: Set to stop after the current call.

    Returns:
        How many calls were made.
    """
    with factory() as session:
        due = list(
            session.execute(
                select(NoticeBatch.id)
                .join(Notice, Notice.notice_id == NoticeBatch.notice_id)
                .where(
                    NoticeBatch.status == "pending",
                    Notice.status == "sending",
                    or_(
                        NoticeBatch.next_attempt_at.is_(None), NoticeBatch.next_attempt_at <= now()
                    ),
                )
                .order_by(Notice.scheduled_at, NoticeBatch.notice_id, NoticeBatch.batch_no)
            ).scalars()
        )
    calls = 0
    for batch_id in due:
        current = now()
        if (stop is not None and stop.is_set()) or in_quiet_hours(current, config.quiet_hours):
            break
        if state.paused_until is not None and current < state.paused_until:
            break
        call = _ready(factory, batch_id, config, current)
        if call is None:
            continue
        outcome = _post(http, config, call)
        calls += 1
        state.calls += 1
        answered = now()
        with factory() as session, session.begin():
            _record(session, call, outcome, answered, state)
        if state.paused_until is not None and answered < state.paused_until:
            break
    return calls


def complete(factory: sessionmaker[Session], now: dt.datetime) -> int:
    """Close `sending` notices without pending batches.

    `sent` (access log `notice_sent`) when LINE accepted a batch, or there was none (no LINE
    recipient: web chat residents still see it); `refused` with `line_rejected` (access log
    `notice_failed`) when every batch failed.

    Args:
        factory: Session factory.
        now: The current time (UTC).

    Returns:
        How many notices were completed.
    """
    pending = select(NoticeBatch.notice_id).where(NoticeBatch.status == "pending")
    with factory() as session, session.begin():
        done = list(
            session.execute(
                select(Notice)
                .where(Notice.status == "sending", Notice.notice_id.not_in(pending))
                .with_for_update()
            ).scalars()
        )
        outcomes: dict[str, set[str]] = {}
        for notice_id, status in session.execute(
            select(NoticeBatch.notice_id, NoticeBatch.status).where(
                NoticeBatch.notice_id.in_([n.notice_id for n in done])
            )
        ).tuples():
            outcomes.setdefault(notice_id, set()).add(status)
        for notice in done:
            statuses = outcomes.get(notice.notice_id, set())
            if statuses and "sent" not in statuses:
                notice.status = "refused"
                notice.refusal = "line_rejected"
                session.add(_access(now, "notice_failed", notice.notice_id))
                log.error("Notice %s not sent: LINE accepted none of its batches", notice.notice_id)
                continue
            notice.status = "sent"
            notice.sent_at = now
            session.add(_access(now, "notice_sent", notice.notice_id))
            log.info(
                "Notice %s sent to %d LINE recipients", notice.notice_id, notice.recipients_sent
            )
    return len(done)


def run_once(
    factory: sessionmaker[Session],
    config: SenderConfig,
    http: httpx.Client,
    now: Callable[[], dt.datetime],
    state: SenderState,
    stop: threading.Event | None = None,
) -> dict[str, Any]:
    """One pass: plan what is due, send what is pending, complete what is done.

    Nothing happens inside the quiet hours (no planning, no call).

    Args:
        factory: Session factory.
        config: The sender's configuration.
        http: The HTTP client.
        now: The clock (tests inject one).
        state: What this sender remembers between passes.
        stop: Set to stop after the current call.

    Returns:
        Counts of the pass (`planned`, `calls`, `completed`) and `quiet` (True inside the quiet
        hours).
    """
    current = now()
    if in_quiet_hours(current, config.quiet_hours):
        return {"quiet": True, "planned": 0, "calls": 0, "completed": 0}
    planned = plan_due(factory, config, current)
    calls = send_pending(factory, config, http, now, state, stop)
    completed = complete(factory, now())
    return {"quiet": False, "planned": planned, "calls": calls, "completed": completed}


def _wait_seconds(config: SenderConfig, state: SenderState, current: dt.datetime) -> float:
    wait = config.poll_seconds
    if in_quiet_hours(current, config.quiet_hours):
        until = next_allowed(current, config.quiet_hours)
        wait = max(wait, min((until - current).total_seconds(), 600.0))
    if state.paused_until is not None and state.paused_until > current:
        wait = max(wait, (state.paused_until - current).total_seconds())
    return wait


def run(
    factory: sessionmaker[Session],
    config: SenderConfig,
    stop: threading.Event,
    now: Callable[[], dt.datetime],
    *,
    once: bool = False,
    http: httpx.Client | None = None,
) -> None:
    """Send notices until `stop` is set (or one pass with `once`).

    Args:
        factory: Session factory.
        config: The sender's configuration.
        stop: Set (SIGTERM, Ctrl-C) to stop after the current call.
        now: The clock.
        once: One pass, then return.
        http: An HTTP client to use (default: one with the configured timeout).
    """
    client = http or httpx.Client(timeout=httpx.Timeout(config.timeout_seconds))
    state = SenderState()
    try:
        while not stop.is_set():
            try:
                result = run_once(factory, config, client, now, state, stop)
            except OperationalError as error:
                # The database is away (restarting, network): what was committed stays planned
                # with its keys; try again after the poll interval. Only the error's class is
                # logged (its message would carry the statement and its parameters).
                log.warning("The database does not answer (%s); trying again", type(error).__name__)
                if once:
                    raise
                stop.wait(config.poll_seconds)
                continue
            if result["quiet"]:
                log.info(
                    "Quiet hours: no notice is sent until %s",
                    next_allowed(now(), config.quiet_hours).isoformat(),
                )
            if once:
                return
            stop.wait(_wait_seconds(config, state, now()))
    finally:
        if http is None:
            client.close()
