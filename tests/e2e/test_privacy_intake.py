"""Issue 19 end to end: personal details are masked at intake in every channel and kept nowhere.

Residents send messages with every kind of personal detail over REST, LINE (the fake platform,
tests/line_fake.py) and the web chat (socket.io). The assistant warns once per conversation,
naming the kind, then answers as usual; a resident at the consent read-back who types their name
with the yes still gets the consent recorded. Afterwards every place the run could have kept a
message is scanned for the raw details: every SQLite database of the e2e stack (Rasa's tracker
store, the consent service's database), Rasa's tracker API, the consent service's records, the
assistant's answers, the staff console's pages and exports; and, when the session ends, every
server's log (`log_check.forbid`).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import sqlite3
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any, Dict, List

import pytest
import requests
import yaml

from tests.conftest import PROJECT_ROOT
from tests.e2e import conftest as e2e
from tests.e2e import log_check
from tests.e2e.conftest import (
    BACKEND_PYTHON,
    Assistant,
    create_staff_user,
    staff_console,
    staff_cookies,
)
from tests.e2e.test_line import REPLY, body_of, calls_for, post, sign, text_event
from tests.e2e.test_webchat import connect, new_session
from tests.line_fake import SPECS, FakeLineApi, OpenApi

pytestmark = pytest.mark.e2e

# (kind, message, raw texts that must be kept nowhere). Each message also asks something, so
# that the answer after the warning is an ordinary one.
DETAILS: List[tuple[str, str, List[str]]] = [
    ("name", "高橋美咲です。情報銀行って何ですか", ["高橋美咲", "美咲"]),
    ("address", "船橋市本町4-31-7に住んでいます。情報銀行って何ですか", ["本町4-31-7", "4-31-7"]),
    ("phone", "電話は047-436-2981です。情報銀行って何ですか", ["047-436-2981", "436-2981"]),
    ("email", "メールは misaki.t82@example.jp です。情報銀行って何ですか", ["misaki.t82"]),
    ("postal_code", "郵便番号は〒273-0011です。情報銀行って何ですか", ["273-0011"]),
    ("birth_date", "生年月日は1978年11月23日です。情報銀行って何ですか", ["1978年11月23日"]),
    ("my_number", "マイナンバーは 4821 7730 9164 です", ["4821 7730 9164", "482177309164"]),
    ("insurance_number", "保険証の番号は 31270415 です", ["31270415"]),
    ("health_value", "血圧は163/97で体重は71.3kgです。血圧はレベルいくつ？", ["163/97", "71.3kg"]),
]
RAW = sorted({raw for _, _, raws in DETAILS for raw in raws})
# Each figure of the health values alone, so that a partial leak ("163" kept, "97" masked) fails;
# matched as a whole number (not inside a longer number, an id or a timestamp).
FIGURES = ["163", "97", "71.3"]
_FIGURE = re.compile(
    "|".join(rf"(?<![0-9A-Za-z.]){re.escape(f)}(?![0-9A-Za-z]|\.[0-9])" for f in FIGURES)
)
NOTICE_START = "メッセージに"
NOTICE_MARK = "その部分を取り除きました"
RECORDED = "同意を記録しました"
ANSWER_WAIT = 30.0
JST = dt.timezone(dt.timedelta(hours=9))
STAFF_USER = "privacy"

for _kind, _, _raws in DETAILS:
    log_check.forbid(_kind, _raws)


@pytest.fixture(scope="module")
def kind_words() -> Dict[str, str]:
    """How the warning names each kind (the domain's fragments)."""
    domain = yaml.safe_load((PROJECT_ROOT / "domain.yml").read_text(encoding="utf-8"))
    return {
        kind: domain["responses"][f"utter_fragment_detail_{kind}"][0]["text"]
        for kind, _, _ in DETAILS
    }


def texts(answers: List[Dict[str, Any]]) -> List[str]:
    return [str(a.get("text", "")) for a in answers]


def notices(answers: List[str]) -> List[str]:
    return [a for a in answers if NOTICE_MARK in a]


def raw_in(text: str) -> List[str]:
    """The raw details in `text`, also where JSON wrote them as \\u escapes."""
    both = text + "\n" + log_check.unescaped(text)
    return [raw for raw in RAW if raw in both] + sorted(set(_FIGURE.findall(both)))


def sender() -> str:
    return f"e2e-privacy-{uuid.uuid4().hex[:8]}"


# -- REST ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "message", "raws"), DETAILS, ids=[d[0] for d in DETAILS])
def test_rest_warns_once_naming_the_kind_then_answers(
    assistant: Assistant, kind_words: Dict[str, str], kind: str, message: str, raws: List[str]
) -> None:
    who = sender()
    first = texts(assistant.say(who, message))
    assert len(first) >= 2, first  # the warning, then the answer
    assert first[0].startswith(NOTICE_START) and kind_words[kind] in first[0], first[0]
    assert notices(first[1:]) == []
    assert raw_in("\n".join(first)) == []
    # The next message with a detail in the same conversation gets no second warning.
    second = texts(assistant.say(who, "電話は047-436-2981です。情報銀行って何ですか"))
    assert second and notices(second) == [] and raw_in("\n".join(second)) == []
    tracker = json.dumps(assistant.tracker(who), ensure_ascii=False)
    assert raw_in(tracker) == []  # text, parse_data, slots: all of what Rasa keeps


def test_a_name_typed_with_the_yes_at_the_read_back_still_records_the_consent(
    assistant: Assistant,
) -> None:
    who = sender()
    assistant.say(who, "同意の手続きをしたいです")
    readback = "\n".join(
        texts(assistant.say(who, '/give_consent{"offer_id": "city_health_vitals"}'))
    )
    assert "この内容で同意を記録してよろしいですか" in readback
    answers = texts(assistant.say(who, "はい、高橋美咲です"))
    assert len(notices(answers)) == 1 and answers[0].startswith(NOTICE_START), answers
    assert any(RECORDED in a for a in answers), answers
    [consent] = assistant.consent.history(who)
    assert consent["status"] == "active"
    assert raw_in(json.dumps(consent, ensure_ascii=False)) == []


# -- LINE ---------------------------------------------------------------------------------------


def line_say(assistant: Assistant, fake: FakeLineApi, user: str, text: str) -> List[str]:
    """One signed text event; the texts of the reply it got."""
    event = text_event(user, text)
    body = body_of([event], OpenApi(SPECS / "webhook.yml"))
    assert post(assistant, body, sign(body)).status_code == 200
    [reply] = calls_for(fake, REPLY, event["replyToken"])
    assert reply.problems == []
    return [m.get("text", "") for m in reply.body["messages"]]


def test_line_masks_every_kind_and_warns_once(
    assistant: Assistant, fake_line: FakeLineApi, kind_words: Dict[str, str]
) -> None:
    user = "U" + uuid.uuid4().hex
    told: List[str] = []
    for number, (kind, message, _) in enumerate(DETAILS):
        answers = line_say(assistant, fake_line, user, message)
        assert answers and raw_in("\n".join(answers)) == [], kind
        told += notices(answers)
        if number == 0:
            assert answers[0].startswith(NOTICE_START) and kind_words[kind] in answers[0]
            assert len(answers) >= 2  # then the answer, in the same reply
    assert len(told) == 1  # once per conversation
    sent = json.dumps([c.body for c in fake_line.sent(REPLY)], ensure_ascii=False)
    assert raw_in(sent) == []  # nothing the assistant sent LINE repeats a detail


# -- web chat -----------------------------------------------------------------------------------


def web_say(client: Any, answers: List[Dict[str, Any]], text: str) -> List[str]:
    """Send typed text on the socket; the texts of the answers it got."""
    before = len(answers)
    client.emit("user_uttered", {"message": text})
    deadline = time.monotonic() + ANSWER_WAIT
    while time.monotonic() < deadline:
        got = texts(answers[before:])
        if any(NOTICE_MARK not in g for g in got):  # the ordinary answer has come
            client.sleep(1)  # anything else of the same turn
            return texts(answers[before:])
        client.sleep(0.2)
    raise AssertionError(f"no answer to a web chat message in {ANSWER_WAIT:.0f}s")


def test_webchat_masks_every_kind_and_warns_once(
    assistant: Assistant, kind_words: Dict[str, str]
) -> None:
    client = connect(assistant, new_session(assistant), origin=assistant.url)
    answers: List[Dict[str, Any]] = []
    client.on("bot_uttered", answers.append)
    told: List[str] = []
    try:
        for number, (kind, message, _) in enumerate(DETAILS):
            got = web_say(client, answers, message)
            assert raw_in("\n".join(got)) == [], kind
            told += notices(got)
            if number == 0:
                assert got[0].startswith(NOTICE_START) and kind_words[kind] in got[0], got
    finally:
        client.disconnect()
    assert len(told) == 1


# -- afterwards: nothing raw anywhere -----------------------------------------------------------


def database_text(path: Path) -> str:
    """Every text and blob value of every table of an SQLite database, as text.

    Numbers (row ids, timestamps) are left out: a row id 97 is not the figure 97 of a message.
    """
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return "\n".join(
            " ".join(
                value.decode("utf-8", "replace") if isinstance(value, bytes) else value
                for value in row
                if isinstance(value, (str, bytes))
            )
            for table in tables
            for row in db.execute(f'SELECT * FROM "{table}"')  # noqa: S608 - names from SQLite
        )


def test_no_database_of_the_stack_holds_a_raw_detail(assistant: Assistant) -> None:
    """Run after the conversations above (file order): the tracker store and the consent DB."""
    databases = sorted(assistant.tracker_db.parent.glob("*.db"))
    assert assistant.tracker_db in databases and len(databases) >= 2
    held = log_check.unescaped(database_text(assistant.tracker_db))
    assert "personal_detail_removed" in held and "［名前］" in held  # the conversations are there
    for database in databases:
        assert raw_in(database_text(database)) == [], database.name


def test_no_log_holds_a_raw_detail_so_far(assistant: Assistant) -> None:
    """The logs as they are now; the session's end checks them complete (`log_check.forbid`)."""
    for log in assistant.logs:
        assert raw_in(log.read_text(encoding="utf-8", errors="replace")) == [], log.name


@pytest.fixture(scope="module")
def console(
    assistant: Assistant, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str, Dict[str, str]]]:
    """A staff console showing this e2e run's conversations: its URL, a TOTP secret, its env.

    With the analytics consumer of issue 20 in the e2e stack, the stack's own consent service
    shows what the consumer stored from Rasa's event broker; before it, a console reads the run's
    tracker store (`STAFF_TRACKER_DATABASE_URL`).
    """
    work = assistant.tracker_db.parent
    if hasattr(e2e, "wait_consumed"):
        secret = create_staff_user(assistant.consent.env, STAFF_USER)
        e2e.wait_consumed(work / "events.db", work / "consent.db")
        yield assistant.consent.url, secret, assistant.consent.env
        return
    own = tmp_path_factory.mktemp("privacy-console")
    env = {
        **os.environ,
        "PYTHONPATH": str(PROJECT_ROOT / "backend"),
        "CONSENT_DATABASE_URL": f"sqlite+pysqlite:///{own / 'consent.db'}",
        "CONSENT_API_TOKEN": "e2e-privacy-token-" + "2" * 32,
        "STAFF_TRACKER_DATABASE_URL": f"sqlite+pysqlite:///{assistant.tracker_db}",
    }
    secret = create_staff_user(env, STAFF_USER)
    with staff_console(env, own) as url:
        yield url, secret, env
    log = own / "console.log"
    assert raw_in(log.read_text(encoding="utf-8", errors="replace")) == []


