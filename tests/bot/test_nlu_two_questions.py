"""Two questions in one message, through the trained model (issue 15).

The first question is answered and the second offered as a button; a one-question message is
answered as before, with no offer. Runs the trained models/assistant.tar.gz in process (NLU with
bot/nlu/clauses.py, dialogue with bot/nlu/second_question.py) on answers that need no action
server, so it runs in the e2e phase of `make test` (after `make model`).

Rasa's conversation tests (tests/stories) cannot hold this case: `rasa test core` replaces a
test story's parse data with the intent written in the story, so the recorded second question
never reaches the policy there.
"""

from __future__ import annotations

import asyncio
from typing import Any, Dict, Iterator, List

import pytest
import rasa.core.actions.action
from rasa.core.actions.action import ActionSessionStart
from rasa.core.agent import Agent
from rasa.shared.core.constants import ACTION_SESSION_START_NAME

from tests.conftest import PROJECT_ROOT

MODEL = PROJECT_ROOT / "models" / "assistant.tar.gz"

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def agent() -> Iterator[Agent]:
    """The trained model in process, with Rasa's own session start.

    The assistant's `action_session_start` (actions/session.py: Rasa's, then the web chat's
    unseen notices) runs on the action server, which this test does not start: the session
    here starts as Rasa's default action starts it, which the custom one reproduces.
    """
    if not MODEL.exists():
        pytest.fail("No trained model: run `make model` first.")
    resolve = rasa.core.actions.action.action_for_name_or_text

    def with_rasas_session_start(name: str, domain: Any, endpoint: Any) -> Any:
        if name == ACTION_SESSION_START_NAME:
            return ActionSessionStart()
        return resolve(name, domain, endpoint)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(rasa.core.actions.action, "action_for_name_or_text", with_rasas_session_start)
        yield Agent.load(str(MODEL))


def _parse(agent: Agent, text: str) -> Dict[str, Any]:
    return dict(asyncio.run(agent.parse_message(text)))


def _reply(agent: Agent, text: str, sender: str) -> List[Dict[str, Any]]:
    return list(asyncio.run(agent.handle_text(text, sender_id=sender)) or [])


def _payloads(replies: List[Dict[str, Any]]) -> List[str]:
    return [button["payload"] for reply in replies for button in reply.get("buttons") or []]


def test_the_example_of_the_issue_keeps_both_questions(agent: Agent) -> None:
    parsed = _parse(agent, "レベル2って何？あと同意もしたい")
    assert parsed["intent"]["name"] == "ask_data_levels"
    assert parsed["second_intent"]["name"] == "give_consent"


def test_one_question_has_no_second(agent: Agent) -> None:
    parsed = _parse(agent, "情報のレベル分けについて知りたい")
    assert parsed["intent"]["name"] == "ask_data_levels"
    assert "second_intent" not in parsed


def test_first_answered_then_second_offered_as_a_button(agent: Agent) -> None:
    replies = _reply(agent, "メリットは何ですか？あと、費用はかかりますか", "two-questions-1")
    texts = [reply.get("text") or "" for reply in replies]
    benefits = agent.domain.responses["utter_benefits"][0]["text"]
    offer = agent.domain.responses["utter_offer_second_ask_cost"][0]["text"]
    assert texts[0] == benefits
    assert texts[-1] == offer
    assert _payloads(replies)[-1:] == ["/ask_cost"]
    # The button asks the second question; its answer comes with no further offer.
    replies = _reply(agent, "/ask_cost", "two-questions-1")
    assert [r.get("text") for r in replies] == [agent.domain.responses["utter_cost"][0]["text"]]


def test_one_question_gets_its_answer_only(agent: Agent) -> None:
    replies = _reply(agent, "メリットは何ですか？", "two-questions-2")
    assert [r.get("text") for r in replies] == [agent.domain.responses["utter_benefits"][0]["text"]]
