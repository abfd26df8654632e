"""Issue 18 on LINE, end to end: the consultation memo as a Flex message the platform accepts.

A resident chooses a level-2 offer, answers 「まだ相談していない」 and presses 「先生に見せるメモ」
(each a signed postback of the previous answer's quick reply); the reply holds the memo as a Flex
message that the fake platform validates against LINE's OpenAPI description (no problems), with
a link to the memo's print page, which serves the memo.
"""

from __future__ import annotations

from typing import Any, Dict, List

import pytest
import requests

from tests.e2e.conftest import Assistant
from tests.e2e.test_line import (
    REPLY,
    body_of,
    calls_for,
    event,
    post,
    sign,
    text_event,
    user_id,
    webhook_schema,
)
from tests.line_fake import FakeLineApi, OpenApi

pytestmark = pytest.mark.e2e
_ = webhook_schema  # the fixture, used by name below
OFFER_TITLE = "市の保健指導（健診結果）"  # city_health_checkup, level 2


def press(
    assistant: Assistant,
    fake: FakeLineApi,
    schema: OpenApi,
    user: str,
    messages: List[Dict[str, Any]],
    label: str,
) -> List[Dict[str, Any]]:
    """Press the quick reply `label` of the last answer; return the next answer's messages."""
    items = messages[-1]["quickReply"]["items"]
    [data] = [i["action"]["data"] for i in items if i["action"]["label"] == label]
    postback = event("postback", user, postback={"data": data})
    body = body_of([postback], schema)
    assert post(assistant, body, sign(body)).status_code == 200
    [answer] = calls_for(fake, REPLY, postback["replyToken"])
    assert answer.problems == []
    return list(answer.body["messages"])


def test_the_flex_memo_is_accepted_and_links_its_page(
    assistant: Assistant, fake_line: FakeLineApi, webhook_schema: OpenApi
) -> None:
    user = user_id()
    asked = text_event(user, "同意の手続きをしたいです")
    body = body_of([asked], webhook_schema)
    assert post(assistant, body, sign(body)).status_code == 200
    [offers] = calls_for(fake_line, REPLY, asked["replyToken"])
    messages = list(offers.body["messages"])
    messages = press(assistant, fake_line, webhook_schema, user, messages, OFFER_TITLE)
    messages = press(assistant, fake_line, webhook_schema, user, messages, "まだ相談していない")
    messages = press(assistant, fake_line, webhook_schema, user, messages, "先生に見せるメモ")
    [flex] = [m for m in messages if m["type"] == "flex"]
    bubble = flex["contents"]
    shown = str(bubble["body"])
    assert "かかりつけ医への相談メモ" in shown and "レベル2" in shown and "同意の続き" in shown
    assert user not in str(flex)  # no LINE user id in the memo
    [button] = bubble["footer"]["contents"]
    url = button["action"]["uri"]
    assert url.startswith(f"{assistant.url}/webhooks/socketio/memo/")
    page = requests.get(url, timeout=10)
    assert page.status_code == 200 and "相談メモ" in page.text
    # The two choices are still there after the memo.
    labels = [i["action"]["label"] for i in messages[-1]["quickReply"]["items"]]
    assert "このまま進める" in labels
