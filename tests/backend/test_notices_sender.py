"""The notice sender against a fake LINE platform started by the test (issue 17).

The fake records every multicast call, checks it looks like LINE's (path, token, retry key,
at most 500 recipients), delivers a retry key once (409 for a key it already accepted, as LINE
does), and can answer 429 with Retry-After, 5xx or 400, or accept and drop the connection.
On SQLite and the real PostgreSQL.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from consent_service import __main__ as cli
from consent_service.config import InsecureSettings, SenderSecrets, Settings
from consent_service.db import make_sessionmaker
from consent_service.models import StaffAccessLog
from consent_service.notices import seal, sender
from consent_service.notices.tables import Notice, NoticeBatch
from tests.backend.conftest import AUTH, START, Clock, subject

PRIVATE, PUBLIC = seal.generate_keypair()
ACCESS_TOKEN = "line-channel-access-token"
JST = dt.timezone(dt.timedelta(hours=9))
LINK = "https://www.city.funabashi.lg.jp/kenko/kenshin.html"


def line_id(name: str) -> str:
    return "U" + uuid.uuid5(uuid.NAMESPACE_DNS, name).hex


@dataclass
class FakeLine:
    """What the fake platform saw and what it answers next."""

    calls: list[dict[str, Any]] = field(default_factory=list)
    accepted: dict[str, list[str]] = field(default_factory=dict)
    script: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    errors: list[str] = field(default_factory=list)
    url: str = ""

    def deliveries(self) -> Counter[str]:
        """How often each user received a notice (once per accepted retry key)."""
        return Counter(user for to in self.accepted.values() for user in to)

    def keys(self) -> list[str]:
        return [c["retry_key"] for c in self.calls]


def _handler(fake: FakeLine) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_args: Any) -> None:  # quiet, and never any user id
            pass

        def _answer(self, status: int, body: dict[str, Any], **headers: str) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in headers.items():
                self.send_header(name.replace("_", "-"), value)
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            key = self.headers.get("X-Line-Retry-Key", "")
            try:
                assert self.path == "/v2/bot/message/multicast"
                assert self.headers["Authorization"] == f"Bearer {ACCESS_TOKEN}"
                assert str(uuid.UUID(key)) == key
                assert 1 <= len(body["to"]) <= 500
                assert len(set(body["to"])) == len(body["to"])
                assert body["messages"][0]["type"] == "text"
                assert len(body["messages"][0]["text"]) <= 5000
            except (AssertionError, ValueError, KeyError) as error:
                fake.errors.append(repr(error))
                self._answer(400, {"message": "not a multicast request"})
                return
            with fake.lock:
                fake.calls.append(
                    {"retry_key": key, "to": body["to"], "text": body["messages"][0]["text"]}
                )
                action = fake.script.pop(0) if fake.script else "ok"
                if action == "ok" and key in fake.accepted:
                    action = "conflict"
                if action in ("ok", "drop"):
                    fake.accepted[key] = list(body["to"])
            if action == "ok":
                self._answer(200, {})
            elif action == "conflict":
                self._answer(409, {"message": "The retry key is already accepted"})
            elif action == "429":
                self._answer(429, {"message": "Too Many Requests"}, Retry_After="30")
            elif action == "500":
                self._answer(500, {"message": "Internal Server Error"})
            elif action == "400":
                self._answer(400, {"message": "The request body has 1 error(s)"})
            elif action == "quota":  # LINE's answer once the month's messages are used up
                self._answer(429, {"message": "You have reached your monthly limit."})
            elif action == "401":
                self._answer(
                    401,
                    {
                        "message": "Authentication failed. Confirm that the access "
                        "token in the authorization header is valid."
                    },
                )
            elif action == "drop":
                self.close_connection = True  # accepted, but the answer never arrives

    return Handler


@pytest.fixture
def fake_line() -> Iterator[FakeLine]:
    fake = FakeLine()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield fake
    server.shutdown()
    server.server_close()
    assert fake.errors == []


@dataclass
class Sender:
    """The sender under test, on the app's database, with its own state and clock."""

    factory: sessionmaker[Session]
    config: sender.SenderConfig
    clock: Clock
    http: httpx.Client
    state: sender.SenderState = field(default_factory=sender.SenderState)

    def run(self) -> dict[str, Any]:
        return sender.run_once(self.factory, self.config, self.http, self.clock, self.state)


