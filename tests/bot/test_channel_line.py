"""The LINE channel's handling of one event, with a fake Messaging API and in-memory state:
old events, remembered event ids, and postbacks that must have been signed by the assistant."""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any, Dict, List

import pytest
from rasa.core.channels.channel import UserMessage

from bot.channels.line import LineInput, is_too_old
from bot.channels.line_messages import postback_key, sign_postback, verify_postback
from bot.settings import Settings
from bot.shared_state import MemoryState
from tests.bot.test_channel_guard import rasa_intent
from tests.line_fake import SPECS, OpenApi, documented_limit_problems

VITALS = '/give_consent{"offer_id": "city_health_vitals"}'
FORGED = '/give_consent{"offer_id": "../audit/verify"}'


def settings(**values: Any) -> Settings:
    base = {"subject_pseudonym_key": "test-pseudonym-key", "redis_url": ""}
    return Settings(_env_file=None, **{**base, **values})


class FakeApi:
    def __init__(self) -> None:
        self.calls: List[tuple[str, Any, List[Dict[str, Any]]]] = []

    async def reply(self, token: str, messages: List[Dict[str, Any]]) -> bool:
        self.calls.append(("reply", token, messages))
        return True

    async def push(self, to: str, messages: List[Dict[str, Any]]) -> bool:
        self.calls.append(("push", to, messages))
        return True

    async def show_loading(self, chat_id: str) -> None:
        return None


class Line:
    """One channel (a replica) with a fake API; Rasa answers with `buttons` if set."""

    def __init__(self, config: Settings | None = None, state: MemoryState | None = None):
        self.channel = LineInput(config or settings())
        self.api = FakeApi()
        self.state = state or MemoryState()
        self.channel._api = self.api  # type: ignore[assignment]
        self.channel._state = self.state
        self.received: List[str] = []
        self.buttons: List[Dict[str, str]] = []

    async def _on_new_message(self, message: UserMessage) -> None:
        self.received.append(message.text or "")
        await message.output_channel.send_text_with_buttons(
            message.sender_id or "", "どうぞ", self.buttons
        )

    async def handle(self, event: Dict[str, Any]) -> bool:
        return await self.channel._handle(event, self._on_new_message)

    def sent_data(self) -> List[str]:
        *_, messages = self.api.calls[-1]
        items = messages[-1]["quickReply"]["items"]
        return [i["action"]["data"] for i in items]


def event(user: str, age: float = 0.0, redelivery: bool = False, **fields: Any) -> Dict[str, Any]:
    return {
        "type": "message",
        "mode": "active",
        "timestamp": int((time.time() - age) * 1000),
        "source": {"type": "user", "userId": user},
        "webhookEventId": uuid.uuid4().hex.upper()[:26],
        "deliveryContext": {"isRedelivery": redelivery},
        "replyToken": uuid.uuid4().hex,
        "message": {"type": "text", "id": "1", "text": "こんにちは", "quoteToken": "q"},
        **fields,
    }


def postback(user: str, data: str) -> Dict[str, Any]:
    return event(user, type="postback", postback={"data": data}, message=None)


def user() -> str:
    return "U" + uuid.uuid4().hex


# -- old events (item 3) -------------------------------------------------------------------------


async def test_a_fresh_event_is_answered() -> None:
    line = Line()
    assert await line.handle(event(user()))
    assert line.received == ["こんにちは"] and line.api.calls[0][0] == "reply"


async def test_an_old_event_that_is_not_a_redelivery_is_not_answered(
    caplog: pytest.LogCaptureFixture,
) -> None:
    line = Line()
    resident = user()
    old = event(resident, age=600)
    with caplog.at_level(logging.INFO):
        assert await line.handle(old)  # acknowledged, so that it is not sent again
    assert line.received == [] and line.api.calls == []
    assert "too old" in caplog.text
    assert resident not in caplog.text and old["webhookEventId"] not in caplog.text


async def test_an_old_redelivery_is_answered_by_push() -> None:
    line = Line()
    assert await line.handle(event(user(), age=600, redelivery=True))
    assert line.received == ["こんにちは"] and line.api.calls[0][0] == "push"


@pytest.mark.parametrize(
    "changes",
    [
        {"timestamp": int((time.time() - 25 * 3600) * 1000),
         "deliveryContext": {"isRedelivery": True}},  # older than the remembered ids
        {"timestamp": None},
        {"timestamp": "1700000000000"},
        {"timestamp": True},
        {"deliveryContext": "yes", "timestamp": int((time.time() - 600) * 1000)},
    ],
)  # fmt: skip
async def test_events_without_a_usable_age_are_not_answered(changes: Dict[str, Any]) -> None:
    line = Line()
    assert await line.handle({**event(user()), **changes})
    assert line.received == [] and line.api.calls == []


