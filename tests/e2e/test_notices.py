"""Health notices end to end (issue 17): residents subscribe on LINE, staff draft and approve in a
real browser, the sender multicasts to the fake LINE platform (checked against LINE's OpenAPI and
its retry key rules), survives a SIGKILL in the middle of a send, and no raw LINE user id is kept
anywhere but sealed.

Residents (LINE): A, D and E subscribe to 健診・保健指導 and stay; B subscribes to 予防接種
and 健診・保健指導, then stops 健診・保健指導 only (naming it); C subscribes to 健診・保健指導,
then unfollows the account. The notice on 健診・保健指導 goes out in batches of one (A, D, E):
the platform holds the second call after accepting it, the sender is killed while it waits, and
the restarted sender sends the same batch again with the same retry key (409: not delivered
again), then the last batch (answered 429 once first).

Web residents cannot be pushed to: W subscribes over the REST channel (channel `rest`, as the
web chat's `web`) and sees the notice once when its next Rasa session starts (`/session_start`,
what a new session runs; the web chat's own sessions expire only after an hour).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import re
import sqlite3
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest
import requests

from tests.e2e import log_check
from tests.e2e.conftest import (
    CONSENT_TOKEN,
    PSEUDONYM_KEY,
    SCREENSHOTS,
    Assistant,
    create_staff_user,
    staff_log_in,
)
from tests.e2e.test_line import body_of, calls_for, event, post, reply_texts, sign, text_event
from tests.line_fake import MULTICAST, SPECS, Call, Delivery, FakeLineApi, OpenApi

pytestmark = pytest.mark.e2e
REPLY = "/v2/bot/message/reply"
CHECKUPS, VACCINATION = "checkups", "vaccination"
TITLES = {CHECKUPS: "健診・保健指導", VACCINATION: "予防接種"}
NOTICE_TEXT = "今年度の特定健診の受付が始まりました。対象の方には受診券をお送りしています。"
NOTICE_LINK = "https://www.city.funabashi.lg.jp/kenkou/kenshin/"
RECEIPT = re.compile(r"N-[A-Z2-7]{10}")
# Names no other e2e module creates: the stack and its consent database are shared.
EDITOR, APPROVER = "oshirase_henshu", "oshirase_shonin"
SEND_TIMEOUT = 180.0


@pytest.fixture(scope="module")
def webhook_schema() -> OpenApi:
    return OpenApi(SPECS / "webhook.yml")


def line_user() -> str:
    return "U" + uuid.uuid4().hex


def line_subject(user: str) -> str:
    """The consent service's subject of a LINE resident: the pseudonym of Rasa's sender id,
    itself the pseudonym of the user id (bot/channels/line.py, actions/consent_client.py)."""

    def keyed(value: str) -> str:
        return hmac.new(PSEUDONYM_KEY.encode(), value.encode(), hashlib.sha256).hexdigest()

    return keyed("line:" + keyed("line:" + user))


class LineResident:
    """One resident talking to the assistant through signed LINE webhooks."""

    def __init__(self, assistant: Assistant, fake: FakeLineApi, schema: OpenApi) -> None:
        self.user = line_user()
        self.assistant, self.fake, self.schema = assistant, fake, schema
        self.calls_after_unfollow: List[Call] = []
        log_check.forbid_line_users([self.user])

    def _send(self, payload: Dict[str, Any]) -> Call:
        body = body_of([payload], self.schema)
        assert post(self.assistant, body, sign(body)).status_code == 200
        replies = calls_for(self.fake, REPLY, payload["replyToken"])
        assert replies, f"no reply to {payload.get('message') or payload.get('postback')}"
        assert all(c.problems == [] for c in replies)
        return replies[-1]

    def say(self, text: str) -> Call:
        return self._send(text_event(self.user, text))

    def press(self, reply: Call, item: Dict[str, Any]) -> Call:
        action = item["action"]
        if action["type"] == "postback":
            return self._send(event("postback", self.user, postback={"data": action["data"]}))
        return self.say(action["text"])

    def follow_buttons(self, text: str, prefer: List[str], steps: int = 5) -> str:
        """Say `text`, then press the first offered button whose label holds one of `prefer`
        (in that order) until an answer holds a receipt id; that answer's text."""
        reply = self.say(text)
        for _ in range(steps):
            texts = reply_texts(reply)
            if RECEIPT.search(texts):
                return texts
            items = (reply.body["messages"][-1].get("quickReply") or {}).get("items", [])
            choice = next(
                (i for want in prefer for i in items if want in i["action"].get("label", "")),
                None,
            )
            labels = [i["action"].get("label") for i in items]
            assert choice is not None, f"no button for {prefer} in {labels}: {texts}"
            reply = self.press(reply, choice)
        raise AssertionError(f"no receipt after {steps} steps: {reply_texts(reply)}")

    def subscribe(self, topic: str) -> None:
        answer = self.follow_buttons("お知らせを受け取りたい", [TITLES[topic], "はい"])
        assert RECEIPT.search(answer)

    def stop(self, words: str, topic: str) -> None:
        """Stop one topic in words (a plain 「お知らせをやめる」 stops every topic)."""
        answer = self.follow_buttons(words, [TITLES[topic]])
        assert RECEIPT.search(answer)

    def unfollow(self) -> None:
        body = body_of([event("unfollow", self.user)], self.schema)
        assert post(self.assistant, body, sign(body)).status_code == 200

    def active_topics(self) -> set[str]:
        return active_of(self.assistant, line_subject(self.user))


