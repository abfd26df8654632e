"""The LINE channel's rules as pure functions, and what they produce checked against LINE's
own OpenAPI description."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

import pytest

from bot.channels.guard import typed_text
from bot.channels.line import event_text
from bot.channels.line_messages import (
    postback_key,
    postback_payload,
    rich_menu_payloads,
    sign_postback,
    signature_is_valid,
    split_text,
    to_line_messages,
    verify_postback,
)
from tests.line_fake import SPECS, OpenApi, documented_limit_problems

SECRET = "channel-secret"


@pytest.fixture(scope="module")
def messaging_api() -> OpenApi:
    return OpenApi(SPECS / "messaging-api.yml")


def sign(body: bytes, secret: str = SECRET) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


@pytest.mark.parametrize(
    ("body", "signature", "valid"),
    [
        (b'{"events":[]}', sign(b'{"events":[]}'), True),
        (b'{"events":[]}', None, False),
        (b'{"events":[]}', "", False),
        (b'{"events":[]}', sign(b'{"events":[]}', "other-secret"), False),
        (b'{"events": []}', sign(b'{"events":[]}'), False),  # re-encoded body
        (b'{"events":[]}', "not base64 at all ✗", False),
    ],
)
def test_signature(body: bytes, signature: str | None, valid: bool) -> None:
    assert signature_is_valid(SECRET, body, signature) is valid


def test_no_secret_means_nothing_is_valid() -> None:
    assert not signature_is_valid("", b"{}", sign(b"{}", ""))


@pytest.mark.parametrize(
    ("text", "safe"),
    [
        ("/affirm", "／affirm"),
        ('/give_consent{"offer_id": "x"}', '／give_consent{"offer_id": "x"}'),
        ("情報銀行って何？", "情報銀行って何？"),
        ("a/b", "a/b"),
    ],
)
def test_typed_text_is_never_an_intent(text: str, safe: str) -> None:
    assert typed_text(text) == safe


@pytest.mark.parametrize(
    ("data", "payload"),
    [
        ("/ask_info_bank", "/ask_info_bank"),
        ('/give_consent{"offer_id": "a_b"}', '/give_consent{"offer_id": "a_b"}'),
        ("ask_info_bank", None),
        ("/Ask", None),
        ("/greet\n/affirm", None),
        ("/x{" + "a" * 300 + "}", None),
    ],
)  # fmt: skip
def test_postback_payload_accepts_only_our_buttons(data: str, payload: str | None) -> None:
    assert postback_payload(data) == payload


def test_split_text_keeps_sentences_under_the_limit() -> None:
    text = "あいうえお。" * 2000  # 12,000 characters
    parts = split_text(text)
    assert "".join(parts) == text
    assert all(len(p) <= 5000 for p in parts)
    assert all(p.endswith("。") for p in parts)


def test_split_text_cuts_a_sentence_longer_than_the_limit() -> None:
    parts = split_text("あ" * 12_000)
    assert [len(p) for p in parts] == [5000, 5000, 2000]


def test_many_answers_are_merged_into_five_messages(messaging_api: OpenApi) -> None:
    answers = [{"text": f"答え{i}です。"} for i in range(9)]
    [batch] = to_line_messages(answers)
    assert len(batch) == 5
    assert "".join(m["text"] for m in batch).replace("\n", "") == "".join(
        a["text"] for a in answers
    )
    body = {"replyToken": "t", "messages": batch}
    assert messaging_api.errors(body, messaging_api.request_schema("/v2/bot/message/reply")) == []


def test_very_long_answers_become_further_batches(messaging_api: OpenApi) -> None:
    batches = to_line_messages([{"text": "文。" * 15_000}])  # 30,000 characters
    assert [len(b) for b in batches] == [5, 1]
    for batch in batches:
        body = {"to": "U" + "0" * 32, "messages": batch}
        assert (
            messaging_api.errors(body, messaging_api.request_schema("/v2/bot/message/push")) == []
        )
        assert documented_limit_problems(body) == []


def test_buttons_become_a_quick_reply_on_the_last_message(messaging_api: OpenApi) -> None:
    buttons = [
        {"title": f"とても長いボタンの名前です番号{i:02d}", "payload": f"/help{i}"}
        for i in range(20)
    ]
    buttons = [{"title": b["title"], "payload": "/help"} for b in buttons]
    buttons.append({"title": "長すぎる", "payload": '/x{"a": "' + "b" * 400 + '"}'})
    [batch] = to_line_messages([{"text": "一つ目"}, {"text": "二つ目", "buttons": buttons}])
    assert "quickReply" not in batch[0]
    items = batch[-1]["quickReply"]["items"]
    assert len(items) == 13
    assert all(len(i["action"]["label"]) <= 20 for i in items)
    assert all(len(i["action"]["data"].encode()) <= 300 for i in items)
    body = {"replyToken": "t", "messages": batch}
    assert messaging_api.errors(body, messaging_api.request_schema("/v2/bot/message/reply")) == []
    assert documented_limit_problems(body) == []


def test_nothing_to_say_sends_nothing() -> None:
    assert to_line_messages([]) == []


@pytest.mark.parametrize(
    ("event", "text"),
    [
        ({"type": "message", "message": {"type": "text", "text": "こんにちは"}}, "こんにちは"),
        ({"type": "message", "message": {"type": "text", "text": "/affirm"}}, "／affirm"),
        ({"type": "message", "message": {"type": "text", "text": "あ" * 1001}}, "/message_too_long"),  # noqa: E501
        ({"type": "message", "message": {"type": "text", "text": "   "}}, "/non_text_message"),
        ({"type": "message", "message": {"type": "sticker"}}, "/non_text_message"),
        ({"type": "message", "message": {"type": "image"}}, "/non_text_message"),
        ({"type": "message", "message": {"type": "location"}}, "/non_text_message"),
        ({"type": "postback", "postback": {"data": "/ask_data_levels"}}, "/ask_data_levels"),
        ({"type": "postback", "postback": {"data": "/affirm\n/x"}}, "／affirm\n/x"),
        ({"type": "follow"}, "/greet"),
        ({"type": "unfollow"}, None),
        ({"type": "memberJoined"}, None),
        ({"type": "somethingNew"}, None),
    ],
)  # fmt: skip
def test_event_text(event: dict, text: str | None) -> None:
    assert event_text(event) == text


def test_quick_reply_data_is_signed_and_kept_under_the_limit(messaging_api: OpenApi) -> None:
    key = postback_key("k")
    buttons = [
        {"title": "短い", "payload": "/help"},
        # fits unsigned (290 bytes) but not with its signature: left out
        {"title": "長い", "payload": '/x{"a": "' + "b" * 279 + '"}'},
    ]
    [batch] = to_line_messages(
        [{"text": "どうぞ", "buttons": buttons}], lambda p: sign_postback(key, "s", p)
    )
    [item] = batch[-1]["quickReply"]["items"]
    assert item["action"]["data"] == sign_postback(key, "s", "/help")
    assert verify_postback(key, "s", item["action"]["data"]) == "/help"
    body = {"replyToken": "t", "messages": batch}
    assert messaging_api.errors(body, messaging_api.request_schema("/v2/bot/message/reply")) == []


def test_the_rich_menu_allow_list_is_its_entity_free_payloads() -> None:
    payloads = rich_menu_payloads()
    assert "/give_consent" in payloads and len(payloads) == 7
    assert all(re.fullmatch(r"/[a-z_]+", p) for p in payloads)
