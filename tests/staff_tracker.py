"""A generated Rasa tracker store (the `events` table of Rasa's SQLTrackerStore) with known counts.

Used by the staff console's metric tests and its browser test. Standard library only.
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
