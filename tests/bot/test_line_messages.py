"""The LINE channel's rules as pure functions, and what they produce checked against LINE's
own OpenAPI description."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from pathlib import Path
from typing import Any, Dict, List

import pytest
import yaml

from bot.channels.guard import typed_text
from bot.channels.line import event_text
from bot.channels.line_messages import (
    BUBBLE_LINES,
    MAX_MESSAGES,
    postback_key,
    postback_payload,
    rich_menu_payloads,
    screen_lines,
    sign_postback,
    signature_is_valid,
    split_bubbles,
    split_text,
    to_line_messages,
    verify_postback,
)
from tests.line_fake import SPECS, OpenApi, documented_limit_problems

SECRET = "channel-secret"
DOMAIN = Path(__file__).resolve().parents[2] / "domain.yml"
PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")


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
    text = "文。" * 15_000  # 30,000 characters: far beyond five screens, only in theory
    batches = to_line_messages([{"text": text}])
    assert len(batches[0]) == 5 and all(len(b) <= 5 for b in batches)
    assert "".join(m["text"] for b in batches for m in b) == text
    for batch in batches:
        body = {"to": "U" + "0" * 32, "messages": batch}
        assert (
            messaging_api.errors(body, messaging_api.request_schema("/v2/bot/message/push")) == []
        )
        assert documented_limit_problems(body) == []


# ---- bubbles of a phone screen (issue 16) ---------------------------------------------------


def test_screen_lines_count_wrapped_lines_and_line_breaks() -> None:
    assert screen_lines("あ" * 16) == 1
    assert screen_lines("あ" * 17) == 2
    assert screen_lines("a" * 32) == 1  # half-width: half a cell
    assert screen_lines("一\n\n二") == 3  # a blank line is a line on the screen


def lines_text(count: int) -> str:
    return "\n".join(f"{i}行目の説明です。" for i in range(count))


def test_a_long_answer_is_split_into_bubbles_of_a_phone_screen(messaging_api: OpenApi) -> None:
    text = lines_text(45)  # 45 short lines: more than two screens
    [batch] = to_line_messages([{"text": text}])
    assert len(batch) == 3
    bubbles = [m["text"] for m in batch]
    assert all(screen_lines(b) <= BUBBLE_LINES for b in bubbles)
    assert "\n".join(bubbles) == text  # split at line ends: nothing lost, nothing cut
    body = {"replyToken": "t", "messages": batch}
    assert messaging_api.errors(body, messaging_api.request_schema("/v2/bot/message/reply")) == []


def test_a_short_answer_stays_one_bubble() -> None:
    [batch] = to_line_messages([{"text": lines_text(BUBBLE_LINES)}])
    assert len(batch) == 1


def test_a_long_line_is_split_at_sentence_ends_never_inside_one() -> None:
    sentence = "これは、とても長い段落の中の、一つの文です。"  # 22 characters
    text = sentence * 30  # one line of 660 characters
    parts = split_bubbles(text)
    assert len(parts) >= 2
    assert "".join(p for _, p in parts) == text
    assert all(p.endswith("。") and screen_lines(p) <= BUBBLE_LINES for _, p in parts)


def test_a_sentence_longer_than_a_screen_is_never_cut() -> None:
    sentence = "区切りのない" * 70 + "。"  # 421 characters, one sentence
    [batch] = to_line_messages([{"text": "前の文。\n" + sentence}])
    assert [m["text"] for m in batch] == ["前の文。", sentence]


def test_bubbles_keep_blank_lines_inside_and_drop_them_at_the_edges() -> None:
    text = lines_text(15) + "\n\n" + lines_text(15)
    parts = split_bubbles(text)
    assert "".join(sep + p for sep, p in parts) == text
    assert all(p and not p.startswith("\n") and not p.endswith("\n") for _, p in parts)


def test_more_than_five_screens_become_at_most_five_bubbles_in_the_reply() -> None:
    answers = [{"text": lines_text(18)} for _ in range(7)]  # 7 answers of almost a screen
    batches = to_line_messages(answers)
    assert [len(b) for b in batches] == [MAX_MESSAGES]


def test_bubbles_leave_room_for_a_flex_memo_in_the_reply() -> None:
    memo = {
        "title": "メモ",
        "intro": "前書き",
        "sections": [],
        "terms": "約款",
        "date": "日付",
        "note": "注記",
        "link_label": "開く",
    }
    answers: List[Dict[str, Any]] = [{"text": lines_text(18)} for _ in range(6)]
    answers.append({"custom": {"doctor_memo": memo}})
    batches = to_line_messages(answers)
    assert [len(b) for b in batches] == [MAX_MESSAGES]
    assert batches[0][-1]["type"] == "flex"


def domain_texts() -> List[tuple[str, bool, str, List[Dict[str, Any]]]]:
    """(response, plain, text with placeholders filled, buttons) for every response variation."""
    domain = yaml.safe_load(DOMAIN.read_text(encoding="utf-8"))
    found = []
    for name, variations in domain["responses"].items():
        for variation in variations:
            text = PLACEHOLDER.sub("〇〇〇〇", str(variation.get("text") or ""))
            plain = any(c.get("name") == "plain_japanese" for c in variation.get("condition") or [])
            if text or variation.get("buttons"):
                found.append((name, plain, text, list(variation.get("buttons") or [])))
    return found


def test_every_answer_fits_five_phone_screens_with_all_its_buttons(
    messaging_api: OpenApi,
) -> None:
    """Each response alone: one reply of at most 5 screen-sized bubbles, every button offered."""
    wrong = []
    for name, plain, text, buttons in domain_texts():
        message: Dict[str, Any] = {"text": text, "buttons": buttons}
        batches = to_line_messages([message])
        if len(batches) != 1:
            wrong.append((name, plain, "batches"))
            continue
        [batch] = batches
        if any(screen_lines(m["text"]) > BUBBLE_LINES for m in batch if m["type"] == "text"):
            wrong.append((name, plain, "bubble longer than a screen"))
        if buttons:
            items = batch[-1].get("quickReply", {}).get("items", [])
            offered = [(i["action"]["label"], i["action"]["data"]) for i in items]
            if offered != [(b["title"], b["payload"]) for b in buttons]:
                wrong.append((name, plain, "buttons not all quick replies as they are"))
        body = {"replyToken": "t", "messages": batch}
        schema = messaging_api.request_schema("/v2/bot/message/reply")
        if messaging_api.errors(body, schema) or documented_limit_problems(body):
            wrong.append((name, plain, "LINE would refuse it"))
    assert wrong == []


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
        ({"type": "unfollow"}, "/line_unfollowed"),  # issue 17: ends notice subscriptions
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
