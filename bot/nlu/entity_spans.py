"""Stray particles out of DIET's `data_item` / `data_level` entities (issue 15).

DIET tags entities token by token, and on a fold of the cross-validation (`bench/nlu_cv.py`) a
good share of its `data_item` entities were not items at all: a lone particle or kana (「と」 in
「先生と相談してきた」, 「れ」, 「す」), or an item with the particle after it (「結果は」 for
「結果」).
A stray entity is not harmless: an action that reads the first `data_item` of a message would
take 「と」 for the item the resident named.

This component, after DIET, does two things to those entity types and nothing else:

- it drops an entity that holds no kanji, katakana, Latin letter or digit and is a single
  character or only particles, auxiliaries and symbols (「と」, 「れ」, 「ます」, 「ー」);
- it trims the common particles (は, を, が, の, も, と, に, で, や, って, へ) off either end, when
  the rest still holds a kanji, katakana, letter or digit (「結果は」 → 「結果」).

A longer kana-only span is never trimmed: Sudachi cuts 「いでんし」 or 「れべる2」 into pieces it
tags as particles, so trimming by part of speech would cut real items (a check over every annotated
span of data/ found 18 such cuts; with the rules above, none). A kana-only span Sudachi reads as
nothing but particles and auxiliaries is dropped (「でーた」 alone: no annotated item is such a
word). A span that does not line up with the tokens is left as it is.

Replayed on the entity errors of cross-validation fold 0 of a `min_df: 2` trial (2026-12-03; the
rules run after DIET, so they change nothing DIET predicts), they dropped 4 wrong entities and
trimmed 2 to the annotated span, of 65 predicted.
"""

from __future__ import annotations

import re
from typing import Any, Dict, List, Sequence

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.constants import TOKENS_NAMES
from rasa.nlu.tokenizers.tokenizer import Token
from rasa.shared.nlu.constants import (
    ENTITIES,
    ENTITY_ATTRIBUTE_END,
    ENTITY_ATTRIBUTE_START,
    ENTITY_ATTRIBUTE_TYPE,
    ENTITY_ATTRIBUTE_VALUE,
    TEXT,
)
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.nlu.japanese import POS_TAG_KEY  # Sudachi's tag in ours, GiNZA's tag_ in spaCy's

FUNCTION_WORDS = ("助詞", "助動詞", "補助記号", "空白")
PARTICLES = frozenset({"は", "を", "が", "の", "も", "と", "に", "で", "や", "って", "へ"})
# A character that makes a span a word of its own, not kana Sudachi may have cut wrongly.
_WORDY = re.compile(r"[㐀-䶿一-鿿豈-﫿々〆ヶァ-ヴｦ-ﾟA-Za-z0-9０-９Ａ-Ｚａ-ｚ]")


def _pos(token: Token) -> str:
    return str(token.get(POS_TAG_KEY) or "")


def _is_stray(text: str, tokens: Sequence[Token]) -> bool:
    if _WORDY.search(text):
        return False
    return len(text.strip()) <= 1 or all(_pos(t).startswith(FUNCTION_WORDS) for t in tokens)


def _is_particle(token: Token) -> bool:
    return token.text in PARTICLES and _pos(token).startswith("助詞")


def clean_span(text: str, start: int, end: int, tokens: Sequence[Token]) -> tuple[int, int] | None:
    """The entity's span without stray particles, or None if it is nothing but those.

    Args:
        text: The message's text.
        start: Where the entity starts in `text`.
        end: Where it ends.
        tokens: The message's tokens.

    Returns:
        The (start, end) to keep, or None to drop the entity.
    """
    covered = [t for t in tokens if t.start < end and t.end > start]
    if not covered or any(t.start < start or t.end > end for t in covered):
        return start, end  # a span that does not line up with the tokens is not guessed at
    if _is_stray(text[start:end], covered):
        return None
    while len(covered) > 1 and _is_particle(covered[-1]):
        if not _WORDY.search(text[covered[0].start : covered[-2].end]):
            break
        covered.pop()
    while len(covered) > 1 and _is_particle(covered[0]):
        if not _WORDY.search(text[covered[1].start : covered[-1].end]):
            break
        covered.pop(0)
    return covered[0].start, covered[-1].end


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR], is_trainable=False)
class EntitySpanCleaner(GraphComponent):
    """Drops and trims stray particles in the configured entity types (after DIET)."""

    @staticmethod
    def get_default_config() -> Dict[str, Any]:
        """The entity types cleaned: the data items and levels residents name."""
        return {"entities": ["data_item", "data_level"]}

    def __init__(self, entities: Sequence[str]) -> None:
        """Clean entities of these types."""
        self._types = frozenset(entities)

    @classmethod
    def create(
        cls,
        config: Dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> EntitySpanCleaner:
        """Creates the component (it has no state)."""
        return cls(config["entities"])

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        """Training data passes through unchanged."""
        return training_data

    def process(self, messages: List[Message]) -> List[Message]:
        """Cleans each message's entities of the configured types."""
        for message in messages:
            entities = message.get(ENTITIES) or []
            if not any(e.get(ENTITY_ATTRIBUTE_TYPE) in self._types for e in entities):
                continue
            text = message.get(TEXT) or ""
            tokens = message.get(TOKENS_NAMES[TEXT]) or []
            message.set(ENTITIES, self._cleaned(text, tokens, entities), add_to_output=True)
        return messages

    def _cleaned(
        self, text: str, tokens: Sequence[Token], entities: List[Dict[str, Any]]
    ) -> List[Dict[str, Any]]:
        kept = []
        for entity in entities:
            if entity.get(ENTITY_ATTRIBUTE_TYPE) not in self._types:
                kept.append(entity)
                continue
            span = clean_span(
                text, entity[ENTITY_ATTRIBUTE_START], entity[ENTITY_ATTRIBUTE_END], tokens
            )
            if span is None:
                continue
            if span != (entity[ENTITY_ATTRIBUTE_START], entity[ENTITY_ATTRIBUTE_END]):
                start, end = span
                entity = {
                    **entity,
                    ENTITY_ATTRIBUTE_START: start,
                    ENTITY_ATTRIBUTE_END: end,
                    ENTITY_ATTRIBUTE_VALUE: text[start:end],
                }
            kept.append(entity)
        return kept
