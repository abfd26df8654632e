"""Issue 19: every channel masks typed text at intake; offered payloads pass untouched.

LINE and the web chat are driven through their own handlers (the harnesses of
test_channel_line.py and test_webchat_channel.py), REST through the route Rasa's channel
registers: what each hands Rasa is what Rasa would parse, store and log.
"""

from __future__ import annotations

import json
import logging
import threading
from types import SimpleNamespace
from typing import Any, Dict, List

import pytest
from rasa.core.channels.channel import UserMessage
from rasa.shared.core.training_data.story_reader.yaml_story_reader import YAMLStoryReader
from rasa.shared.nlu.constants import ENTITIES, INTENT, INTENT_NAME_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message

import bot.channels.guard
import bot.channels.rest
from bot.channels.guard import intake, rasa_texts, removal_notice
from bot.channels.rest import RestInput
from bot.privacy import DetailKind, Masked, mask_personal
from tests.bot.test_channel_line import Line, event, postback, user
from tests.bot.test_channel_line import settings as line_settings
from tests.bot.test_webchat_channel import WebChat, offer_levels
from tests.bot.test_webchat_channel import settings as webchat_settings

# One message with several kinds of detail, and the raw pieces that must not reach Rasa.
TYPED = "山田太郎です。電話は047-123-4567、血圧は150/95です。メールは taro@example.jp です"
RAW = ["山田", "太郎", "047-123-4567", "150/95", "taro@example.jp"]
KINDS = {"name", "phone", "health_value", "email"}


def rasa_intent(text: str) -> tuple[str | None, List[Dict[str, Any]]]:
    """The intent and entities Rasa takes from `text` without its NLU (None: the NLU decides)."""
    parsed = YAMLStoryReader.unpack_regex_message(Message({TEXT: UserMessage(text).text}))
    intent = parsed.get(INTENT)
    return (intent.get(INTENT_NAME_KEY) if intent else None), list(parsed.get(ENTITIES) or [])


def notice_kinds(text: str) -> set[str]:
    """The kinds a `/personal_detail_removed` text names, as Rasa parses it."""
    intent, entities = rasa_intent(text)
    assert intent == "personal_detail_removed", text
    assert {e["entity"] for e in entities} == {"detail_kind"}
    return {str(e["value"]) for e in entities}


def assert_taken_in(texts: List[str]) -> None:
    """Rasa got the notice naming the kinds, then the masked text, and none of the raw pieces."""
    assert len(texts) == 2, texts
    notice, masked = texts
    assert notice_kinds(notice) == KINDS
    assert "血圧" in masked  # the words the NLU needs stay
    assert rasa_intent(masked)[0] is None  # still text, not an intent
    assert [raw for raw in RAW if raw in notice + masked] == []


