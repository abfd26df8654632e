"""The policy that offers a message's second question (bot/nlu/second_question.py).

A real `SecondQuestionRulePolicy` is trained (in memory, no TensorFlow) on a small domain and its
rules, then asked what comes next in conversations where the resident's message carried a
second question, or not. The path through the trained assistant is
tests/bot/test_nlu_two_questions.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List

import pytest
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.shared.core.constants import ACTION_LISTEN_NAME
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, Event, UserUttered
from rasa.shared.core.generator import TrainingDataGenerator
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.core.training_data.story_reader.yaml_story_reader import YAMLStoryReader
from rasa.shared.core.training_data.structures import StoryGraph

from bot.nlu.second_question import SecondQuestionRulePolicy

DOMAIN = """
version: "3.1"
intents: [ask_a, ask_b, ask_c, give_consent]
responses:
  utter_a: [{text: "A"}]
  utter_b: [{text: "B"}]
  utter_c_part: [{text: "C1"}]
  utter_c: [{text: "C2"}]
  utter_consent: [{text: "consent?"}]
  utter_offer_second_ask_b:
    - text: "offer"
      buttons: [{title: "B", payload: "/ask_b"}]
  utter_offer_second_give_consent:
    - text: "offer consent"
      buttons: [{title: "consent", payload: "/give_consent"}]
"""

RULES = """
version: "3.1"
rules:
  - rule: a
    steps: [{intent: ask_a}, {action: utter_a}]
  - rule: b
    steps: [{intent: ask_b}, {action: utter_b}]
  - rule: c is answered in two steps
    steps: [{intent: ask_c}, {action: utter_c_part}, {action: utter_c}]
  - rule: consent
    steps: [{intent: give_consent}, {action: utter_consent}]
"""


@pytest.fixture(scope="module")
def domain() -> Domain:
    return Domain.from_yaml(DOMAIN)


@pytest.fixture(scope="module")
def policy(domain: Domain, tmp_path_factory: pytest.TempPathFactory) -> SecondQuestionRulePolicy:
    steps = YAMLStoryReader(domain).read_from_string(RULES)
    trackers = TrainingDataGenerator(StoryGraph(steps), domain, augmentation_factor=0).generate()
    storage = LocalModelStorage(Path(tmp_path_factory.mktemp("policy")))
    config: Dict[str, Any] = {
        **SecondQuestionRulePolicy.get_default_config(),
        "not_after": ["give_consent"],
    }
    trained = SecondQuestionRulePolicy.create(
        config, storage, Resource("rules"), ExecutionContext(GraphSchema({}), "test")
    )
    trained.train(trackers, domain)
    return trained


def _next(
    policy: SecondQuestionRulePolicy,
    domain: Domain,
    intent: str,
    second: str | None,
    actions: List[str],
) -> str:
    parse: Dict[str, Any] = {"second_intent": {"name": second, "confidence": 0.9}} if second else {}
    events: List[Event] = [
        ActionExecuted(ACTION_LISTEN_NAME),
        UserUttered("…", intent={"name": intent, "confidence": 1.0}, parse_data=parse),
        *[ActionExecuted(name) for name in actions],
    ]
    tracker = DialogueStateTracker.from_events("resident", events, domain.slots)
    prediction = policy.predict_action_probabilities(tracker, domain)
    best = max(range(len(prediction.probabilities)), key=prediction.probabilities.__getitem__)
    return domain.action_names_or_texts[best]


def test_the_second_question_is_offered_after_the_first_answer(
    policy: SecondQuestionRulePolicy, domain: Domain
) -> None:
    assert _next(policy, domain, "ask_a", "ask_b", []) == "utter_a"
    assert _next(policy, domain, "ask_a", "ask_b", ["utter_a"]) == "utter_offer_second_ask_b"
    assert (
        _next(policy, domain, "ask_a", "ask_b", ["utter_a", "utter_offer_second_ask_b"])
        == ACTION_LISTEN_NAME
    )


def test_an_answer_in_two_steps_is_finished_before_the_offer(
    policy: SecondQuestionRulePolicy, domain: Domain
) -> None:
    assert _next(policy, domain, "ask_c", "ask_b", ["utter_c_part"]) == "utter_c"
    assert (
        _next(policy, domain, "ask_c", "ask_b", ["utter_c_part", "utter_c"])
        == "utter_offer_second_ask_b"
    )


@pytest.mark.parametrize(
    ("intent", "second", "actions"),
    [
        ("ask_a", None, ["utter_a"]),  # one question
        ("ask_a", "ask_c", ["utter_a"]),  # no offer in the domain's table for ask_c
        ("give_consent", "ask_b", ["utter_consent"]),  # the first answer opened a procedure
    ],
)
def test_nothing_is_offered(
    policy: SecondQuestionRulePolicy,
    domain: Domain,
    intent: str,
    second: str | None,
    actions: List[str],
) -> None:
    assert _next(policy, domain, intent, second, actions) == ACTION_LISTEN_NAME
