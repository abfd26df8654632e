"""Two questions in one message (bot/nlu/clauses.py): the clause split and the collection.

The components are run on real Rasa messages the way the pipeline runs them: the splitter's
clause messages are given the intents a classifier would give them, then collected. The whole
path with the trained classifier is tests/bot/test_nlu_two_questions.py (needs the model).
"""

from __future__ import annotations

from typing import Any, Dict, List

import pytest
from rasa.shared.nlu.constants import INTENT, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.nlu.clauses import (
    CLAUSE_OF,
    SECOND_INTENT,
    ClauseSplitter,
    SecondIntentCollector,
    split_clauses,
)

IGNORE = ["greet", "thank", "affirm", "deny"]


@pytest.mark.parametrize(
    ("text", "clauses"),
    [
        ("レベル2って何？あと同意もしたい", ["レベル2って何？", "同意もしたい"]),
        ("レベル2って何、あと同意もしたい", ["レベル2って何", "同意もしたい"]),
        (
            "費用はかかりますか。それと、誰が使うの？",
            ["費用はかかりますか。", "誰が使うの？"],
        ),
        ("ポイントは？ ついでに解約の方法も", ["ポイントは？", "解約の方法も"]),
        ("メリットは何ですか", ["メリットは何ですか"]),
        # "あとで" (later) and a connective without a comma before it do not split.
        ("あとで同意します", ["あとで同意します"]),
        ("レベル2ってあと何年で始まる", ["レベル2ってあと何年で始まる"]),
        ("情報銀行について、あとで教えて", ["情報銀行について、あとで教えて"]),
        ("人が答えてる、それとも自動？", ["人が答えてる、それとも自動？"]),
        # Pieces too short to be a question are dropped.
        ("はい。", []),
        ("ねえ！レベルって何？", ["レベルって何？"]),
        ("", []),
    ],
)
def test_split_clauses(text: str, clauses: List[str]) -> None:
    assert split_clauses(text) == clauses


def _splitter() -> ClauseSplitter:
    return ClauseSplitter(ClauseSplitter.get_default_config())


def _collector() -> SecondIntentCollector:
    return SecondIntentCollector(
        {**SecondIntentCollector.get_default_config(), "ignore_intents": IGNORE}
    )


def _classify(message: Message, ranking: List[tuple[str, float]]) -> None:
    """Give a message the intent and ranking a classifier would give it."""
    rows = [{"name": name, "confidence": confidence} for name, confidence in ranking]
    message.set(INTENT, rows[0], add_to_output=True)
    message.set("intent_ranking", rows, add_to_output=True)


def _parse(
    text: str, whole: List[tuple[str, float]], *clauses: List[tuple[str, float]]
) -> Dict[str, Any]:
    batch = _splitter().process([Message(data={TEXT: text})])
    assert len(batch) == 1 + len(clauses), [m.get(TEXT) for m in batch]
    _classify(batch[0], whole)
    for message, ranking in zip(batch[1:], clauses, strict=True):
        _classify(message, ranking)
    out = _collector().process(batch)
    assert len(out) == 1
    return out[0].as_dict(only_output_properties=True)


def test_two_questions_answer_the_first_and_keep_the_second() -> None:
    parsed = _parse(
        "レベル2って何？あと同意もしたい",
        [("give_consent", 0.6), ("ask_data_levels", 0.3)],
        [("ask_data_levels", 0.95), ("give_consent", 0.02)],
        [("give_consent", 0.9), ("ask_data_levels", 0.05)],
    )
    assert parsed[INTENT] == {"name": "ask_data_levels", "confidence": 0.95}
    assert parsed["intent_ranking"][0]["name"] == "ask_data_levels"
    assert parsed[SECOND_INTENT] == {
        "name": "give_consent",
        "confidence": 0.9,
        "clause": "同意もしたい",
    }


def test_whole_message_already_the_first_question_keeps_its_confidence() -> None:
    parsed = _parse(
        "費用はかかりますか。それと、誰が使うの？",
        [("ask_cost", 0.8)],
        [("ask_cost", 0.9)],
        [("ask_recipients", 0.85)],
    )
    assert parsed[INTENT] == {"name": "ask_cost", "confidence": 0.8}
    assert parsed[SECOND_INTENT]["name"] == "ask_recipients"