def active_of(assistant: Assistant, subject: str) -> set[str]:
    """A subject's active topics, from the consent service."""
    response = requests.get(
        f"{assistant.consent.url}/v1/subjects/{subject}/subscriptions",
        headers={"Authorization": f"Bearer {CONSENT_TOKEN}"},
        timeout=10,
    )
    response.raise_for_status()
    return {s["topic_id"] for s in response.json() if s["status"] == "active"}


class RestResident:
    """A web resident (channel `rest`), pressing buttons by sending their payloads."""

    def __init__(self, assistant: Assistant) -> None:
        self.sender = f"notice-web-{uuid.uuid4().hex[:12]}"
        self.assistant = assistant

    def follow_buttons(self, text: str, prefer: List[str], steps: int = 5) -> str:
        answers = self.assistant.say(self.sender, text)
        for _ in range(steps):
            texts = "\n".join(a.get("text", "") for a in answers)
            if RECEIPT.search(texts):
                return texts
            buttons = [b for a in answers for b in a.get("buttons") or []]
            choice = next(
                (b for want in prefer for b in buttons if want in b.get("title", "")), None
            )
            assert choice is not None, f"no button for {prefer} in {buttons}: {texts}"
            answers = self.assistant.say(self.sender, choice["payload"])
        raise AssertionError(f"no receipt after {steps} steps")

    def active_topics(self) -> set[str]:
        key = PSEUDONYM_KEY.encode()
        subject = hmac.new(key, f"rest:{self.sender}".encode(), hashlib.sha256).hexdigest()
        return active_of(self.assistant, subject)

    def next_session(self) -> str:
        """What the assistant shows when the resident's next session starts."""
        answers = self.assistant.say(self.sender, "/session_start")
        return "\n".join(a.get("text", "") for a in answers)


def eventually(condition: Any, what: str, timeout: float = SEND_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:.0f} s: {what}")
        time.sleep(0.3)


def query(db: Path, sql: str, *args: Any) -> List[tuple]:
    with contextlib.closing(sqlite3.connect(db, timeout=30)) as connection:
        return list(connection.execute(sql, args).fetchall())


def log_in(assistant: Assistant, browser: Any, name: str, role: str) -> Any:
    """A new account of `role` on the stack's consent service, logged in on a new page."""
    secret = create_staff_user(assistant.consent.env, name, role)
    page = browser.new_page(viewport={"width": 1280, "height": 900}, locale="ja-JP")
    url = assistant.consent.url
    staff_log_in(page, url, name, secret, landing=re.compile(r".*/staff/(?!login).*"))
    return page


def table_texts(db: Path) -> Iterator[tuple[str, str, str]]:
    """(table, column, value) of every text-like value in a SQLite database."""
    with contextlib.closing(sqlite3.connect(db, timeout=30)) as connection:
        tables = [
            r[0] for r in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")
        ]
        for table in tables:
            columns = [r[1] for r in connection.execute(f'PRAGMA table_info("{table}")')]
            rows = connection.execute(f'SELECT * FROM "{table}"')  # noqa: S608 (its own names)
            for row in rows:
                for column, value in zip(columns, row, strict=True):
                    if isinstance(value, bytes):
                        value = value.decode("utf-8", errors="replace")
                    if isinstance(value, str):
                        yield table, column, value


@pytest.fixture(scope="module")
def residents(
    assistant: Assistant, fake_line: FakeLineApi, webhook_schema: OpenApi
) -> Dict[str, LineResident]:
    """A, D, E on 健診・保健指導; B on 予防接種 only after stopping 健診・保健指導; C unfollowed."""
    people = {name: LineResident(assistant, fake_line, webhook_schema) for name in "ABCDE"}
    for name in "ACDE":
        people[name].subscribe(CHECKUPS)
    people["B"].subscribe(VACCINATION)
    people["B"].subscribe(CHECKUPS)
    assert people["B"].active_topics() == {VACCINATION, CHECKUPS}
    people["B"].stop("健診のお知らせだけやめたい", CHECKUPS)
    before = mentions(fake_line, people["C"].user)
    people["C"].unfollow()
    eventually(lambda: people["C"].active_topics() == set(), "C's unfollow ends C's subscriptions")
    time.sleep(2)  # anything the assistant wrongly sent to LINE for it has arrived by now
    people["C"].calls_after_unfollow = mentions(fake_line, people["C"].user)[len(before) :]
    return people