def test_no_staff_page_or_export_shows_a_raw_detail(
    console: tuple[str, str, Dict[str, str]], tmp_path: Path
) -> None:
    url, secret, env = console
    cookies = staff_cookies(url, STAFF_USER, secret)  # passed by hand: Secure cookies over http
    today = dt.datetime.now(JST).date()  # the console counts days in Japan time
    week = f"start={today - dt.timedelta(days=14)}&end={today}"
    pages = [f"/staff/{v}?{week}" for v in ("", "intents", "fallbacks", "funnel")]
    pages += [f"/staff/conversations?{week}", "/staff/access-log", f"/staff/labels?{week}"]
    seen: Dict[str, str] = {}
    for path in pages:
        answer = requests.get(url + path, cookies=cookies, timeout=30)
        assert answer.status_code == 200, path
        seen[path] = answer.text
    listing = seen[f"/staff/conversations?{week}"]
    transcripts = sorted(set(re.findall(r'href="(/staff/conversations/[^"?]+)"', listing)))
    assert transcripts, "the conversations of this run are listed"
    exports = set(re.findall(r'href="(/staff/export/[^"]+\.csv)[^"]*"', "".join(seen.values())))
    for path in [*transcripts, *(f"{e}?{week}" for e in exports)]:
        answer = requests.get(url + path.replace("&amp;", "&"), cookies=cookies, timeout=30)
        assert answer.status_code == 200, path
        seen[path] = answer.text
    assert any("personal_detail_removed" in seen[t] for t in transcripts)
    # The label export (`make staff-labels`): what staff labelled goes into data/ and the model.
    out = tmp_path / "staff_labels.yml"
    subprocess.run(
        [str(BACKEND_PYTHON), "-m", "consent_service", "staff", "export-labels", "--out", str(out)],
        env=env, check=True, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    seen["export-labels"] = out.read_text(encoding="utf-8") if out.exists() else ""
    for path, html in seen.items():
        assert raw_in(html) == [], path
