"""Issue 19: the notice that personal details were removed is said once per conversation."""

from __future__ import annotations

from typing import Any, Dict, List

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.privacy import KINDS, NOTICE, ActionPersonalDetailNotice
from bot.privacy import DetailKind
from tests.actions.conftest import responses, user_event


def notice_event(*kinds: str) -> Dict[str, Any]:
    return user_event(
        "/personal_detail_removed", "personal_detail_removed", [("detail_kind", k) for k in kinds]
    )


def told() -> Dict[str, Any]:
    return {"event": "bot", "text": "…", "metadata": {"utter_action": NOTICE}}


def tracker(events: List[Dict[str, Any]]) -> Tracker:
    latest = [e for e in events if e["event"] == "user"][-1]
    return Tracker("s", {}, latest["parse_data"], events, False, None, {}, "action_listen")


def run(domain: Dict[str, Any], events: List[Dict[str, Any]]) -> CollectingDispatcher:
    dispatcher = CollectingDispatcher()
    assert ActionPersonalDetailNotice().run(dispatcher, tracker(events), domain) == []
    return dispatcher


def test_the_first_notice_names_the_kinds_in_plain_words(domain: Dict[str, Any]) -> None:
    dispatcher = run(domain, [notice_event("phone", "name")])
    assert responses(dispatcher) == [NOTICE]
    [message] = dispatcher.messages
    assert message["details"] == "お名前、電話番号"  # the fragments, in the action's order


def test_a_second_notice_in_the_conversation_is_not_said(domain: Dict[str, Any]) -> None:
    events = [notice_event("name"), told(), user_event("x", "greet"), notice_event("email")]
    assert responses(run(domain, events)) == []


def test_a_new_session_is_told_again(domain: Dict[str, Any]) -> None:
    events = [notice_event("name"), told(), {"event": "session_started"}, notice_event("email")]
    assert responses(run(domain, events)) == [NOTICE]


def test_unknown_or_missing_kinds_say_nothing(domain: Dict[str, Any]) -> None:
    assert responses(run(domain, [notice_event()])) == []
    assert responses(run(domain, [notice_event("shoe_size")])) == []


def test_the_action_knows_every_kind_the_channels_name() -> None:
    assert sorted(KINDS) == sorted(k.value for k in DetailKind)


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_has_wording(domain: Dict[str, Any], kind: str) -> None:
    [message] = run(domain, [notice_event(kind)]).messages
    assert message["details"] and message["response"] == NOTICE


def test_the_notice_between_a_question_and_its_typed_answer_is_not_the_question() -> None:
    """「ご本人ですか？」, then 「はい、［名前］です」: the はい still answers that question."""
    from actions.yes_no import last_question

    asked = {"event": "bot", "text": "…", "metadata": {"utter_action": "utter_ask_same_person"}}
    events = [user_event("/list_consents", "list_consents"), asked, notice_event("name"), told()]
    events.append(user_event("はい、［名前］です", "affirm"))
    assert last_question(tracker(events)) == "utter_ask_same_person"


def test_two_misunderstood_messages_around_a_notice_still_offer_a_person() -> None:
    """The notice is the channel's, not the resident's: the miss before it still counts."""
    from actions.fallback import previous_user_intent

    events = [user_event("？", "nlu_fallback"), notice_event("phone"), told()]
    events.append(user_event("［電話番号］", "nlu_fallback"))
    assert previous_user_intent(tracker(events)) == "nlu_fallback"