def test_the_age_limits_come_from_the_settings() -> None:
    config = settings(line_event_max_age_seconds=60, line_event_remember_seconds=3600)
    now = time.time()
    assert not is_too_old(event("U", age=30), config, now)
    assert is_too_old(event("U", age=90), config, now)
    assert not is_too_old(event("U", age=90, redelivery=True), config, now)
    assert is_too_old(event("U", age=4000, redelivery=True), config, now)


# -- event ids remembered a day (item 3) ---------------------------------------------------------


async def test_an_answered_event_id_is_remembered_for_a_day() -> None:
    line = Line()
    first = event(user())
    assert await line.handle(first)
    status, until = line.state._claims[first["webhookEventId"]]
    assert status == "done" and until - time.monotonic() > 86_000
    again = {**first, "deliveryContext": {"isRedelivery": True}}
    assert await line.handle(again)
    assert line.received == ["こんにちは"]  # once


async def test_the_claim_while_answering_stays_short() -> None:
    line = Line(settings(line_event_claim_seconds=5))
    seen: List[float] = []

    async def look(message: UserMessage) -> None:
        [(_, until)] = line.state._claims.values()
        seen.append(until - time.monotonic())

    first = event(user())
    await line.channel._handle(first, look)
    assert seen and seen[0] <= 5


class DyingApi(FakeApi):
    """LINE as a replica sees it when it dies after Rasa answered, before LINE had the answer."""

    async def reply(self, token: str, messages: List[Dict[str, Any]]) -> bool:
        raise RuntimeError("the replica died")


async def died_before_sending(
    shared: MemoryState, config: Settings | None = None
) -> Dict[str, Any]:
    """An event a replica on `shared` took to Rasa, then died before LINE had the answer."""
    dying = Line(config, state=shared)
    dying.channel._api = DyingApi()  # type: ignore[assignment]
    first = event(user())
    assert not await dying.handle(first)  # not acknowledged: LINE delivers it again
    assert dying.received == ["こんにちは"]
    return first


async def test_a_replica_that_dies_before_sending_leaves_its_answer_to_the_next() -> None:
    shared = MemoryState()
    survivor = Line(state=shared)
    first = await died_before_sending(shared)
    again = {**first, "deliveryContext": {"isRedelivery": True}}
    assert await survivor.handle(again)
    assert survivor.received == []  # Rasa is not asked a turn it has already taken
    [(_, _, messages)] = survivor.api.calls
    assert messages[0]["text"] == "どうぞ"
    assert await survivor.handle(again) and len(survivor.api.calls) == 1  # done: skipped


async def test_an_answer_line_has_is_not_kept() -> None:
    line = Line()
    assert await line.handle(event(user()))
    assert line.received == ["こんにちは"] and len(line.api.calls) == 1
    assert not line.state._kept  # the receipt codes an answer may carry leave no copy behind


async def test_an_answer_never_sent_is_kept_as_long_as_the_event_is_remembered() -> None:
    shared = MemoryState()
    first = await died_before_sending(shared, settings(line_event_remember_seconds=600))
    [(key, (_, until))] = shared._kept.items()
    assert 590 < until - time.monotonic() <= 600
    assert first["webhookEventId"] in key  # the event id and a pseudonym, never the LINE id
    assert first["source"]["userId"] not in key


async def test_a_kept_answer_goes_only_to_the_resident_it_was_for() -> None:
    shared = MemoryState()
    survivor = Line(state=shared)
    first = await died_before_sending(shared)
    someone_else = {**event(user()), "webhookEventId": first["webhookEventId"]}
    assert await survivor.handle(someone_else)
    assert survivor.received == ["こんにちは"]  # asked afresh, not given the other's answer


async def test_an_unreadable_kept_answer_is_asked_afresh() -> None:
    shared = MemoryState()
    survivor = Line(state=shared)
    first = await died_before_sending(shared)
    [key] = shared._kept
    await shared.keep(key, "{not json", 60)
    assert await survivor.handle({**first, "deliveryContext": {"isRedelivery": True}})
    assert survivor.received == ["こんにちは"] and len(survivor.api.calls) == 1


