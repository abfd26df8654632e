"""Hostile input over the REST channel: random text, huge and malformed bodies — never a 5xx.

Hypothesis generates Japanese, emoji and control-character text, arbitrary JSON and raw bytes;
the assistant must answer each with 200 or a 4xx, and still answer a resident afterwards.
"""

from __future__ import annotations

import json
import uuid

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.e2e.conftest import Assistant

pytestmark = pytest.mark.e2e

JAPANESE = ["情報銀行", "血圧", "同意したい", "かかりつけ医", "レベル3", "／greet", "/greet", "ｶﾞｷﾞ"]
TEXT = st.one_of(
    st.text(st.characters(codec="utf-8"), max_size=300),
    st.lists(st.sampled_from(JAPANESE) | st.text(max_size=5), max_size=40).map("".join),
    st.text(st.characters(min_codepoint=0x1F300, max_codepoint=0x1FAFF), max_size=50),
    st.text(st.characters(max_codepoint=0x1F), max_size=50),
)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=12,
)
BODIES = st.one_of(
    st.builds(lambda m: {"sender": f"fuzz-{uuid.uuid4().hex[:8]}", "message": m}, TEXT).map(
        lambda b: json.dumps(b).encode()
    ),
    JSON.map(lambda value: json.dumps(value).encode()),
    st.binary(max_size=2000),
    st.just(json.dumps({"sender": "fuzz-huge", "message": "あ" * 200_000}).encode()),
)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(body=BODIES)
def test_rest_channel_never_answers_5xx(assistant: Assistant, body: bytes) -> None:
    response = requests.post(
        f"{assistant.url}/webhooks/rest/webhook",
        data=body,
        headers={"Content-Type": "application/json"},
        timeout=60,
    )
    assert response.status_code < 500, (response.status_code, body[:200])


def test_the_assistant_still_answers_after_the_fuzzing(assistant: Assistant) -> None:
    assert assistant.say(f"after-fuzz-{uuid.uuid4().hex[:6]}", "情報銀行って何ですか？")
