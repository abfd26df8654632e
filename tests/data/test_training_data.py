"""Checks on the NLU training and test data that no model training is needed for.

They hold the data to the contract (docs/contract.md) and keep it learnable: every
contract intent has enough varied examples, the held-out set never overlaps training, and entity
annotations line up with GiNZA's tokens (DIET silently drops an entity that does not).
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Dict, List, Tuple

import pytest
from rasa.shared.nlu.training_data.loading import load_data
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from tests.conftest import CONTRACT_DATA_ITEMS, CONTRACT_INTENTS, PROJECT_ROOT

MIN_TRAINING_EXAMPLES = 25
EXTRA_INTENTS = [
    "answer_family_doctor",
    # issue 13
    "ask_correct_data", "ask_delete_data", "ask_retention", "ask_operator", "ask_no_family_doctor",
    "ask_proxy_consent", "ask_mynumber", "ask_after_withdrawal", "ask_choose_city_only",
    "ask_level_schedule", "ask_terms",
    # issue 14
    "inform_receipt_code", "link_channels", "inform_link_code", "unlink_channels",
    # issue 16
    "plain_japanese_on", "plain_japanese_off", "ask_more_details",
    # issue 18
    "request_doctor_memo",
    # issue 17
    "stop_notifications", "list_notifications",
]  # fmt: skip
MIN_TEST_EXAMPLES = 5
LEVEL_MENTION = re.compile(r"(レベル|れべる)[0-3０-３]")


@pytest.fixture(scope="module")
def training() -> TrainingData:
    return load_data(str(PROJECT_ROOT / "data" / "nlu"))


@pytest.fixture(scope="module")
def held_out() -> TrainingData:
    return load_data(str(PROJECT_ROOT / "tests" / "nlu"))


def _by_intent(data: TrainingData) -> Counter:
    return Counter(str(m.get("intent")) for m in data.intent_examples)


def _normalise(text: str) -> str:
    return re.sub(r"[\s、。！？!?〜ー…・]", "", text).lower()


@pytest.mark.parametrize("intent", CONTRACT_INTENTS + EXTRA_INTENTS)
def test_every_contract_intent_has_enough_training_examples(
    training: TrainingData, intent: str
) -> None:
    assert _by_intent(training)[intent] >= MIN_TRAINING_EXAMPLES


@pytest.mark.parametrize("intent", CONTRACT_INTENTS + EXTRA_INTENTS)
def test_every_contract_intent_has_held_out_examples(held_out: TrainingData, intent: str) -> None:
    assert _by_intent(held_out)[intent] >= MIN_TEST_EXAMPLES


def test_no_intent_outside_the_domain(training: TrainingData, held_out: TrainingData) -> None:
    known = set(CONTRACT_INTENTS) | set(EXTRA_INTENTS)
    assert set(_by_intent(training)) <= known
    assert set(_by_intent(held_out)) <= known


def test_held_out_sentences_are_unseen(training: TrainingData, held_out: TrainingData) -> None:
    seen = {_normalise(m.get("text")) for m in training.intent_examples}
    leaked = [m.get("text") for m in held_out.intent_examples if _normalise(m.get("text")) in seen]
    assert leaked == []


def test_no_sentence_is_given_two_intents(training: TrainingData) -> None:
    owners: Dict[str, set] = {}
    for message in training.intent_examples:
        owners.setdefault(_normalise(message.get("text")), set()).add(message.get("intent"))
    assert {text: ints for text, ints in owners.items() if len(ints) > 1} == {}


def test_synonyms_map_onto_contract_values(training: TrainingData) -> None:
    allowed = set(CONTRACT_DATA_ITEMS) | {"0", "1", "2", "3", "consulted", "not_yet", "will_not"}
    assert set(training.entity_synonyms.values()) <= allowed
    item_values = {v for v in training.entity_synonyms.values() if v in CONTRACT_DATA_ITEMS}
    assert item_values == set(CONTRACT_DATA_ITEMS)


@pytest.mark.parametrize(
    ("surface", "canonical"),
    [
        ("健康診断", "health_checkup"),
        ("健診", "health_checkup"),
        ("特定健診", "health_checkup"),
        ("既往歴", "medical_history"),
        ("ワクチン", "vaccination"),
        ("レセプト", "claims"),
        ("遺伝子情報", "genetic"),
        ("腸内細菌", "gut_bacteria"),
        ("口腔内細菌", "oral_bacteria"),
        ("歩数", "steps"),
        ("GPS", "location"),
        ("レベル２", "2"),
    ],
)
def test_everyday_words_have_synonyms(training: TrainingData, surface: str, canonical: str) -> None:
    assert training.entity_synonyms[surface] == canonical


def _entity_problems(message: Message, nlp, surfaces: List[Tuple[str, str]]) -> List[str]:
    text: str = message.get("text")
    doc = nlp.make_doc(text)
    starts = {t.idx for t in doc}
    ends = {t.idx + len(t.text) for t in doc}
    problems = []
    entities = message.get("entities") or []
    for entity in entities:
        if entity["start"] not in starts or entity["end"] not in ends:
            problems.append(f"{text!r}: {entity['value']!r} cuts a token {[t.text for t in doc]}")
    covered = [(e["start"], e["end"]) for e in entities]
    for surface, entity_type in surfaces:
        for match in re.finditer(re.escape(surface), text):
            start, end = match.span()
            inside = any(s <= start and end <= e for s, e in covered)
            if not inside and start in starts and end in ends:
                problems.append(f"{text!r}: {surface!r} is not annotated as {entity_type}")
    for match in LEVEL_MENTION.finditer(text):
        if not any(s <= match.start() and match.end() <= e for s, e in covered):
            problems.append(f"{text!r}: {match.group()!r} is not annotated as data_level")
    return problems


def test_entities_are_consistent_and_align_with_ginza_tokens(
    ginza, training: TrainingData, held_out: TrainingData
) -> None:
    surfaces = sorted(
        ((s, "data_item") for s, v in training.entity_synonyms.items() if v in CONTRACT_DATA_ITEMS),
        key=lambda pair: -len(pair[0]),
    )
    problems: List[str] = []
    for data in (training, held_out):
        for message in data.intent_examples:
            problems += _entity_problems(message, ginza, surfaces)
    assert problems == [], "\n".join(problems)