class MaskCalls:
    """The real `mask_personal`, recording each text it was given and the thread it ran on."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.texts: List[str] = []
        self.threads: List[int] = []
        monkeypatch.setattr(bot.channels.guard, "mask_personal", self)

    def __call__(self, text: str) -> Masked:
        self.texts.append(text)
        self.threads.append(threading.get_ident())
        return mask_personal(text)


@pytest.fixture
def mask_calls(monkeypatch: pytest.MonkeyPatch) -> MaskCalls:
    return MaskCalls(monkeypatch)


# -- the shared step ------------------------------------------------------------------------------


def test_intake_masks_and_keeps_text_from_becoming_an_intent() -> None:
    taken = intake(" /" + TYPED)
    assert taken.text.startswith("／")
    assert {k.value for k in taken.kinds} == KINDS
    assert [raw for raw in RAW if raw in taken.text] == []


def test_nothing_removed_means_the_text_alone() -> None:
    taken = intake("血圧はレベルいくつですか")
    assert taken.kinds == frozenset()
    assert rasa_texts(taken) == ["血圧はレベルいくつですか"]
    assert removal_notice([]) is None


def test_the_notice_names_each_kind_once_in_a_stable_order() -> None:
    notice = removal_notice([DetailKind.PHONE, DetailKind.NAME, DetailKind.PHONE])
    assert notice == '/personal_detail_removed{"detail_kind": ["name", "phone"]}'
    assert notice_kinds(notice) == {"name", "phone"}


# -- LINE -----------------------------------------------------------------------------------------


async def test_line_masks_typed_text_and_sends_the_notice_first() -> None:
    line = Line()
    assert await line.handle(event(user(), message={"type": "text", "id": "1", "text": TYPED}))
    assert_taken_in(line.received)
    [(kind, _, messages)] = line.api.calls  # one reply holds both answers
    assert kind == "reply" and len(messages) == 2


async def test_line_logs_none_of_the_typed_text(caplog: pytest.LogCaptureFixture) -> None:
    line = Line()
    with caplog.at_level(logging.DEBUG):
        await line.handle(event(user(), message={"type": "text", "id": "1", "text": TYPED}))
    assert [raw for raw in RAW if raw in caplog.text] == []


async def test_line_passes_the_assistants_own_postback_untouched() -> None:
    line = Line()
    resident = user()
    line.buttons = [{"title": "記録する", "payload": '/affirm{"consent_choice": "proceed"}'}]
    await line.handle(event(resident))
    [data] = line.sent_data()
    line.received.clear()
    assert await line.handle(postback(resident, data))
    assert line.received == ['/affirm{"consent_choice": "proceed"}']


async def test_line_masks_a_postback_it_did_not_sign_like_typed_text() -> None:
    line = Line()
    assert await line.handle(postback(user(), TYPED))
    assert_taken_in(line.received)


async def test_line_refuses_a_rate_limited_message_without_masking_it(
    mask_calls: MaskCalls,
) -> None:
    line = Line(line_settings(rate_limit_messages=1))
    resident = user()
    await line.handle(event(resident, message={"type": "text", "id": "1", "text": "こんにちは"}))
    await line.handle(event(resident, message={"type": "text", "id": "2", "text": TYPED}))
    assert line.received == ["こんにちは", "/too_many_messages"]
    assert mask_calls.texts == ["こんにちは"]  # the refused message was never masked


async def test_line_masks_off_the_event_loop(mask_calls: MaskCalls) -> None:
    line = Line()
    await line.handle(event(user(), message={"type": "text", "id": "1", "text": TYPED}))
    assert mask_calls.texts == [TYPED]
    assert mask_calls.threads != [threading.get_ident()]


# -- web chat -------------------------------------------------------------------------------------


async def test_webchat_masks_typed_text_and_sends_the_notice_first() -> None:
    chat = WebChat()
    assert await chat.connect("s1")
    await chat.utter("s1", {"message": TYPED})
    assert_taken_in(chat.texts)
    assert {m.output_channel for m in chat.received} == {chat.received[0].output_channel}


async def test_webchat_passes_an_offered_payload_untouched() -> None:
    chat = WebChat(reply=offer_levels)
    assert await chat.connect("s1")
    await chat.utter("s1", {"message": "こんにちは"})
    await chat.utter("s1", {"payload": "/ask_data_levels"})
    assert chat.texts == ["こんにちは", "/ask_data_levels"]


async def test_webchat_masks_a_payload_that_was_not_offered() -> None:
    chat = WebChat()
    assert await chat.connect("s1")
    await chat.utter("s1", {"payload": TYPED})
    assert_taken_in(chat.texts)


async def test_webchat_rate_limit_notice_replaces_the_message_and_its_notice() -> None:
    chat = WebChat(webchat_settings(rate_limit_messages=1))
    assert await chat.connect("s1")
    await chat.utter("s1", {"message": "こんにちは"})
    await chat.utter("s1", {"message": TYPED})
    assert chat.texts == ["こんにちは", "/too_many_messages"]


async def test_webchat_refuses_a_rate_limited_message_without_masking_it(
    mask_calls: MaskCalls,
) -> None:
    chat = WebChat(webchat_settings(rate_limit_messages=1))
    assert await chat.connect("s1")
    await chat.utter("s1", {"message": "こんにちは"})
    await chat.utter("s1", {"message": TYPED})
    assert chat.texts == ["こんにちは", "/too_many_messages"]
    assert mask_calls.texts == ["こんにちは"]


async def test_webchat_masks_off_the_event_loop(mask_calls: MaskCalls) -> None:
    chat = WebChat()
    assert await chat.connect("s1")
    await chat.utter("s1", {"message": TYPED})
    assert mask_calls.texts == [TYPED]
    assert mask_calls.threads != [threading.get_ident()]


# -- REST -----------------------------------------------------------------------------------------


class FakeRequest(SimpleNamespace):
    """What Rasa's REST handler reads of a Sanic request; shown as Sanic shows one (no body)."""

    def __repr__(self) -> str:
        return "<Request: POST /webhooks/rest/webhook>"