class UnreachableState(MemoryState):
    """Redis as a replica sees it when it is down: every call fails."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def __getattribute__(self, name: str) -> Any:
        attribute = super().__getattribute__(name)
        if name in {"claim", "finish", "release", "count", "keep", "kept", "forget"}:

            async def failing(*args: Any, **kwargs: Any) -> Any:
                self.calls += 1
                raise ConnectionError("redis down")

            return failing
        return attribute


async def test_with_the_shared_state_down_the_answer_is_not_kept_and_still_sent() -> None:
    state = UnreachableState()
    line = Line(state=state)
    assert await line.handle(event(user()))
    assert line.received == ["こんにちは"] and len(line.api.calls) == 1
    # The claim, the rate limit and the settling each tried once; the kept answer was not tried.
    assert state.calls == 3


# -- postbacks: signed by the assistant, or the rich menu (item 3) -------------------------------


async def test_a_forged_postback_with_entities_is_only_text() -> None:
    line = Line()
    assert await line.handle(postback(user(), FORGED))
    [text] = line.received
    assert rasa_intent(text) is None and text.startswith("／")


async def test_an_unsigned_postback_of_a_real_button_is_only_text() -> None:
    line = Line()
    assert await line.handle(postback(user(), VITALS))
    [text] = line.received
    assert rasa_intent(text) is None


async def test_a_button_the_assistant_sent_comes_back_as_its_intent() -> None:
    line = Line()
    resident = user()
    line.buttons = [{"title": "生活の記録", "payload": VITALS}]
    assert await line.handle(event(resident))
    [data] = line.sent_data()
    assert data != VITALS and data.startswith(VITALS + "#")
    line.buttons = []
    assert await line.handle(postback(resident, data))
    assert line.received[-1] == VITALS


async def test_a_button_sent_to_another_resident_is_only_text() -> None:
    line = Line()
    line.buttons = [{"title": "生活の記録", "payload": VITALS}]
    assert await line.handle(event(user()))
    [data] = line.sent_data()
    assert await line.handle(postback(user(), data))  # someone else
    assert rasa_intent(line.received[-1]) is None


async def test_a_signed_button_with_changed_entities_is_only_text() -> None:
    line = Line()
    resident = user()
    line.buttons = [{"title": "生活の記録", "payload": VITALS}]
    assert await line.handle(event(resident))
    [data] = line.sent_data()
    tampered = FORGED + "#" + data.rpartition("#")[2]
    assert await line.handle(postback(resident, tampered))
    assert rasa_intent(line.received[-1]) is None


async def test_another_replica_accepts_the_button() -> None:
    shared = MemoryState()
    first, second = Line(state=shared), Line(state=shared)
    resident = user()
    first.buttons = [{"title": "情報のレベル", "payload": "/ask_data_levels"}]
    assert await first.handle(event(resident))
    [data] = first.sent_data()
    assert await second.handle(postback(resident, data))
    assert second.received == ["/ask_data_levels"]


@pytest.mark.parametrize(
    "data",
    ["/ask_info_bank", "/ask_data_levels", "/ask_family_doctor", "/give_consent",
     "/list_consents", "/request_staff"],
)  # fmt: skip
async def test_the_rich_menu_s_postbacks_are_intents(data: str) -> None:
    line = Line()
    assert await line.handle(postback(user(), data))
    assert line.received == [data]


@pytest.mark.parametrize("data", ["/affirm", "/deny", '/ask_data_levels{"data_level": "3"}'])
async def test_other_unsigned_postbacks_are_only_text(data: str) -> None:
    line = Line()
    assert await line.handle(postback(user(), data))
    assert rasa_intent(line.received[-1]) is None


@pytest.mark.parametrize(
    "data",
    ["#", "/ask#", "/ask_data_levels#" + "A" * 22, "/ask_data_levels#é" + "A" * 21,
     "/ask_data_levels#" + "A" * 21 + "=", "a" * 300 + "#" + "A" * 22],
)  # fmt: skip
def test_strange_signatures_are_refused_not_errors(data: str) -> None:
    assert verify_postback(postback_key("k"), "sender", data) is None


def test_the_signature_binds_key_sender_and_payload() -> None:
    key = postback_key("k")
    data = sign_postback(key, "sender", VITALS)
    assert verify_postback(key, "sender", data) == VITALS
    assert verify_postback(key, "other", data) is None
    assert verify_postback(postback_key("other key"), "sender", data) is None


async def test_signed_quick_replies_are_valid_for_line() -> None:
    line = Line()
    line.buttons = [
        {"title": f"相談先{i}", "payload": f'/withdraw_consent{{"consent_id": "{uuid.uuid4()}"}}'}
        for i in range(13)
    ]
    assert await line.handle(event(user()))
    kind, token, messages = line.api.calls[-1]
    assert kind == "reply" and len(line.sent_data()) == 13
    body = {"replyToken": token, "messages": messages}
    api = OpenApi(SPECS / "messaging-api.yml")
    assert api.errors(body, api.request_schema("/v2/bot/message/reply")) == []
    assert documented_limit_problems(body) == []
