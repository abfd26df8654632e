"""The staff console's analytics with the real Rasa server (issue 20): Rasa's SQL event broker
(the `event_broker` of the endpoints, as in `make run`) and the consumer the fixtures start."""

from __future__ import annotations

import contextlib
import sqlite3
import time
import uuid
from pathlib import Path
from typing import List, Tuple

import pytest

from tests.e2e.conftest import Assistant

pytestmark = pytest.mark.e2e


def stored(assistant: Assistant, sender: str) -> List[Tuple[str, str, str]]:
    """(kind, intent or response, text) of `sender`'s events in the consent service's tables."""
    url = assistant.consent.env["CONSENT_DATABASE_URL"]
    path = Path(url.removeprefix("sqlite+pysqlite:///"))
    with contextlib.closing(sqlite3.connect(path)) as db:
        rows = db.execute(
            "SELECT kind, coalesce(intent, action, ''), coalesce(text, '') FROM analytics_events "
            "WHERE sender = ? ORDER BY id",
            (sender,),
        ).fetchall()
    return [(str(k), str(n), str(t)) for k, n, t in rows]


def test_a_conversation_reaches_the_console_tables_masked(assistant: Assistant) -> None:
    sender = f"analytics-{uuid.uuid4().hex[:8]}"
    assistant.say(sender, "情報銀行って何ですか？")
    assistant.say(sender, "血圧が150なんだけど大丈夫？")
    tracker = assistant.tracker(sender)["events"]
    expected = {kind: sum(1 for e in tracker if e["event"] == kind) for kind in ("user", "bot")}
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        rows = stored(assistant, sender)
        kinds = [kind for kind, _, _ in rows]
        if {kind: kinds.count(kind) for kind in expected} == expected:
            break
        time.sleep(0.5)
    assert {kind: kinds.count(kind) for kind in expected} == expected, rows
    assert expected["user"] >= 2 and "session_started" in kinds
    texts = " ".join(text for _, _, text in rows)
    assert "150" not in texts  # masked (by the channel or, at the latest, by the consumer)
