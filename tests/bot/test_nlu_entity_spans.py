"""Stray particles out of DIET's data_item / data_level entities (bot/nlu/entity_spans.py)."""

from __future__ import annotations

from typing import Any, Dict, List

import pytest
from rasa.nlu.constants import TOKENS_NAMES
from rasa.shared.nlu.constants import ENTITIES, TEXT
from rasa.shared.nlu.training_data.loading import load_data
from rasa.shared.nlu.training_data.message import Message

from bot.nlu.entity_spans import EntitySpanCleaner, clean_span
from bot.nlu.japanese import SudachiTokenizer
from tests.conftest import PROJECT_ROOT

TOKENIZER = SudachiTokenizer(SudachiTokenizer.get_default_config())


def _message(text: str, spans: List[tuple[str, str]]) -> Message:
    message = Message(data={TEXT: text})
    message.set(TOKENS_NAMES[TEXT], TOKENIZER.tokenize(message, TEXT))
    entities: List[Dict[str, Any]] = []
    for kind, covered in spans:
        start = text.rindex(covered)  # DIET tags whole tokens: the last 「す」 of 「しますす」
        entities.append(
            {"entity": kind, "start": start, "end": start + len(covered), "value": covered,
             "extractor": "DIETClassifier"}
        )  # fmt: skip
    message.set(ENTITIES, entities)
    return message


def _cleaned(text: str, spans: List[tuple[str, str]]) -> List[tuple[str, str]]:
    cleaner = EntitySpanCleaner(EntitySpanCleaner.get_default_config()["entities"])
    (message,) = cleaner.process([_message(text, spans)])
    return [(e["entity"], e["value"]) for e in message.get(ENTITIES)]


@pytest.mark.parametrize(
    ("text", "stray"),
    [
        ("先生と相談してきた", "と"),
        ("れべるをしりたいです、口内細菌と体脂肪率の", "れ"),
        ("家族に総談して決めました、参加しますす", "す"),
    ],
)
def test_a_lone_particle_or_kana_is_no_entity(text: str, stray: str) -> None:
    assert _cleaned(text, [("data_item", stray)]) == []


def test_a_particle_after_an_item_is_trimmed() -> None:
    trimmed = [("data_item", "結果")]
    assert _cleaned("健診の結果は見せたくない", [("data_item", "結果は")]) == trimmed
    assert _cleaned("過去の病気のこと", [("data_item", "過去の")]) == [("data_item", "過去")]


def test_kana_words_sudachi_cuts_oddly_are_left_whole() -> None:
    for text, item in [
        ("いでんしのていきょうはもうやめる", "いでんし"),
        ("れべる2ってなに", "れべる2"),
        ("れせぷともわたしていいです", "れせぷと"),
    ]:
        assert _cleaned(text, [("data_item", item)]) == [("data_item", item)]


def test_a_span_across_token_boundaries_is_left_as_it_is() -> None:
    # 「圧を」 cuts the token 血圧: trimming it would leave the lone 「を」
    assert clean_span(
        "血圧をはかる", 1, 3, TOKENIZER.tokenize(Message(data={TEXT: "血圧をはかる"}), TEXT)
    ) == (1, 3)


def test_half_width_katakana_is_a_word() -> None:
    assert _cleaned("ｹﾂｱﾂは見せない", [("data_item", "ｹﾂｱﾂは")]) == [("data_item", "ｹﾂｱﾂ")]


def test_other_entity_types_are_untouched() -> None:
    spans = [("family_doctor_answer", "し"), ("data_item", "血圧")]
    assert _cleaned("血圧の相談をし", spans) == spans


def test_no_annotated_span_of_the_training_data_is_changed() -> None:
    """The rules never cut or drop what an annotator marked as an item or a level."""
    changed = []
    for example in load_data(str(PROJECT_ROOT / "data" / "nlu")).intent_examples:
        text = example.get(TEXT)
        tokens = TOKENIZER.tokenize(Message(data={TEXT: text}), TEXT)
        for entity in example.get(ENTITIES) or []:
            if entity["entity"] in ("data_item", "data_level"):
                span = (entity["start"], entity["end"])
                if clean_span(text, *span, tokens) != span:
                    changed.append((text, text[span[0] : span[1]]))
    assert changed == []
