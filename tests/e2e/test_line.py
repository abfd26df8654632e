"""The LINE channel end to end: signed webhooks in, Messaging API calls out (to a local fake
that checks each against LINE's OpenAPI description)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from typing import Any, Dict, List

import pytest
import requests

from tests.e2e.conftest import EXPIRED_REPLY_TOKEN, LINE_SECRET, Assistant
from tests.line_fake import SPECS, Call, FakeLineApi, OpenApi

pytestmark = pytest.mark.e2e
REPLY = "/v2/bot/message/reply"
PUSH = "/v2/bot/message/push"
WAIT_SECONDS = 30.0


@pytest.fixture(scope="module")
def webhook_schema() -> OpenApi:
    return OpenApi(SPECS / "webhook.yml")


def user_id() -> str:
    return "U" + uuid.uuid4().hex


def event(kind: str, user: str, **fields: Any) -> Dict[str, Any]:
    base = {
        "type": kind,
        "mode": "active",
        "timestamp": int(time.time() * 1000),
        "source": {"type": "user", "userId": user},
        "webhookEventId": uuid.uuid4().hex.upper()[:26],
        "deliveryContext": {"isRedelivery": False},
    }
    if kind in ("message", "postback", "follow"):
        base["replyToken"] = uuid.uuid4().hex
    return {**base, **fields}


def text_event(user: str, text: str, **fields: Any) -> Dict[str, Any]:
    message = {"type": "text", "id": str(uuid.uuid4().int)[:18], "text": text, "quoteToken": "q"}
    return event("message", user, message=message, **fields)


def body_of(events: List[Dict[str, Any]], schema: OpenApi) -> bytes:
    body = {"destination": "U" + "0" * 32, "events": events}
    assert schema.component_errors(body, "CallbackRequest") == []  # a body LINE could send
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def sign(body: bytes) -> str:
    digest = hmac.new(LINE_SECRET.encode(), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def post(assistant: Assistant, body: bytes, signature: str | None) -> requests.Response:
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["X-Line-Signature"] = signature
    return requests.post(
        f"{assistant.url}/webhooks/line/webhook", data=body, headers=headers, timeout=10
    )


def calls_for(fake: FakeLineApi, path: str, marker: str, count: int = 1) -> List[Call]:
    """Wait until `count` calls to `path` mention `marker` (a reply token or user id)."""
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        found = [c for c in fake.sent(path) if marker in json.dumps(c.body)]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def reply_texts(call: Call) -> str:
    return "\n".join(m.get("text", "") for m in call.body["messages"])


def test_signed_question_gets_exactly_one_valid_japanese_reply(
    assistant: Assistant, fake_line: FakeLineApi, webhook_schema: OpenApi
) -> None:
    user = user_id()
    question = text_event(user, "情報銀行って何？")
    body = body_of([question], webhook_schema)
    response = post(assistant, body, sign(body))
    assert response.status_code == 200
    [reply] = calls_for(fake_line, REPLY, question["replyToken"])
    assert reply.problems == []
    assert "情報銀行" in reply_texts(reply) and "同意した範囲" in reply_texts(reply)
    time.sleep(1)
    assert len(calls_for(fake_line, REPLY, question["replyToken"])) == 1
    assert not calls_for(fake_line, PUSH, user, 0)
    loading = [c for c in fake_line.sent("/v2/bot/chat/loading/start") if c.body["chatId"] == user]
    assert loading and loading[0].problems == []


@pytest.mark.parametrize("signature", [None, "", "c2lnbmF0dXJl", "re-encoded"])
def test_unsigned_or_wrongly_signed_webhooks_are_refused(
    assistant: Assistant, fake_line: FakeLineApi, webhook_schema: OpenApi, signature: str | None
) -> None:
    user = user_id()
    body = body_of([text_event(user, "情報銀行って何？")], webhook_schema)
    if signature == "re-encoded":  # signed, then re-serialised on the way
        signature = sign(body)
        body = json.dumps(json.loads(body), ensure_ascii=True).encode()
    response = post(assistant, body, signature)
    assert response.status_code == 401
    time.sleep(2)
    assert calls_for(fake_line, REPLY, user, 0) == [] and calls_for(fake_line, PUSH, user, 0) == []
    assert not [c for c in fake_line.sent("/v2/bot/chat/loading/start") if c.body["chatId"] == user]


def test_a_redelivered_event_is_answered_once(
    assistant: Assistant, fake_line: FakeLineApi, webhook_schema: OpenApi
) -> None:
    user = user_id()
    first = text_event(user, "こんにちは")
    again = {**first, "deliveryContext": {"isRedelivery": True}}
    for events in ([first], [again]):
        body = body_of(events, webhook_schema)
        assert post(assistant, body, sign(body)).status_code == 200
    time.sleep(3)
    assert len(calls_for(fake_line, REPLY, first["replyToken"])) == 1


def test_standby_events_are_skipped(
    assistant: Assistant, fake_line: FakeLineApi, webhook_schema: OpenApi
) -> None:
    user = user_id()
    standby = text_event(user, "こんにちは", mode="standby")
    body = body_of([standby], webhook_schema)
    assert post(assistant, body, sign(body)).status_code == 200
    time.sleep(3)
    assert calls_for(fake_line, REPLY, standby["replyToken"], 0) == []


def test_a_sticker_gets_a_polite_text_answer(
    assistant: Assistant, fake_line: FakeLineApi, webhook_schema: OpenApi
) -> None:
    sticker = event(
        "message",
        user_id(),
        message={"type": "sticker", "id": "1", "packageId": "446", "stickerId": "1988",
                 "stickerResourceType": "STATIC", "quoteToken": "q"},
    )  # fmt: skip
    body = body_of([sticker], webhook_schema)
    assert post(assistant, body, sign(body)).status_code == 200
    [reply] = calls_for(fake_line, REPLY, sticker["replyToken"])
    assert reply.problems == [] and "文字でのご質問" in reply_texts(reply)


def test_buttons_come_back_as_postbacks(
    assistant: Assistant, fake_line: FakeLineApi, webhook_schema: OpenApi
) -> None:
    user = user_id()
    follow = event("follow", user, follow={"isUnblocked": False})
    body = body_of([follow], webhook_schema)
    assert post(assistant, body, sign(body)).status_code == 200
    [greeting] = calls_for(fake_line, REPLY, follow["replyToken"])
    assert greeting.problems == [] and "情報銀行" in reply_texts(greeting)
    items = greeting.body["messages"][-1]["quickReply"]["items"]
    data = [i["action"]["data"] for i in items]
    # each button's data is its payload signed for this resident (bot/channels/line_messages.py)
    [levels] = [d for d in data if d.startswith("/ask_data_levels#")]
    postback = event("postback", user, postback={"data": levels})
    body = body_of([postback], webhook_schema)
    assert post(assistant, body, sign(body)).status_code == 200
    [answer] = calls_for(fake_line, REPLY, postback["replyToken"])
    assert "レベル0〜3" in reply_texts(answer)


def test_a_postback_the_assistant_did_not_sign_is_not_an_intent(
    assistant: Assistant, fake_line: FakeLineApi, webhook_schema: OpenApi
) -> None:
    user = user_id()
    forged = event("postback", user, postback={"data": '/ask_data_levels{"data_level": "3"}'})
    body = body_of([forged], webhook_schema)
    assert post(assistant, body, sign(body)).status_code == 200
    [reply] = calls_for(fake_line, REPLY, forged["replyToken"])
    assert "レベル3は、レベル2に含まれない" not in reply_texts(reply)  # utter_data_level_3


def test_typed_slash_text_is_not_an_intent(
    assistant: Assistant, fake_line: FakeLineApi, webhook_schema: OpenApi
) -> None:
    typed = text_event(user_id(), "/ask_data_levels")
    body = body_of([typed], webhook_schema)
    assert post(assistant, body, sign(body)).status_code == 200
    [reply] = calls_for(fake_line, REPLY, typed["replyToken"])
    assert "レベル0〜3に分けて扱います" not in reply_texts(reply)


@pytest.mark.parametrize("blank", [" ", "\u3000", "\t", "\n", "\u00a0", "\u200b", "\ufeff"])
def test_typed_slash_text_after_blanks_is_not_an_intent(
    assistant: Assistant, fake_line: FakeLineApi, webhook_schema: OpenApi, blank: str
) -> None:
    typed = text_event(user_id(), blank + "/ask_data_levels")
    body = body_of([typed], webhook_schema)
    assert post(assistant, body, sign(body)).status_code == 200
    [reply] = calls_for(fake_line, REPLY, typed["replyToken"])
    assert "レベル0〜3に分けて扱います" not in reply_texts(reply)


def test_an_old_event_that_is_not_a_redelivery_is_not_answered(
    assistant: Assistant, fake_line: FakeLineApi, webhook_schema: OpenApi
) -> None:
    user = user_id()
    old = text_event(user, "こんにちは", timestamp=int((time.time() - 600) * 1000))
    body = body_of([old], webhook_schema)
    assert post(assistant, body, sign(body)).status_code == 200  # acknowledged, not answered
    time.sleep(3)
    assert calls_for(fake_line, REPLY, old["replyToken"], 0) == []
    assert calls_for(fake_line, PUSH, user, 0) == []


def test_an_expired_reply_token_falls_back_to_push(
    assistant: Assistant, fake_line: FakeLineApi, webhook_schema: OpenApi
) -> None:
    user = user_id()
    late = text_event(user, "情報銀行って何？", replyToken=EXPIRED_REPLY_TOKEN)
    body = body_of([late], webhook_schema)
    assert post(assistant, body, sign(body)).status_code == 200
    [push] = calls_for(fake_line, PUSH, user)
    assert push.problems == [] and push.body["to"] == user
    assert "情報銀行" in reply_texts(push)


def test_malformed_signed_body_is_400(assistant: Assistant) -> None:
    body = b'{"events": "not a list"}'
    assert post(assistant, body, sign(body)).status_code == 400


def test_a_stale_event_is_answered_by_push(
    assistant: Assistant, fake_line: FakeLineApi, webhook_schema: OpenApi
) -> None:
    user = user_id()
    old = text_event(user, "こんにちは", timestamp=int((time.time() - 120) * 1000))
    old["deliveryContext"] = {"isRedelivery": True}
    body = body_of([old], webhook_schema)
    assert post(assistant, body, sign(body)).status_code == 200
    [push] = calls_for(fake_line, PUSH, user)
    assert push.problems == [] and calls_for(fake_line, REPLY, old["replyToken"], 0) == []


def test_events_of_one_webhook_are_answered_in_order(
    assistant: Assistant, fake_line: FakeLineApi, webhook_schema: OpenApi
) -> None:
    user = user_id()
    first, second = text_event(user, "こんにちは"), text_event(user, "さようなら")
    body = body_of([first, second], webhook_schema)
    assert post(assistant, body, sign(body)).status_code == 200
    [a] = calls_for(fake_line, REPLY, first["replyToken"])
    [b] = calls_for(fake_line, REPLY, second["replyToken"])
    assert fake_line.calls.index(a) < fake_line.calls.index(b)
    assert "こんにちは" in reply_texts(a) and "ご利用ありがとうございました" in reply_texts(b)
