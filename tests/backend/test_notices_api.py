"""The notice calls of `/v1` (issue 17, docs/contract.md): topics, subscribing, stopping, unseen.

On SQLite and the real PostgreSQL (the `client` fixture runs both).
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, insert, select, text
from sqlalchemy.exc import IntegrityError

from consent_service import __main__ as cli
from consent_service.config import Settings
from consent_service.models import StaffUser
from consent_service.notices import seal
from consent_service.notices.tables import Notice, NoticeRecipient, NoticeSubscription
from tests.backend.conftest import ADMIN, AUTH, START, Clock, subject

PRIVATE, PUBLIC = seal.generate_keypair()
LINE_USER = "U0123456789abcdef0123456789abcdef"


def post(client: TestClient, path: str, body: dict[str, Any], key: str | None = None) -> Any:
    headers = {**AUTH, "Idempotency-Key": key or uuid.uuid4().hex}
    return client.post(path, json=body, headers=headers)


def subscribe(
    client: TestClient,
    topics: list[str],
    channel: str = "web",
    who: str = "resident",
    sealed: str | None = None,
    key: str | None = None,
) -> Any:
    body = {
        "subject_id": subject(who),
        "topic_ids": topics,
        "channel": channel,
        "sealed_line_user_id": sealed,
    }
    return post(client, "/v1/subscriptions", body, key)


def end(
    client: TestClient,
    who: str,
    topics: list[str] | None,
    reason: str = "resident",
    key: str | None = None,
) -> Any:
    return post(
        client,
        f"/v1/subjects/{subject(who)}/subscriptions/end",
        {"topic_ids": topics, "reason": reason},
        key,
    )


def recipients(engine: Engine) -> dict[str, str]:
    with engine.connect() as connection:
        query = select(NoticeRecipient.subject_id, NoticeRecipient.sealed_user_id)
        rows = connection.execute(query)
        return {subject_id: sealed for subject_id, sealed in rows.tuples()}


def test_topics_in_their_order(client: TestClient) -> None:
    answer = client.get("/v1/notice-topics", headers=AUTH)
    assert answer.status_code == 200
    assert [t["topic_id"] for t in answer.json()] == [
        "checkups",
        "vaccination",
        "disaster",
        "healthy_ageing",
    ]
    assert answer.json()[0] == {
        "topic_id": "checkups",
        "title_ja": "健診・保健指導",
        "description_ja": answer.json()[0]["description_ja"],
        "max_per_month": 2,
        "web_subscription_days": 30,  # NOTICE_WEB_SUBSCRIPTION_DAYS of the test settings
    }
    assert client.get("/v1/notice-topics").status_code == 401


def test_subscribe_answers_subscriptions_and_a_receipt(client: TestClient) -> None:
    answer = subscribe(client, ["checkups", "disaster"])
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert re.fullmatch(r"N-[A-Z2-7]{10}", body["receipt"]["receipt_id"])
    assert body["receipt"]["kind"] == "notice_subscription"
    assert [(s["topic_id"], s["channel"], s["status"]) for s in body["subscriptions"]] == [
        ("checkups", "web", "active"),
        ("disaster", "web", "active"),
    ]
    # Already active: answered as it is, not twice.
    again = subscribe(client, ["disaster", "vaccination"]).json()
    assert again["subscriptions"][0] == body["subscriptions"][1]
    listed = client.get(f"/v1/subjects/{subject()}/subscriptions", headers=AUTH).json()
    assert sorted(s["topic_id"] for s in listed) == ["checkups", "disaster", "vaccination"]
    assert all(s["status"] == "active" and s["ended_at"] is None for s in listed)
    assert {s["receipt_id"] for s in listed} == {
        body["receipt"]["receipt_id"],
        again["receipt"]["receipt_id"],
    }


@pytest.mark.parametrize(
    ("channel", "sealed", "topics", "reason"),
    [
        ("line", None, ["checkups"], "line_recipient_required"),
        ("web", "c2VhbGVk", ["checkups"], "line_recipient_not_allowed"),
        ("rest", "c2VhbGVk", ["checkups"], "line_recipient_not_allowed"),
        ("web", None, ["checkups", "horoscope"], "unknown_topic"),
    ],
)
def test_refusals(
    client: TestClient, channel: str, sealed: str | None, topics: list[str], reason: str
) -> None:
    answer = subscribe(client, topics, channel=channel, sealed=sealed)
    assert (answer.status_code, answer.json()["reason"]) == (422, reason)
    assert client.get(f"/v1/subjects/{subject()}/subscriptions", headers=AUTH).json() == []


def test_the_same_key_gets_the_same_answer(client: TestClient, clock: Clock) -> None:
    first = subscribe(client, ["checkups"], key="sub-1")
    clock.advance(minutes=1)
    second = subscribe(client, ["checkups"], key="sub-1")
    assert (second.status_code, second.json()) == (201, first.json())
    reused = subscribe(client, ["vaccination"], key="sub-1")
    assert (reused.status_code, reused.json()["reason"]) == (422, "idempotency_key_reused")
    other_call = end(client, "resident", None, key="sub-1")
    assert other_call.json()["reason"] == "idempotency_key_reused"
    stopped = end(client, "resident", ["checkups"], key="end-1")
    assert end(client, "resident", ["checkups"], key="end-1").json() == stopped.json()
    listed = client.get(f"/v1/subjects/{subject()}/subscriptions", headers=AUTH).json()
    assert [(s["topic_id"], s["status"]) for s in listed] == [("checkups", "ended")]


def test_a_line_subscription_keeps_the_sealed_id_until_the_last_one_ends(
    client: TestClient, engine: Engine
) -> None:
    first = seal.seal(LINE_USER, PUBLIC)
    assert subscribe(client, ["checkups", "vaccination"], "line", "a", first).status_code == 201
    assert recipients(engine) == {subject("a"): first}
    newer = seal.seal(LINE_USER, PUBLIC)
    assert subscribe(client, ["disaster"], "line", "a", newer).status_code == 201
    assert recipients(engine) == {subject("a"): newer}
    assert seal.open_sealed(recipients(engine)[subject("a")], PRIVATE) == LINE_USER
    stopped = end(client, "a", ["checkups"]).json()
    assert stopped["ended"] == ["checkups"]
    assert stopped["receipt"]["kind"] == "notice_unsubscription"
    assert subject("a") in recipients(engine)
    assert end(client, "a", ["vaccination", "disaster"]).json()["ended"] == [
        "vaccination",
        "disaster",
    ]
    assert recipients(engine) == {}
    # Nothing active: nothing ended, no receipt.
    assert end(client, "a", None).json() == {"ended": [], "receipt": None}


def test_no_table_holds_the_raw_line_user_id(client: TestClient, engine: Engine) -> None:
    subscribe(client, ["checkups"], "line", "a", seal.seal(LINE_USER, PUBLIC))
    with engine.connect() as connection:
        tables = ["notice_subscriptions", "notice_recipients", "idempotency_records", "audit_log"]
        for table in tables:
            rows = connection.execute(text(f"SELECT * FROM {table}")).all()  # noqa: S608
            assert rows, table
            assert LINE_USER not in repr(rows), table


def test_unfollow_ends_everything_and_forgets_the_recipient(
    client: TestClient, engine: Engine
) -> None:
    subscribe(client, ["checkups", "disaster"], "line", "a", seal.seal(LINE_USER, PUBLIC))
    subscribe(client, ["vaccination"], "line", "b", seal.seal("Uother", PUBLIC))
    answer = end(client, "a", None, reason="unfollow")
    assert answer.status_code == 200
    assert answer.json()["ended"] == ["checkups", "disaster"]
    listed = client.get(f"/v1/subjects/{subject('a')}/subscriptions", headers=AUTH).json()
    assert {(s["status"], s["end_reason"]) for s in listed} == {("ended", "unfollow")}
    assert set(recipients(engine)) == {subject("b")}
    assert client.get("/v1/audit/verify", headers=ADMIN).json()["ok"] is True


def test_a_line_subscription_on_a_web_topic_stores_no_recipient(
    client: TestClient, engine: Engine
) -> None:
    subscribe(client, ["checkups"], "web", "a")
    subscribe(client, ["checkups"], "line", "a", seal.seal(LINE_USER, PUBLIC))
    assert recipients(engine) == {}


def test_stopping_an_unknown_topic_is_refused(client: TestClient) -> None:
    answer = end(client, "a", ["horoscope"])
    assert (answer.status_code, answer.json()["reason"]) == (422, "unknown_topic")


def add_notice(engine: Engine, topic: str, sent_at: dt.datetime, status: str = "sent") -> str:
    notice_id = str(uuid.uuid4())
    with engine.begin() as connection:
        connection.execute(
            insert(Notice).values(
                notice_id=notice_id,
                topic_id=topic,
                text_ja=f"{topic}のお知らせ",
                link_url="https://www.city.funabashi.lg.jp/x.html",
                status=status,
                drafted_by="editor",
                drafted_at=sent_at - dt.timedelta(hours=1),
                approved_by="approver",
                approved_at=sent_at - dt.timedelta(minutes=30),
                scheduled_at=sent_at,
                sent_at=sent_at if status == "sent" else None,
                recipients_sent=0,
            )
        )
    return notice_id


def test_web_residents_see_their_topics_notices_once(
    client: TestClient, engine: Engine, clock: Clock
) -> None:
    before = add_notice(engine, "checkups", START - dt.timedelta(days=1))
    subscribe(client, ["checkups", "disaster"], "web", "w")
    subscribe(client, ["checkups"], "line", "l", seal.seal(LINE_USER, PUBLIC))
    ids = [add_notice(engine, "checkups", START + dt.timedelta(hours=h)) for h in (3, 1, 2)]
    add_notice(engine, "vaccination", START + dt.timedelta(hours=1))  # not subscribed
    add_notice(engine, "disaster", START + dt.timedelta(hours=1), status="approved")  # not sent
    last = add_notice(engine, "disaster", START + dt.timedelta(hours=5))
    path = f"/v1/subjects/{subject('w')}/notices"
    unseen = client.get(f"{path}/unseen", headers=AUTH).json()
    assert [n["notice_id"] for n in unseen] == [ids[1], ids[2], ids[0]]
    assert unseen[0]["title_ja"] == "健診・保健指導"
    assert unseen[0]["text_ja"] == "checkupsのお知らせ"
    # LINE subscribers are pushed to; they are never shown notices at a visit.
    assert client.get(f"/v1/subjects/{subject('l')}/notices/unseen", headers=AUTH).json() == []
    seen = client.post(f"{path}/seen", json={"notice_ids": [ids[1], ids[2], before]}, headers=AUTH)
    assert seen.json() == {"seen": 2}
    again = client.post(f"{path}/seen", json={"notice_ids": [ids[1]]}, headers=AUTH)
    assert again.json() == {"seen": 0}
    assert [n["notice_id"] for n in client.get(f"{path}/unseen", headers=AUTH).json()] == [
        ids[0],
        last,
    ]
    end(client, "w", ["disaster"])
    assert [n["notice_id"] for n in client.get(f"{path}/unseen", headers=AUTH).json()] == [ids[0]]


def test_the_approver_role_exists(engine: Engine, client: TestClient) -> None:
    with engine.begin() as connection:
        connection.execute(
            insert(StaffUser).values(
                username="approver1",
                password_hash="x",
                totp_secret="x",
                role="approver",
                failed_attempts=0,
                created_at=START,
            )
        )
        with pytest.raises(IntegrityError), connection.begin_nested():
            connection.execute(
                insert(StaffUser).values(
                    username="x2",
                    password_hash="x",
                    totp_secret="x",
                    role="superuser",
                    failed_attempts=0,
                    created_at=START,
                )
            )


def test_a_line_yes_retried_with_a_fresh_seal_gets_the_same_answer(
    client: TestClient, engine: Engine, clock: Clock
) -> None:
    # The LINE channel seals every message anew: a retry of the same はい (its answer was lost)
    # carries the same Idempotency-Key but another sealed value.
    first_seal = seal.seal(LINE_USER, PUBLIC)
    first = subscribe(client, ["checkups"], "line", "a", first_seal, key="line-yes")
    assert first.status_code == 201, first.text
    clock.advance(seconds=30)
    fresh = seal.seal(LINE_USER, PUBLIC)
    assert fresh != first_seal
    again = subscribe(client, ["checkups"], "line", "a", fresh, key="line-yes")
    assert (again.status_code, again.json()) == (201, first.json())
    # The newest sealed value replaces the old while the subscription is active.
    assert recipients(engine) == {subject("a"): fresh}
    # Once stopped, a late replay stores nothing again.
    end(client, "a", None)
    late = subscribe(
        client, ["checkups"], "line", "a", seal.seal(LINE_USER, PUBLIC), key="line-yes"
    )
    assert (late.status_code, late.json()) == (201, first.json())
    assert recipients(engine) == {}
    # Still another request under the same key is refused.
    other = subscribe(client, ["vaccination"], "line", "a", fresh, key="line-yes")
    assert (other.status_code, other.json()["reason"]) == (422, "idempotency_key_reused")


def test_a_web_subscription_runs_out_after_its_days(
    client: TestClient,
    engine: Engine,
    clock: Clock,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The web chat's subject is the pseudonym of one web session (at most
    # WEBCHAT_SESSION_DAYS): its subscription must not live for ever.
    assert settings.notice_web_subscription_days == 30
    subscribe(client, ["checkups"], "web", "w")
    subscribe(client, ["checkups"], "line", "l", seal.seal(LINE_USER, PUBLIC))
    path = f"/v1/subjects/{subject('w')}"
    clock.advance(days=29, hours=23)
    fresh = add_notice(engine, "checkups", clock.now - dt.timedelta(minutes=1))
    assert [n["notice_id"] for n in client.get(f"{path}/notices/unseen", headers=AUTH).json()] == [
        fresh
    ]
    clock.advance(hours=2)  # 30 days and 1 hour after subscribing
    late = add_notice(engine, "checkups", clock.now - dt.timedelta(minutes=1))
    # Before `retention` runs, every read treats it as ended.
    assert client.get(f"{path}/notices/unseen", headers=AUTH).json() == []
    seen = client.post(f"{path}/notices/seen", json={"notice_ids": [late]}, headers=AUTH)
    assert seen.json() == {"seen": 0}
    [listed] = client.get(f"{path}/subscriptions", headers=AUTH).json()
    assert (listed["status"], listed["end_reason"]) == ("ended", "expired")
    assert dt.datetime.fromisoformat(listed["ended_at"]) == START + dt.timedelta(days=30)
    # A LINE subscription (a lasting LINE account) does not run out.
    [line] = client.get(f"/v1/subjects/{subject('l')}/subscriptions", headers=AUTH).json()
    assert line["status"] == "active"
    # `retention` ends it in the table, with an audit entry.
    monkeypatch.setattr(cli, "get_settings", lambda: settings)
    monkeypatch.setattr(cli, "utc_now", lambda: clock.now)
    assert cli.main(["retention"]) == 0
    assert cli.main(["retention"]) == 0  # nothing more to end
    with engine.connect() as connection:
        rows = connection.execute(
            select(
                NoticeSubscription.subject_id,
                NoticeSubscription.status,
                NoticeSubscription.end_reason,
                NoticeSubscription.ended_at,
            )
        ).all()
        expired_entries = connection.execute(
            text("SELECT count(*) FROM audit_log WHERE event_type = 'notice.expired'")
        ).scalar_one()
    assert {(r[0], r[1], r[2]) for r in rows} == {
        (subject("w"), "ended", "expired"),
        (subject("l"), "active", None),
    }
    assert expired_entries == 1
    assert client.get("/v1/audit/verify", headers=ADMIN).json()["ok"] is True
    # Subscribing again starts a new subscription.
    again = subscribe(client, ["checkups"], "web", "w").json()
    assert again["subscriptions"][0]["subscription_id"] != listed["subscription_id"]
    assert again["subscriptions"][0]["status"] == "active"


def test_subscribing_after_the_days_ended_even_before_retention(
    client: TestClient, clock: Clock
) -> None:
    first = subscribe(client, ["disaster"], "rest", "r").json()["subscriptions"][0]
    clock.advance(days=31)
    # The expired one is ended first, so the topic is subscribed anew (not answered as it is).
    second = subscribe(client, ["disaster"], "rest", "r").json()["subscriptions"][0]
    assert second["subscription_id"] != first["subscription_id"]
    listed = client.get(f"/v1/subjects/{subject('r')}/subscriptions", headers=AUTH).json()
    assert [(s["status"], s["end_reason"]) for s in listed] == [
        ("active", None),
        ("ended", "expired"),
    ]
    # Stopping after the days ended stops nothing more: it already ended.
    clock.advance(days=31)
    assert end(client, "r", None).json() == {"ended": [], "receipt": None}