SECRETS = SenderSecrets(_env_file=None, notice_private_key=SecretStr(PRIVATE))
NO_SECRETS = SenderSecrets(_env_file=None)


def sender_settings(settings: Settings, fake: FakeLine, batch_size: int = 2) -> Settings:
    return settings.model_copy(
        update={
            "line_channel_access_token": SecretStr(ACCESS_TOKEN),
            "line_api_base_url": fake.url,
            "notice_batch_size": batch_size,
        }
    )


@pytest.fixture
def line_sender(
    client: TestClient, settings: Settings, engine: Engine, fake_line: FakeLine, clock: Clock
) -> Iterator[Sender]:
    config = sender.SenderConfig.from_settings(sender_settings(settings, fake_line), SECRETS)
    with httpx.Client(timeout=httpx.Timeout(5.0)) as http:
        yield Sender(make_sessionmaker(engine, settings.audit_key()), config, clock, http)


def subscribe(
    client: TestClient, who: str, topics: list[str], channel: str = "line"
) -> dict[str, Any]:
    sealed = seal.seal(line_id(who), PUBLIC) if channel == "line" else None
    answer = client.post(
        "/v1/subscriptions",
        json={
            "subject_id": subject(who),
            "topic_ids": topics,
            "channel": channel,
            "sealed_line_user_id": sealed,
        },
        headers={**AUTH, "Idempotency-Key": uuid.uuid4().hex},
    )
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def unsubscribe(client: TestClient, who: str, topics: list[str] | None) -> None:
    answer = client.post(
        f"/v1/subjects/{subject(who)}/subscriptions/end",
        json={"topic_ids": topics, "reason": "resident"},
        headers={**AUTH, "Idempotency-Key": uuid.uuid4().hex},
    )
    assert answer.status_code == 200, answer.text


def add_notice(
    engine: Engine,
    topic: str = "checkups",
    scheduled_at: dt.datetime = START,
    status: str = "approved",
    sent_at: dt.datetime | None = None,
) -> str:
    notice_id = str(uuid.uuid4())
    with engine.begin() as connection:
        connection.execute(
            insert(Notice).values(
                notice_id=notice_id,
                topic_id=topic,
                text_ja="特定健診の受診期間は12月末までです。",
                link_url=LINK,
                status=status,
                drafted_by="editor",
                drafted_at=scheduled_at - dt.timedelta(hours=1),
                approved_by="approver",
                approved_at=scheduled_at - dt.timedelta(minutes=30),
                scheduled_at=scheduled_at,
                sent_at=sent_at,
                recipients_sent=0,
            )
        )
    return notice_id


def notice(engine: Engine, notice_id: str) -> Any:
    with engine.connect() as connection:
        return connection.execute(select(Notice).where(Notice.notice_id == notice_id)).one()


def batches(engine: Engine, notice_id: str) -> list[Any]:
    with engine.connect() as connection:
        return list(
            connection.execute(
                select(NoticeBatch)
                .where(NoticeBatch.notice_id == notice_id)
                .order_by(NoticeBatch.batch_no)
            )
        )


def residents(client: TestClient) -> list[str]:
    """Five LINE subscribers of `checkups`, and others who must get nothing."""
    names = [f"line-{n}" for n in range(5)]
    for name in names:
        subscribe(client, name, ["checkups", "disaster"])
    subscribe(client, "vaccination-only", ["vaccination"])
    subscribe(client, "stopped", ["checkups"])
    unsubscribe(client, "stopped", None)
    subscribe(client, "stopped-one", ["checkups", "disaster"])
    unsubscribe(client, "stopped-one", ["checkups"])
    subscribe(client, "web", ["checkups"], channel="web")
    return [line_id(name) for name in names]


