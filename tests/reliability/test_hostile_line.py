"""Hostile input over the LINE webhook of the production profile, through nginx.

Hypothesis sends signed events with random Japanese, emoji and control-character text, signed
bodies of arbitrary JSON and bytes, unsigned and huge bodies. Every answer must be 200 or a 4xx
(never a 5xx), both replicas must stay up, and their memory must stay bounded.
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

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.reliability.conftest import LINE_SECRET, VITALS, LinePlatform, Resident, Stack

pytestmark = pytest.mark.reliability

MEMORY_GROWTH_LIMIT = 150 * 2**20
JAPANESE = ["情報銀行", "血圧150", "同意したい", "かかりつけ医", "遺伝子", "/give_consent", "ｶﾞｷﾞ"]
TEXT = st.one_of(
    st.text(st.characters(codec="utf-8"), min_size=1, max_size=300),
    st.lists(st.sampled_from(JAPANESE) | st.text(max_size=5), min_size=1, max_size=40).map("".join),
    st.text(st.characters(min_codepoint=0x1F300, max_codepoint=0x1FAFF), min_size=1),
    st.text(st.characters(max_codepoint=0x1F), min_size=1, max_size=50),
    st.just("あ" * 6000),
)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=12,
)


def _rss(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.M)
    return int(match.group(1)) * 1024 if match else 0


def _post(url: str, body: bytes, signed: bool = True) -> int:
    headers = {"Content-Type": "application/json"}
    if signed:
        digest = hmac.new(LINE_SECRET.encode(), body, hashlib.sha256).digest()
        headers["X-Line-Signature"] = base64.b64encode(digest).decode()
    return requests.post(
        f"{url}/webhooks/line/webhook", data=body, headers=headers, timeout=70
    ).status_code


@pytest.fixture(scope="module")
def memory_before(prod: Stack) -> dict[str, int]:
    """Each replica's RSS once it has answered, so a first answer's one-off growth is not counted.

    One request reaches one replica, so each replica is warmed on its own port: the first
    answers load TensorFlow's graphs and fill the NLU caches (about 190 MiB on 2026-12-03's CI),
    which is start-up cost, not a leak. The longest text is under the channel's 1,000-character
    limit, so it goes through the NLU (a longer one gets the too-long answer without it).
    """
    longest = ("情報銀行に血圧を預けたい。" * 80)[:990]
    for port in prod.stack.ports.rasa:
        replica = Resident(LinePlatform(f"http://127.0.0.1:{port}", prod.line.fake))
        for text in ("こんにちは", "情報銀行って何ですか？", longest):
            assert replica.say(text).texts, (port, text[:10])
    return {
        name: _rss(p.pid) for name, p in prod.stack.processes.items() if name.startswith("rasa")
    }


KINDS = st.sampled_from(["text", "postback", "sticker", "image", "unknown"])


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(text=TEXT, kind=KINDS)
def test_signed_events_with_hostile_text(
    prod: Stack, memory_before: dict[str, int], text: str, kind: str
) -> None:
    user = "U" + uuid.uuid4().hex
    line: LinePlatform = prod.line
    if kind == "text":
        event = line.text_event(user, text)
    elif kind == "postback":
        event = line.postback_event(user, text[:300])
    elif kind == "unknown":
        event = line.event(user, type="somethingNew", payload=text)
    else:
        event = line.event(user, type="message", message={"type": kind, "id": "1"})
    body = json.dumps({"destination": "U" + "0" * 32, "events": [event]}).encode()
    assert _post(prod.stack.public_url, body) in (200, 400)


@settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    body=st.one_of(
        JSON.map(lambda value: json.dumps(value).encode()),
        st.binary(max_size=3000),
        st.just(b'{"events": [' + b'{"type": "message"},' * 50_000 + b"{}]}"),
    ),
    signed=st.booleans(),
)
def test_malformed_huge_and_unsigned_bodies(
    prod: Stack, memory_before: dict[str, int], body: bytes, signed: bool
) -> None:
    status = _post(prod.stack.public_url, body, signed)
    assert status in (200, 400, 401, 413), status


def test_a_forged_postback_is_never_an_intent(prod: Stack, memory_before: dict[str, int]) -> None:
    resident = Resident(prod.line)  # no button was ever sent to this resident
    for data in (VITALS, '/give_consent{"offer_id": "../audit/verify"}', " " + VITALS):
        answer = resident.press(data)
        assert answer.texts, data
        assert not any("この内容で同意を記録してよろしいですか" in t for t in answer.texts), data


def test_a_replayed_old_event_is_not_answered(prod: Stack, memory_before: dict[str, int]) -> None:
    user = "U" + uuid.uuid4().hex
    old = prod.line.text_event(user, "こんにちは")
    old["timestamp"] = int((time.time() - 3600) * 1000)  # captured an hour ago, not a redelivery
    body = json.dumps({"destination": "U" + "0" * 32, "events": [old]}).encode()
    assert _post(prod.stack.public_url, body) == 200  # acknowledged, so LINE would not resend
    time.sleep(5)
    assert prod.line.replies_for(old["replyToken"]) == 0 and prod.line.pushes_to(user) == []


def test_both_replicas_survived_with_bounded_memory(
    prod: Stack, memory_before: dict[str, int]
) -> None:
    for name, before in memory_before.items():
        process = prod.stack.processes[name]
        assert process.poll() is None, f"{name} died"
        assert _rss(process.pid) - before < MEMORY_GROWTH_LIMIT, name
    assert Resident(prod.line).say("情報銀行って何ですか？").texts
    # Everything the assistant sent LINE in answer was valid for LINE's API.
    assert [c.problems for c in prod.line.fake.sent() if c.problems] == []
