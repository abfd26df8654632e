"""After the whole e2e run (this file's name sorts it last), the logs hold no health data.

Every server's log of the run — Rasa, the action server, the consent service — is searched for
what a resident typed (a canary with a blood pressure, sent over REST and LINE just before) and
for raw LINE user ids. Pseudonyms are allowed; what identifies or describes a resident is not.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
import uuid

import pytest
import requests

from tests.e2e.conftest import LINE_SECRET, Assistant
from tests.line_fake import FakeLineApi

pytestmark = pytest.mark.e2e

RAW_LINE_ID = re.compile(r"U[0-9a-f]{32}")


def test_logs_of_the_run_hold_no_resident_text_or_raw_ids(
    assistant: Assistant, fake_line: FakeLineApi
) -> None:
    canary = f"私の血圧は158/96で既往歴は糖尿病です{uuid.uuid4().hex[:6]}"
    assistant.say(f"log-check-{uuid.uuid4().hex[:6]}", canary)
    user = "U" + uuid.uuid4().hex
    event = {
        "type": "message", "mode": "active", "timestamp": int(time.time() * 1000),
        "source": {"type": "user", "userId": user}, "replyToken": uuid.uuid4().hex,
        "webhookEventId": uuid.uuid4().hex.upper()[:26],
        "deliveryContext": {"isRedelivery": False},
        "message": {"type": "text", "id": "1", "text": canary, "quoteToken": "q"},
    }  # fmt: skip
    body = json.dumps({"destination": "U" + "0" * 32, "events": [event]}).encode()
    signature = base64.b64encode(hmac.new(LINE_SECRET.encode(), body, hashlib.sha256).digest())
    answer = requests.post(
        f"{assistant.url}/webhooks/line/webhook",
        data=body,
        headers={"Content-Type": "application/json", "X-Line-Signature": signature.decode()},
        timeout=30,
    )
    assert answer.status_code == 200
    time.sleep(1.0)
    for log in assistant.logs:
        text = log.read_text(encoding="utf-8", errors="replace")
        assert canary not in text and "158/96" not in text, log.name
        assert RAW_LINE_ID.search(text) is None, (log.name, RAW_LINE_ID.search(text))