def test_batches_go_to_exactly_the_subscribed_line_residents(
    client: TestClient, engine: Engine, line_sender: Sender, fake_line: FakeLine
) -> None:
    expected = residents(client)
    notice_id = add_notice(engine)
    result = line_sender.run()
    assert result == {"quiet": False, "planned": 1, "calls": 3, "completed": 1}
    assert [len(c["to"]) for c in fake_line.calls] == [2, 2, 1]
    assert fake_line.deliveries() == Counter({user: 1 for user in expected})
    assert len(set(fake_line.keys())) == 3
    assert fake_line.calls[0]["text"] == (
        "特定健診の受診期間は12月末までです。\n"
        + LINK
        + "\n\nお知らせをやめるときは、このトークで「お知らせをやめる」と送ってください。"
    )
    row = notice(engine, notice_id)
    assert (row.status, row.recipients_planned, row.recipients_sent) == ("sent", 5, 5)
    assert row.sent_at == START
    assert [b.status for b in batches(engine, notice_id)] == ["sent"] * 3
    assert [b.retry_key for b in batches(engine, notice_id)] == fake_line.keys()
    with engine.connect() as connection:
        log = connection.execute(
            select(StaffAccessLog.username, StaffAccessLog.action, StaffAccessLog.target)
        ).all()
    assert [tuple(r) for r in log] == [("sender", "notice_sent", notice_id)]
    # Nothing more to do; no user id was stored anywhere in the batches.
    assert line_sender.run()["calls"] == 0
    assert not any(user in repr(batches(engine, notice_id)) for user in expected)


def test_a_restart_between_planning_and_sending_uses_the_planned_keys(
    client: TestClient, engine: Engine, line_sender: Sender, fake_line: FakeLine
) -> None:
    residents(client)
    notice_id = add_notice(engine)
    assert sender.plan_due(line_sender.factory, line_sender.config, START) == 1
    planned = [b.retry_key for b in batches(engine, notice_id)]
    assert notice(engine, notice_id).status == "sending"
    assert fake_line.calls == []
    restarted = Sender(line_sender.factory, line_sender.config, line_sender.clock, line_sender.http)
    assert restarted.run()["calls"] == 3
    assert fake_line.keys() == planned


def test_a_lost_answer_and_a_5xx_are_retried_with_the_same_key(
    client: TestClient, engine: Engine, line_sender: Sender, fake_line: FakeLine, clock: Clock
) -> None:
    expected = residents(client)
    notice_id = add_notice(engine)
    fake_line.script = ["500", "drop"]
    first = line_sender.run()
    assert first["calls"] == 3
    assert [b.status for b in batches(engine, notice_id)] == ["pending", "pending", "sent"]
    assert notice(engine, notice_id).status == "sending"
    assert line_sender.run()["calls"] == 0  # not due yet (backing off)
    clock.advance(minutes=5)
    assert line_sender.run() == {"quiet": False, "planned": 0, "calls": 2, "completed": 1}
    keys = fake_line.keys()
    assert keys[3:] == keys[:2]
    assert fake_line.deliveries() == Counter({user: 1 for user in expected})
    assert [b.last_http_status for b in batches(engine, notice_id)] == [200, 409, 200]
    assert notice(engine, notice_id).recipients_sent == 5


def test_429_backs_off_for_retry_after_and_keeps_the_key(
    client: TestClient, engine: Engine, line_sender: Sender, fake_line: FakeLine, clock: Clock
) -> None:
    residents(client)
    notice_id = add_notice(engine)
    fake_line.script = ["429"]
    assert line_sender.run()["calls"] == 1  # the rate limit stops the pass
    clock.advance(seconds=20)
    assert line_sender.run()["calls"] == 0
    assert notice(engine, notice_id).status == "sending"
    clock.advance(seconds=11)
    assert line_sender.run()["calls"] == 3
    keys = fake_line.keys()
    assert keys[1] == keys[0]
    assert notice(engine, notice_id).status == "sent"


