"""Issue 20: the pieces LINE, the web chat and REST share live once, in bot/channels/.

The table of system intents (bot/channels/system_intents.py) holds every intent a channel sends
on its own, and no channel spells one itself; the steps of bot/channels/common.py (rate limit,
intake off the event loop, handing Rasa the texts) keep what each channel did before.
"""

from __future__ import annotations

import ast
import threading
from pathlib import Path
from typing import Any, Dict, List

import pytest
import yaml
from rasa.core.channels.channel import CollectingOutputChannel, UserMessage

import bot.channels.guard
from bot.channels.common import (
    LINE,
    WEB,
    admit,
    hand_to_rasa,
    intake_of,
    rate_key,
    take_in,
    unmasked,
)
from bot.channels.system_intents import (
    SYSTEM_INTENTS,
    TOO_MANY_MESSAGES,
    removal_message,
    system_message,
)
from bot.privacy import DetailKind, Masked, mask_personal
from bot.pseudonym import pseudonym
from bot.shared_state import MemoryState
from tests.bot.test_channel_guard import rasa_intent
from tests.bot.test_channel_line import Line, event, user
from tests.bot.test_channel_line import settings as line_settings
from tests.bot.test_webchat_channel import WebChat
from tests.bot.test_webchat_channel import settings as webchat_settings
from tests.conftest import PROJECT_ROOT

CHANNELS = PROJECT_ROOT / "bot" / "channels"


def domain_intents() -> List[str]:
    domain = yaml.safe_load((PROJECT_ROOT / "domain.yml").read_text(encoding="utf-8"))
    return [next(iter(i)) if isinstance(i, dict) else str(i) for i in domain["intents"]]


def string_constants(path: Path) -> List[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    ]


# -- the table ------------------------------------------------------------------------------------


def test_every_system_intent_is_an_intent_of_the_domain() -> None:
    assert sorted(set(SYSTEM_INTENTS) - set(domain_intents())) == []
    assert {"line_unfollowed", "session_resumed", "personal_detail_removed"} <= set(SYSTEM_INTENTS)


def test_a_system_message_is_the_intent_rasa_takes_without_the_nlu() -> None:
    for intent in SYSTEM_INTENTS:
        assert rasa_intent(system_message(intent)) == intent


def test_a_channel_cannot_send_an_intent_the_table_does_not_hold() -> None:
    with pytest.raises(ValueError):
        system_message("give_consent")


def test_the_removal_message_is_the_one_the_contract_names() -> None:
    assert removal_message(["name", "phone"]) == (
        '/personal_detail_removed{"detail_kind": ["name", "phone"]}'
    )


@pytest.mark.parametrize(
    "module", sorted(p.name for p in CHANNELS.glob("*.py") if p.name != "system_intents.py")
)
def test_no_channel_spells_a_system_intent_message_itself(module: str) -> None:
    spelt = [
        text
        for text in string_constants(CHANNELS / module)
        for intent in SYSTEM_INTENTS
        if text.startswith(f"/{intent}")
    ]
    assert spelt == []


# -- what LINE and the web chat send --------------------------------------------------------------


async def test_line_events_become_the_table_s_intents() -> None:
    line = Line(line_settings(rate_limit_messages=4))
    resident = user()
    sticker = {"type": "sticker", "id": "1", "packageId": "1", "stickerId": "1"}
    events = [
        event(resident, type="follow", message=None),
        event(resident, message=sticker),
        event(resident, message={"type": "text", "id": "2", "text": "あ" * 1001}),
        event(resident, message={"type": "text", "id": "3", "text": "電話は047-123-4567です"}),
        event(resident),  # the fifth message of the window: over the limit
        event(resident, type="unfollow", message=None),  # never held back by the limit
    ]
    for each in events:
        assert await line.handle(each)
    assert [rasa_intent(text) for text in line.received] == [
        "greet",
        "non_text_message",
        "message_too_long",
        "personal_detail_removed",
        None,  # the masked text
        "too_many_messages",
        "line_unfollowed",
    ]