class Rest:
    """The REST channel's webhook route, called as Sanic would, with a recording Rasa."""

    def __init__(self) -> None:
        self.received: List[UserMessage] = []
        blueprint = RestInput().blueprint(self._on_new_message)
        [self.webhook] = [r.handler for r in blueprint._future_routes if r.uri == "/webhook"]
        [self.check] = [m.middleware for m in blueprint._future_middleware]

    async def _on_new_message(self, message: UserMessage) -> None:
        self.received.append(message)
        await message.output_channel.send_text_message(message.sender_id or "", "どうぞ")

    async def post(self, message: str, **body: Any) -> List[Dict[str, Any]]:
        payload = {"sender": "rest-sender", "message": message, **body}
        request = FakeRequest(
            json=payload,
            body=json.dumps(payload).encode(),
            method="POST",
            args={},
            headers={},
            ctx=SimpleNamespace(),
        )
        assert await self.check(request) is None  # the body check, as Sanic runs it first
        answer = await self.webhook(request)
        return list(json.loads(answer.body))

    @property
    def texts(self) -> List[str]:
        return [m.text or "" for m in self.received]


async def test_rest_masks_text_and_sends_the_notice_first() -> None:
    rest = Rest()
    answers = await rest.post(TYPED, metadata={"m": 1})
    assert_taken_in(rest.texts)
    assert len(answers) == 2  # the notice's answer and the message's, in one response
    assert {m.sender_id for m in rest.received} == {"rest-sender"}
    assert all(m.metadata == {"m": 1} for m in rest.received)


async def test_rest_masks_off_the_event_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    threads: List[int] = []

    def recording(text: str) -> Masked:
        threads.append(threading.get_ident())
        return mask_personal(text)

    monkeypatch.setattr(bot.channels.rest, "mask_personal", recording)
    rest = Rest()
    await rest.post(TYPED)
    assert_taken_in(rest.texts)
    assert threads and threading.get_ident() not in threads


async def test_rest_passes_an_intent_as_before() -> None:
    rest = Rest()
    await rest.post(' /give_consent{"offer_id": "city_health_vitals"}')
    assert rest.texts == ['/give_consent{"offer_id": "city_health_vitals"}']


async def test_rest_masks_the_entity_values_of_an_intent() -> None:
    rest = Rest()
    await rest.post('/inform{"note": "山田太郎です。電話は047-123-4567", "level": "2"}')
    notice, text = rest.texts
    assert notice_kinds(notice) == {"name", "phone"}
    intent, entities = rasa_intent(text)
    assert intent == "inform"
    values = {e["entity"]: e["value"] for e in entities}
    assert values["level"] == "2"
    assert "［電話番号］" in values["note"] and "［名前］" in values["note"]
    assert [raw for raw in RAW if raw in text] == []


async def test_rest_masks_what_rasa_would_not_read_as_an_intent() -> None:
    rest = Rest()
    await rest.post('/山田太郎です{"a": 1} 電話は047-123-4567')
    assert [raw for raw in RAW if raw in "".join(rest.texts)] == []


async def test_rest_requests_do_not_share_what_was_removed() -> None:
    rest = Rest()
    await rest.post(TYPED)
    await rest.post("血圧はレベルいくつですか")
    assert rest.texts[-1] == "血圧はレベルいくつですか"
    assert len(rest.texts) == 3


async def test_rest_logs_none_of_the_typed_text_when_rasa_fails(
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    """Rasa's handler logs the message it handed on when that fails: only the masked one."""

    async def failing(message: UserMessage) -> None:
        raise RuntimeError("the processor failed")

    blueprint = RestInput().blueprint(failing)
    [webhook] = [r.handler for r in blueprint._future_routes if r.uri == "/webhook"]
    request = FakeRequest(
        json={"sender": "s", "message": TYPED}, args={}, headers={}, ctx=SimpleNamespace()
    )
    with caplog.at_level(logging.DEBUG):
        await webhook(request)
    logged = caplog.text + "".join(capsys.readouterr())  # Rasa's structlog writes to the console
    assert "rest.message.received.failure" in logged
    assert [raw for raw in RAW if raw in logged] == []


@pytest.mark.parametrize(
    "payload",
    [
        '/withdraw_consent{"consent_id": "0c2f9a4e-1234-4d5e-8a9b-123456789012"}',
        '/give_consent{"offer_id": "city_health_vitals"}',
    ],
)
def test_rest_keeps_the_assistants_own_ids_in_button_payloads(payload: str) -> None:
    from bot.channels.rest import mask_intent_message

    assert mask_intent_message(payload).text == payload


def test_rest_still_masks_a_phone_number_in_an_entity() -> None:
    from bot.channels.rest import mask_intent_message

    masked = mask_intent_message('/inform{"x": "090-1234-5678"}').text
    assert "1234" not in masked