def test_a_crash_after_a_call_sends_nobody_twice(
    client: TestClient,
    engine: Engine,
    line_sender: Sender,
    fake_line: FakeLine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    expected = residents(client)
    notice_id = add_notice(engine)
    real_record = sender._record
    seen: list[int] = []

    def crash_on_second(*args: Any, **kwargs: Any) -> str:
        seen.append(1)
        if len(seen) == 2:
            raise RuntimeError("killed")
        return real_record(*args, **kwargs)

    monkeypatch.setattr(sender, "_record", crash_on_second)
    with pytest.raises(RuntimeError):
        line_sender.run()
    monkeypatch.setattr(sender, "_record", real_record)
    restarted = Sender(line_sender.factory, line_sender.config, line_sender.clock, line_sender.http)
    assert restarted.run()["completed"] == 1
    assert fake_line.keys()[2] == fake_line.keys()[1]
    assert fake_line.deliveries() == Counter({user: 1 for user in expected})
    assert notice(engine, notice_id).recipients_sent == 5


def test_a_resident_who_stops_after_planning_gets_nothing(
    client: TestClient, engine: Engine, line_sender: Sender, fake_line: FakeLine
) -> None:
    expected = residents(client)
    add_notice(engine)
    sender.plan_due(line_sender.factory, line_sender.config, START)
    unsubscribe(client, "line-0", ["checkups"])
    line_sender.run()
    assert set(fake_line.deliveries()) == set(expected) - {line_id("line-0")}


def test_another_4xx_fails_the_batch_with_its_detail(
    client: TestClient, engine: Engine, line_sender: Sender, fake_line: FakeLine
) -> None:
    residents(client)
    notice_id = add_notice(engine)
    fake_line.script = ["400"]
    line_sender.run()
    found = batches(engine, notice_id)
    assert [b.status for b in found] == ["failed", "sent", "sent"]
    assert found[0].detail == {"status": 400, "message": "The request body has 1 error(s)"}
    row = notice(engine, notice_id)
    assert (row.status, row.recipients_sent) == ("sent", 3)


def test_nothing_is_sent_in_quiet_hours(
    client: TestClient, engine: Engine, line_sender: Sender, fake_line: FakeLine, clock: Clock
) -> None:
    residents(client)
    clock.now = dt.datetime(2026, 11, 30, 22, 0, tzinfo=JST).astimezone(dt.UTC)
    notice_id = add_notice(engine, scheduled_at=clock.now - dt.timedelta(hours=1))
    assert line_sender.run()["quiet"] is True
    clock.now = dt.datetime(2026, 12, 1, 7, 59, tzinfo=JST).astimezone(dt.UTC)
    assert line_sender.run()["quiet"] is True
    assert fake_line.calls == []
    assert notice(engine, notice_id).status == "approved"
    clock.now = dt.datetime(2026, 12, 1, 8, 0, tzinfo=JST).astimezone(dt.UTC)
    assert line_sender.run()["calls"] == 3
    assert notice(engine, notice_id).status == "sent"


def test_a_scheduled_notice_waits_for_its_time(
    client: TestClient, engine: Engine, line_sender: Sender, fake_line: FakeLine, clock: Clock
) -> None:
    residents(client)
    notice_id = add_notice(engine, scheduled_at=START + dt.timedelta(hours=2))
    assert line_sender.run()["planned"] == 0
    clock.advance(hours=2)
    assert line_sender.run()["planned"] == 1
    assert notice(engine, notice_id).status == "sent"


def test_the_monthly_limit_refuses_a_third_notice_of_a_topic(
    client: TestClient, engine: Engine, line_sender: Sender, fake_line: FakeLine
) -> None:
    residents(client)
    last_month = dt.datetime(2026, 10, 31, 12, 0, tzinfo=JST).astimezone(dt.UTC)
    add_notice(engine, scheduled_at=last_month, status="sent", sent_at=last_month)
    this_month = dt.datetime(2026, 11, 1, 9, 0, tzinfo=JST).astimezone(dt.UTC)
    add_notice(engine, scheduled_at=this_month, status="sent", sent_at=this_month)
    second = add_notice(engine)
    assert line_sender.run()["calls"] == 3
    assert notice(engine, second).status == "sent"
    third = add_notice(engine)
    other_topic = add_notice(engine, topic="disaster")
    line_sender.run()
    row = notice(engine, third)
    assert (row.status, row.refusal) == ("refused", "monthly_limit")
    assert notice(engine, other_topic).status == "sent"
    assert len(fake_line.calls) == 6


def test_a_notice_cancelled_before_its_time_is_not_sent(
    client: TestClient, engine: Engine, line_sender: Sender, fake_line: FakeLine
) -> None:
    residents(client)
    notice_id = add_notice(engine)
    with engine.begin() as connection:
        connection.execute(
            update(Notice).where(Notice.notice_id == notice_id).values(status="cancelled")
        )
    assert line_sender.run()["planned"] == 0
    assert fake_line.calls == []


def test_send_notices_fails_fast_without_the_private_key(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with_token = settings.model_copy(update={"line_channel_access_token": SecretStr("t")})
    monkeypatch.setattr(cli, "get_settings", lambda: with_token)
    monkeypatch.setattr(cli, "get_sender_secrets", lambda: NO_SECRETS)
    assert cli.main(["send-notices", "--once"]) == 2
    assert "NOTICE_PRIVATE_KEY" in capsys.readouterr().err
    with pytest.raises(InsecureSettings, match="LINE_CHANNEL_ACCESS_TOKEN"):
        sender.SenderConfig.from_settings(settings, SECRETS)
    bad_key = SenderSecrets(_env_file=None, notice_private_key=SecretStr("short"))
    with pytest.raises(InsecureSettings, match="NOTICE_PRIVATE_KEY"):
        sender.SenderConfig.from_settings(with_token, bad_key)


def test_send_notices_once_from_the_command_line(
    client: TestClient,
    settings: Settings,
    engine: Engine,
    fake_line: FakeLine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    expected = residents(client)
    notice_id = add_notice(engine)
    monkeypatch.setattr(cli, "get_settings", lambda: sender_settings(settings, fake_line, 500))
    monkeypatch.setattr(cli, "get_sender_secrets", lambda: SECRETS)
    monkeypatch.setattr(cli, "utc_now", lambda: START)
    assert cli.main(["send-notices", "--once"]) == 0
    assert [sorted(c["to"]) for c in fake_line.calls] == [sorted(expected)]
    assert notice(engine, notice_id).status == "sent"


def test_the_loop_survives_a_database_outage_and_stops_on_request(
    line_sender: Sender, monkeypatch: pytest.MonkeyPatch
) -> None:
    stop = threading.Event()
    passes: list[str] = []

    def flaky(*_args: Any, **_kwargs: Any) -> dict[str, Any]:
        passes.append("pass")
        if len(passes) == 1:
            raise OperationalError("SELECT 1", {}, Exception("gone"))
        stop.set()
        return {"quiet": False, "planned": 0, "calls": 0, "completed": 0}

    monkeypatch.setattr(sender, "run_once", flaky)
    config = dataclasses.replace(line_sender.config, poll_seconds=0.01)
    sender.run(line_sender.factory, config, stop, line_sender.clock, http=line_sender.http)
    assert passes == ["pass", "pass"]


def test_the_monthly_quota_fails_the_batches_at_once_and_refuses_the_notice(
    client: TestClient, engine: Engine, line_sender: Sender, fake_line: FakeLine, clock: Clock
) -> None:
    # LINE answers 429 when the channel's monthly message quota is used up: retrying cannot
    # help before next month, so the batch fails at once (not backing off for ever).
    residents(client)
    notice_id = add_notice(engine)
    fake_line.script = ["quota", "quota", "quota"]
    assert line_sender.run() == {"quiet": False, "planned": 1, "calls": 3, "completed": 1}
    found = batches(engine, notice_id)
    assert [b.status for b in found] == ["failed"] * 3
    assert found[0].detail == {
        "reason": "monthly_quota",
        "status": 429,
        "message": "You have reached your monthly limit.",
    }
    # No batch was sent: the notice is not `sent` but refused, with an access log row.
    row = notice(engine, notice_id)
    assert (row.status, row.refusal, row.recipients_sent, row.sent_at) == (
        "refused",
        "line_rejected",
        0,
        None,
    )
    with engine.connect() as connection:
        log = connection.execute(select(StaffAccessLog.action, StaffAccessLog.target)).all()
    assert [tuple(r) for r in log] == [("notice_failed", notice_id)]
    clock.advance(hours=1)
    assert line_sender.run()["calls"] == 0
    assert len(fake_line.calls) == 3


def test_a_batch_is_given_up_24_hours_after_its_first_attempt(
    client: TestClient, engine: Engine, line_sender: Sender, fake_line: FakeLine, clock: Clock
) -> None:
    # LINE keeps a retry key for 24 hours: a retry after that could deliver twice.
    residents(client)
    notice_id = add_notice(engine)
    fake_line.script = ["500"]
    line_sender.run()
    first = batches(engine, notice_id)
    assert [b.status for b in first] == ["pending", "sent", "sent"]
    assert first[0].first_attempt_at == START
    clock.advance(hours=23, minutes=59)
    fake_line.script = ["500"]
    assert line_sender.run()["calls"] == 1
    assert batches(engine, notice_id)[0].first_attempt_at == START  # the first one stays
    clock.advance(minutes=1)
    assert line_sender.run() == {"quiet": False, "planned": 0, "calls": 0, "completed": 1}
    found = batches(engine, notice_id)
    assert found[0].status == "failed"
    assert found[0].detail == {"reason": "retry_window_passed", "attempts": 2}
    assert len(fake_line.calls) == 4
    row = notice(engine, notice_id)
    assert (row.status, row.recipients_sent) == ("sent", 3)


def test_the_first_attempt_is_committed_before_the_call(
    client: TestClient,
    engine: Engine,
    line_sender: Sender,
    fake_line: FakeLine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    residents(client)
    notice_id = add_notice(engine)
    sender.plan_due(line_sender.factory, line_sender.config, START)
    real_post = sender._post

    def killed(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("killed during the call")

    monkeypatch.setattr(sender, "_post", killed)
    with pytest.raises(RuntimeError):
        line_sender.run()
    monkeypatch.setattr(sender, "_post", real_post)
    assert [b.first_attempt_at for b in batches(engine, notice_id)] == [START, None, None]


def test_a_notice_planned_too_long_after_its_time_is_refused(
    client: TestClient, engine: Engine, line_sender: Sender, fake_line: FakeLine
) -> None:
    # A stale date (the sender was down for days) must not go out: NOTICE_MAX_DELAY_HOURS (24).
    assert line_sender.config.max_delay == dt.timedelta(hours=24)
    residents(client)
    stale = add_notice(engine, scheduled_at=START - dt.timedelta(hours=24, minutes=1))
    late_but_fine = add_notice(
        engine, topic="disaster", scheduled_at=START - dt.timedelta(hours=23)
    )
    assert line_sender.run()["planned"] == 2
    row = notice(engine, stale)
    assert (row.status, row.refusal, row.recipients_planned) == ("refused", "too_late", None)
    assert batches(engine, stale) == []
    assert notice(engine, late_but_fine).status == "sent"
    assert len(fake_line.calls) == 3
    with engine.connect() as connection:
        log = connection.execute(select(StaffAccessLog.action, StaffAccessLog.target)).all()
    assert ("notice_refused", stale) in [tuple(r) for r in log]


def test_a_refused_access_token_keeps_the_batch_pending(
    client: TestClient,
    engine: Engine,
    line_sender: Sender,
    fake_line: FakeLine,
    clock: Clock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # 401/403: the channel access token is wrong (a configuration error). The batch stays
    # pending (the token can be fixed) and is tried later with the same key.
    expected = residents(client)
    notice_id = add_notice(engine)
    fake_line.script = ["401"]
    with caplog.at_level("ERROR", logger="consent_service.notices.sender"):
        assert line_sender.run()["calls"] == 1  # the pass stops: every call would be refused
    found = batches(engine, notice_id)
    assert [b.status for b in found] == ["pending"] * 3
    assert found[0].last_http_status == 401
    assert notice(engine, notice_id).status == "sending"
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert errors and "LINE_CHANNEL_ACCESS_TOKEN" in errors[0]
    assert not any(user in message for user in expected for message in errors)
    assert line_sender.run()["calls"] == 0  # waits before trying again
    clock.advance(minutes=10)
    assert line_sender.run()["calls"] == 3
    assert fake_line.keys()[1] == fake_line.keys()[0]
    assert fake_line.deliveries() == Counter({user: 1 for user in expected})
    assert notice(engine, notice_id).status == "sent"