def test_subscriptions_follow_what_residents_said(residents: Dict[str, LineResident]) -> None:
    assert {n: r.active_topics() for n, r in residents.items()} == {
        "A": {CHECKUPS}, "B": {VACCINATION}, "C": set(), "D": {CHECKUPS}, "E": {CHECKUPS},
    }  # fmt: skip


def mentions(fake: FakeLineApi, user: str) -> List[Call]:
    """The calls to the platform that name `user` (pushes, loading indicators, multicasts)."""
    return [c for c in fake.sent() if user in json.dumps(c.body)]


def test_unfollow_sends_nothing_to_line(residents: Dict[str, LineResident]) -> None:
    assert residents["C"].calls_after_unfollow == []  # no reply token, and no push either


def approve_in_browser(assistant: Assistant, browser: Any) -> tuple[str, Any]:
    """The editor drafts (with a preview), the approver approves; the notice id and the
    approver's page (still logged in: a TOTP code opens one session only)."""
    url = assistant.consent.url
    editor = log_in(assistant, browser, EDITOR, "editor")
    editor.goto(f"{url}/staff/notices/new")
    editor.get_by_label("話題（必須）").select_option(CHECKUPS)
    editor.locator("#notice-text").fill(NOTICE_TEXT)
    editor.locator("#notice-link").fill(NOTICE_LINK)
    editor.get_by_role("button", name="プレビュー").click()
    preview = editor.locator("section.notice-preview")
    preview.wait_for()
    assert NOTICE_TEXT in preview.inner_text() and "お知らせをやめる" in preview.inner_text()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    editor.screenshot(path=str(SCREENSHOTS / "staff-notice-preview.png"), full_page=True)
    editor.get_by_role("button", name="下書きを保存する").click()
    editor.wait_for_url(re.compile(r".*/staff/notices/[0-9a-f-]{36}.*"))
    notice_id = re.search(r"/staff/notices/([0-9a-f-]{36})", editor.url).group(1)
    assert editor.get_by_role("button", name="内容を確認し、承認する").count() == 0
    editor.close()

    approver = log_in(assistant, browser, APPROVER, "approver")
    approver.goto(f"{url}/staff/notices/{notice_id}")
    approver.get_by_role("button", name="内容を確認し、承認する").click()
    approver.wait_for_url(re.compile(r".*/staff/notices\?done=approved.*"))
    return notice_id, approver


@pytest.fixture(scope="module")
def web_resident(assistant: Assistant) -> RestResident:
    """W, subscribed to 健診・保健指導 on the REST channel, before the notice is sent."""
    resident = RestResident(assistant)
    resident.follow_buttons("お知らせを受け取りたい", [TITLES[CHECKUPS], "はい"])
    assert resident.active_topics() == {CHECKUPS}
    assert NOTICE_TEXT not in resident.next_session()  # nothing sent yet
    return resident


@pytest.fixture(scope="module")
def sent(
    assistant: Assistant,
    fake_line: FakeLineApi,
    browser: Any,
    residents: Dict[str, LineResident],
    web_resident: RestResident,
) -> Dict[str, Any]:
    """The notice sent to the residents (`send_with_a_kill`)."""
    return send_with_a_kill(assistant, fake_line, browser)


def send_with_a_kill(assistant: Assistant, fake_line: FakeLineApi, browser: Any) -> Dict[str, Any]:
    """The notice approved in the browser and sent in batches of one, the sender killed while
    LINE holds the second call (accepted), then restarted; what the platform received."""
    sender = assistant.sender
    assert sender is not None
    consent_db = assistant.tracker_db.parent / "consent.db"
    before = len(fake_line.sent(MULTICAST))
    sender.kill()
    sender.start(NOTICE_BATCH_SIZE="1")
    hold = fake_line.hold_multicast(after=1)  # the second call: delivered, never answered
    notice_id, approver = approve_in_browser(assistant, browser)
    assert hold.reached.wait(SEND_TIMEOUT), "the sender made no second multicast call"
    sender.kill()
    hold.release()
    [(status,)] = query(consent_db, "SELECT status FROM notices WHERE notice_id = ?", notice_id)
    assert status == "sending"  # killed mid-send
    fake_line.fail_multicast(429, retry_after=1)  # the next new call: try again later
    sender.start(NOTICE_BATCH_SIZE="1")
    eventually(
        lambda: (
            query(consent_db, "SELECT status FROM notices WHERE notice_id = ?", notice_id)
            == [("sent",)]
        ),
        "the restarted sender finishes the notice",
    )
    calls = fake_line.sent(MULTICAST)[before:]
    approver.goto(f"{assistant.consent.url}/staff/notices")
    row = approver.locator(f'tr[data-notice="{notice_id}"]')
    listed = {
        cell: row.locator(f"td.{cell}").inner_text() for cell in ("status", "planned", "sent")
    }
    approver.screenshot(path=str(SCREENSHOTS / "staff-notices.png"), full_page=True)
    approver.close()
    return {"notice_id": notice_id, "calls": calls, "db": consent_db, "listed": listed}