@pytest.mark.parametrize(
    "clauses",
    [
        # A greeting or thanks is not a second question.
        ([("greet", 0.99)], [("ask_benefits", 0.9)]),
        # Both clauses ask the same thing.
        ([("ask_benefits", 0.9)], [("ask_benefits", 0.8)]),
        # One clause is not understood well enough.
        ([("ask_benefits", 0.9)], [("ask_cost", 0.4)]),
        # The fallback is never a question.
        ([("nlu_fallback", 0.9)], [("ask_cost", 0.9)]),
    ],
)
def test_no_second_question_leaves_the_parse_as_it_was(
    clauses: tuple[List[tuple[str, float]], List[tuple[str, float]]],
) -> None:
    parsed = _parse("こんにちは。メリットを教えて", [("ask_benefits", 0.7)], *clauses)
    assert parsed[INTENT] == {"name": "ask_benefits", "confidence": 0.7}
    assert SECOND_INTENT not in parsed


def test_one_clause_adds_nothing_to_the_batch() -> None:
    message = Message(data={TEXT: "メリットは何ですか"})
    assert _splitter().process([message]) == [message]


def test_button_payloads_are_never_split() -> None:
    message = Message(data={TEXT: "/ask_data_levels。あと同意"})
    assert _splitter().process([message]) == [message]


def test_clause_messages_are_marked_and_training_data_is_untouched() -> None:
    batch = _splitter().process([Message(data={TEXT: "レベル2って何？あと同意もしたい"})])
    assert [m.get(CLAUSE_OF) for m in batch[1:]] == [[0, 0], [0, 1]]
    data = TrainingData([Message(data={TEXT: "レベル2って何？あと同意もしたい", INTENT: "x"})])
    assert _splitter().process_training_data(data) is data
    assert _collector().process_training_data(data) is data


def test_whole_message_mode_keeps_the_intent_and_offers_the_other_clause() -> None:
    batch = _splitter().process([Message(data={TEXT: "参加を迷っています。メリットを教えて"})])
    _classify(batch[0], [("ask_benefits", 0.8)])
    _classify(batch[1], [("give_consent", 0.9)])
    _classify(batch[2], [("ask_benefits", 0.95)])
    config = {**SecondIntentCollector.get_default_config(), "answer_first_clause": False}
    parsed = SecondIntentCollector(config).process(batch)[0].as_dict(only_output_properties=True)
    assert parsed[INTENT] == {"name": "ask_benefits", "confidence": 0.8}
    assert parsed[SECOND_INTENT]["name"] == "give_consent"


@pytest.mark.parametrize("lead_in", ["greet", "thank", "nlu_fallback"])
def test_a_question_after_a_greeting_is_the_message_intent(lead_in: str) -> None:
    """「こんにちは。情報銀行について知りたい」 read as greet lost the question (hostile review)."""
    parsed = _parse(
        "こんにちは。情報銀行について知りたい",
        [(lead_in, 0.59), ("ask_info_bank", 0.3)],
        [("greet", 0.99)],
        [("ask_info_bank", 0.95), ("greet", 0.01)],
    )
    assert parsed[INTENT] == {"name": "ask_info_bank", "confidence": 0.95}
    assert SECOND_INTENT not in parsed


@pytest.mark.parametrize("whole", ["affirm", "deny", "answer_family_doctor", "inform_receipt_code"])
def test_other_whole_intents_stay_when_one_clause_asks(whole: str) -> None:
    parsed = _parse(
        "はい、わかりました。レベル2って何？",
        [(whole, 0.8)],
        [(whole, 0.9)],
        [("ask_data_levels", 0.95)],
    )
    assert parsed[INTENT] == {"name": whole, "confidence": 0.8}


def test_a_greeting_with_an_unclear_question_stays_a_greeting() -> None:
    parsed = _parse(
        "こんにちは。えーと、なんだっけ",
        [("greet", 0.9)],
        [("greet", 0.99)],
        [("ask_info_bank", 0.4)],
    )
    assert parsed[INTENT] == {"name": "greet", "confidence": 0.9}