async def test_the_web_chat_s_openings_are_the_table_s_intents() -> None:
    chat = WebChat(webchat_settings(rate_limit_messages=3))
    assert await chat.connect("s1")
    await chat.handler("session_start")("s1")
    await chat.handler("session_resume")("s1")
    await chat.utter("s1", {"payload": "x" * 1001})
    await chat.handler("session_start")("s1")
    await chat.handler("session_start")("s1")  # dropped
    assert chat.texts == [
        "/greet",
        "/session_resumed",
        "/message_too_long",
        "/too_many_messages",
    ]


async def test_the_rate_limit_counts_line_pseudonyms_and_web_sessions_as_before() -> None:
    state = MemoryState()
    line = Line(state=state)
    resident = user()
    assert await line.handle(event(resident))
    chat = WebChat(state=state)
    assert await chat.connect("s1")
    await chat.utter("s1", {"message": "こんにちは"})
    session = (await chat.sio.get_session("s1"))["session"]
    resident_pseudonym = pseudonym(line_settings(), "line", resident)
    messages = {key for key in state._counts if not key.startswith("websession:")}
    assert messages == {f"line:{resident_pseudonym}", f"web:{session}"}
    assert rate_key(LINE, "p") == "line:p" and rate_key(WEB, "s") == "web:s"


# -- the shared steps -----------------------------------------------------------------------------


async def test_admit_tells_once_then_drops_and_takes_nothing_in_over_the_limit() -> None:
    state = MemoryState()
    taken: List[str] = []

    async def take() -> Masked | None:
        taken.append("taken")
        return unmasked("/greet")

    config = line_settings(rate_limit_messages=1)
    results = [await admit(lambda: state, config, "web:s", take) for _ in range(3)]
    assert [(r.texts, r.over_limit) for r in results] == [
        (("/greet",), False),
        ((system_message(TOO_MANY_MESSAGES),), False),
        ((), True),
    ]
    assert taken == ["taken"]


async def test_admit_without_a_key_counts_nothing() -> None:
    def no_state() -> MemoryState:
        raise AssertionError("the state was asked for")

    async def take() -> Masked | None:
        return unmasked("/line_unfollowed")

    admission = await admit(no_state, line_settings(rate_limit_messages=1), None, take)
    assert admission.texts == ("/line_unfollowed",) and not admission.over_limit


async def test_admit_puts_the_removal_notice_first_and_ignores_nothing_taken() -> None:
    state = MemoryState()

    async def typed() -> Masked | None:
        return await take_in("電話は047-123-4567です")

    async def nothing() -> Masked | None:
        return None

    notice, masked = (await admit(lambda: state, line_settings(), "web:s", typed)).texts
    assert rasa_intent(notice) == "personal_detail_removed" and "047" not in masked
    assert (await admit(lambda: state, line_settings(), "web:s", nothing)).texts == ()


async def test_take_in_masks_typed_text_in_a_worker_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    threads: List[int] = []

    def recording(text: str) -> Masked:
        threads.append(threading.get_ident())
        return mask_personal(text)

    monkeypatch.setattr(bot.channels.guard, "mask_personal", recording)
    taken = await take_in(" /give_consent 047-123-4567")
    assert taken is not None and taken.text.startswith("／")
    assert taken.kinds == frozenset({DetailKind.PHONE})
    assert threads and threading.get_ident() not in threads
    assert await take_in(unmasked("/greet")) == unmasked("/greet")
    assert await take_in(" \u3000\n") is None
    assert intake_of("\u3000") is None and intake_of(unmasked("")) is None


async def test_hand_to_rasa_sends_each_text_as_one_message_of_the_sender() -> None:
    received: List[UserMessage] = []
    made: List[Dict[str, Any]] = []

    async def on_new_message(message: UserMessage) -> None:
        received.append(message)

    def metadata() -> Dict[str, Any]:
        made.append({"n": len(made)})
        return made[-1]

    output = CollectingOutputChannel()
    await hand_to_rasa(on_new_message, ["/a", "b"], output, "sender", "line", metadata)
    assert [m.text for m in received] == ["/a", "b"]
    assert {(m.sender_id, m.input_channel, m.output_channel) for m in received} == {
        ("sender", "line", output)
    }
    assert [m.metadata for m in received] == [{"n": 0}, {"n": 1}]  # made afresh for each
    received.clear()
    await hand_to_rasa(on_new_message, ["c"], output, "sender", "socketio")
    assert received[0].metadata is None