def this_notice(fake: FakeLineApi) -> List[Delivery]:
    return [d for d in fake.delivered if NOTICE_TEXT in d.messages[0].get("text", "")]


def test_each_batch_is_one_accepted_multicast_to_exactly_the_subscribers(
    sent: Dict[str, Any], fake_line: FakeLineApi, residents: Dict[str, LineResident]
) -> None:
    subscribed = {residents[n].user for n in "ADE"}
    batches = query(
        sent["db"], "SELECT retry_key, status FROM notice_batches WHERE notice_id = ?",
        sent["notice_id"],
    )  # fmt: skip
    deliveries = this_notice(fake_line)
    assert all(c.problems == [] for c in sent["calls"]), [c.problems for c in sent["calls"]]
    assert sorted(status for _, status in batches) == ["sent"] * 3  # batches of one
    assert sorted(d.retry_key for d in deliveries) == sorted(k.lower() for k, _ in batches)
    assert all(len(d.to) == 1 for d in deliveries)
    assert Counter(u for d in deliveries for u in d.to) == {u: 1 for u in subscribed}
    for delivery in deliveries:
        [message] = delivery.messages
        assert NOTICE_LINK in message["text"] and "お知らせをやめる" in message["text"]


def test_the_killed_sender_retried_with_the_same_key_and_backed_off_on_429(
    sent: Dict[str, Any],
) -> None:
    statuses = Counter(c.status for c in sent["calls"])
    assert statuses == {200: 3, 409: 1, 429: 1}  # the held call's retry got 409
    retried = next(c for c in sent["calls"] if c.status == 409)
    first = [
        c
        for c in sent["calls"]
        if c.headers["x-line-retry-key"] == retried.headers["x-line-retry-key"]
    ]
    assert [c.status for c in first] == [200, 409]


def test_the_console_and_access_log_show_the_notice(sent: Dict[str, Any]) -> None:
    [row] = query(
        sent["db"],
        "SELECT drafted_by, approved_by, recipients_planned, recipients_sent FROM notices"
        " WHERE notice_id = ?",
        sent["notice_id"],
    )
    assert row == (EDITOR, APPROVER, 3, 3)
    actions = query(
        sent["db"],
        "SELECT username, action FROM staff_access_log WHERE target = ? ORDER BY id",
        sent["notice_id"],
    )
    assert (EDITOR, "notice_drafted") in actions and (APPROVER, "notice_approved") in actions
    assert ("sender", "notice_sent") in actions
    # The console's list: sent, and 3 LINE recipients shown as fewer than 5.
    assert sent["listed"] == {"status": "送信済み", "planned": "5人未満", "sent": "5人未満"}


def test_no_raw_line_user_id_in_any_database(
    sent: Dict[str, Any], assistant: Assistant, residents: Dict[str, LineResident]
) -> None:
    users = {r.user for r in residents.values()}
    work = assistant.tracker_db.parent
    found = sorted(
        {
            f"{db.name}: {table}.{column}"
            for db in (work / "consent.db", work / "rasa.db", work / "events.db")
            for table, column, value in table_texts(db)
            if any(user in value for user in users)
        }
    )
    assert found == []
    # Only subscribed residents have a sealed id, and the unfollowed one's is gone.
    subjects = {line_subject(residents[n].user) for n in "ABDE"}
    kept = {s for (s,) in query(work / "consent.db", "SELECT subject_id FROM notice_recipients")}
    assert kept >= subjects and line_subject(residents["C"].user) not in kept


def test_a_web_resident_sees_the_notice_once_at_the_next_session(
    sent: Dict[str, Any], web_resident: RestResident
) -> None:
    assert NOTICE_TEXT in web_resident.next_session()
    assert NOTICE_TEXT not in web_resident.next_session()
    [(shown,)] = query(
        sent["db"], "SELECT count(*) FROM notice_web_deliveries WHERE notice_id = ?",
        sent["notice_id"],
    )  # fmt: skip
    assert shown == 1
