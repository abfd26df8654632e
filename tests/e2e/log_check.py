"""The logs of a whole e2e run hold no health data and no raw LINE user ids.

The `assistant` fixture (tests/e2e/conftest.py) calls this when the session ends, whatever tests
ran and in whatever order: it sends a canary message with a blood pressure and a disease over REST
and LINE, stops the servers (so every log is complete) and fails the run when any server's log —
Rasa, the action server, the consent service — holds the canary, its blood pressure or a raw LINE
user id. Pseudonyms are allowed; what identifies or describes a resident is not.

Issue 19: tests that send personal details (tests/e2e/test_privacy_intake.py) list the raw
details with `forbid`; the channels mask them at intake, so any of them in any log is a leak too.

Issue 17: the notice sender's log is checked too (it opens the sealed LINE user ids); the notice
test forbids its residents' user ids by name (`forbid_line_users`, in any spelling a log might
use), and the stack forbids the run's notice private key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
import uuid
from pathlib import Path
from typing import Iterable, List

import requests

from tests.line_fake import FakeLineApi

RAW_LINE_ID = re.compile(r"U[0-9a-f]{32}")
BLOOD_PRESSURE = "158/96"
REPLY = "/v2/bot/message/reply"
REPLY_WAIT = 30.0
UNICODE_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})")
# (kind, raw text) of every personal detail the session's tests sent (`forbid`).
FORBIDDEN: List[tuple[str, str]] = []


def forbid(kind: str, raws: Iterable[str]) -> None:
    """Make raw personal details the tests sent count as leaks in the session's logs.

    Args:
        kind: The kind of detail (named in findings instead of the detail itself).
        raws: Raw texts that must appear in no log.
    """
    FORBIDDEN.extend((kind, raw) for raw in raws)


def forbid_line_users(users: Iterable[str]) -> None:
    """Make these LINE user ids leaks in any log, also upper-case or without the leading "U".

    The generic `RAW_LINE_ID` pattern finds the usual spelling of any id; this also finds the
    ids the notice sender opened in spellings that pattern misses.

    Args:
        users: Raw LINE user ids ("U" and 32 hexadecimal digits).
    """
    spellings = []
    for user in users:
        spellings += [user, user.upper(), user[1:]]
    forbid("LINE user id", spellings)


def send_canaries(url: str, line_secret: str, fake_line: FakeLineApi) -> str:
    """Send one canary over the REST channel and over a signed LINE webhook.

    Args:
        url: The Rasa server.
        line_secret: The LINE channel secret the server checks signatures with.
        fake_line: The LINE platform the server replies to.

    Returns:
        The canary text, once both channels have answered it.
    """
    canary = f"私の血圧は{BLOOD_PRESSURE}で既往歴は糖尿病です{uuid.uuid4().hex[:6]}"
    rest = requests.post(
        f"{url}/webhooks/rest/webhook",
        json={"sender": f"log-check-{uuid.uuid4().hex[:6]}", "message": canary},
        timeout=60,
    )
    rest.raise_for_status()
    reply_token = uuid.uuid4().hex
    event = {
        "type": "message", "mode": "active", "timestamp": int(time.time() * 1000),
        "source": {"type": "user", "userId": "U" + uuid.uuid4().hex}, "replyToken": reply_token,
        "webhookEventId": uuid.uuid4().hex.upper()[:26],
        "deliveryContext": {"isRedelivery": False},
        "message": {"type": "text", "id": "1", "text": canary, "quoteToken": "q"},
    }  # fmt: skip
    body = json.dumps({"destination": "U" + "0" * 32, "events": [event]}).encode()
    signature = base64.b64encode(hmac.new(line_secret.encode(), body, hashlib.sha256).digest())
    line = requests.post(
        f"{url}/webhooks/line/webhook",
        data=body,
        headers={"Content-Type": "application/json", "X-Line-Signature": signature.decode()},
        timeout=30,
    )
    line.raise_for_status()
    deadline = time.monotonic() + REPLY_WAIT
    while not any(
        (call.body or {}).get("replyToken") == reply_token for call in fake_line.sent(REPLY)
    ):
        if time.monotonic() > deadline:
            raise AssertionError(f"the LINE canary got no reply in {REPLY_WAIT:.0f}s")
        time.sleep(0.2)
    return canary


def unescaped(text: str) -> str:
    """`text` with JSON's \\uXXXX escapes decoded (Rasa writes events as ASCII-only JSON)."""
    return UNICODE_ESCAPE.sub(lambda match: chr(int(match[1], 16)), text)


def leaks(logs: Iterable[Path], canary: str) -> List[str]:
    """Where the logs hold the canary, its blood pressure or a raw LINE user id.

    Args:
        logs: The servers' log files.
        canary: The text `send_canaries` sent.

    Returns:
        One line per finding (the log's name and what it holds, never the log's text); empty
        when the logs are clean.
    """
    found = []
    for log in logs:
        text = log.read_text(encoding="utf-8", errors="replace")
        if canary in text:
            found.append(f"{log.name}: the canary message")
        if BLOOD_PRESSURE in text:
            found.append(f"{log.name}: the canary's blood pressure")
        if RAW_LINE_ID.search(text):
            found.append(f"{log.name}: a raw LINE user id")
        both = text + "\n" + unescaped(text)
        found += sorted({f"{log.name}: a raw {kind}" for kind, raw in FORBIDDEN if raw in both})
    return found
