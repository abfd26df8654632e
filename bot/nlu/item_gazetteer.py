"""Data items, levels and family-doctor answers, in the words data/ names them with (issue 15).

DIET tagged these entities token by token from a few hundred annotated spans, and
cross-validation (`bench/nlu_cv.py`) kept showing the same faults: an item cut short or run long
(「健診の」, 「位置」 for 「位置情報」), a common word taken for an item (「過去」, 「データ」,
「れき」 of 「りれき」), a lone particle (「と」). On fold 0 (2026-12-03) its `data_item` F1 was
0.750 and its `family_doctor_answer` F1 0.30. Yet the values are a closed set, and the training
data says exactly which words name them: every annotated span, and every surface form of
`data/nlu/synonyms.yml` (which `tests/data` requires to be annotated wherever a sentence holds an
item or a level).

This component learns that vocabulary from the training data it is given — the annotated spans of
the configured entity types, the synonyms that map onto their values, and the intents whose
messages carry each type — and after DIET:

- finds each run of up to `max_tokens` tokens whose text (NFKC, hiragana folded to katakana, case
  folded) is such a word, or whose Sudachi reading is the reading of one, if at least
  `min_reading_chars` kana long (so 「けつあつ」, 「検診」 and the slip 「位地情報」 meet 「血圧」,
  「健診」 and 「位置情報」); the longest run wins, and only whole tokens match (「脈」 is an
  item, 「文脈」 holds none; 「相談したくない」 holds no 「相談した」);
- gives each found word as an entity of its type, valued with the canonical value its training
  spans carry (「検診」 → `health_checkup`), if the message's intent is one whose training
  messages carry that type: 「2」 in a receipt code is no level, 「相談しない」 in a question about
  the family doctor is no answer. A message FallbackClassifier will take as not understood
  (`fallback_threshold` and `fallback_ambiguity_threshold`, set to FallbackClassifier's own
  `threshold` and `ambiguity_threshold`) is not gated: its intent says nothing, and the fallback
  must still hear a level-3 item it names (actions/fallback.py);
- drops DIET's entities of those types. The actions read them only by canonical value
  (`actions/levels.py`, `actions/consent_states.py`), and EntitySynonymMapper gives one only to a
  span that is exactly a known word — which this component finds itself; on fold 0 all five
  `data_item` entities DIET gave outside the vocabulary were wrong.

A word is learned only if the training messages of the carrying intents annotate it at least as
often as they hold it unannotated. A resident who names an item in words no training sentence uses
is not understood to name it (as before: DIET's guess had no canonical value); such a word belongs
in synonyms.yml.
"""

from __future__ import annotations

import collections
import json
import logging
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, Sequence, Tuple

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.constants import ENTITY_ATTRIBUTE_CONFIDENCE_TYPE, TOKENS_NAMES
from rasa.nlu.tokenizers.tokenizer import Token
from rasa.shared.nlu.constants import (
    ENTITIES,
    ENTITY_ATTRIBUTE_END,
    ENTITY_ATTRIBUTE_START,
    ENTITY_ATTRIBUTE_TYPE,
    ENTITY_ATTRIBUTE_VALUE,
    EXTRACTOR,
    INTENT,
    INTENT_NAME_KEY,
    INTENT_RANKING_KEY,
    PREDICTED_CONFIDENCE_KEY,
    TEXT,
)
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.nlu import readings
from bot.nlu.readings import reading, sudachi_fingerprint, to_katakana

VOCABULARY_FILE = "vocabulary.json"

logger = logging.getLogger(__name__)

# (entity type, canonical value) for a key
Item = Tuple[str, str]


def surface_key(text: str) -> str:
    """How a word is compared as written: NFKC, hiragana folded to katakana, case folded."""
    return to_katakana(text).casefold()


def reading_key(tokens: Sequence[Token]) -> str:
    """How a run of tokens is compared as read: their readings, joined."""
    return "".join(reading(token.text) for token in tokens).casefold()


class Vocabulary:
    """The words that name items, as written and as read, each with its type and value."""

    def __init__(
        self,
        written: Dict[str, Item],
        read: Dict[str, Item],
        max_tokens: int,
        min_reading_chars: int,
        intents: Dict[str, frozenset[str]] | None = None,
    ) -> None:
        """A vocabulary of `written` and `read` keys (see `surface_key`, `reading_key`).

        `intents` names, for each entity type, the intents whose messages carry it.
        """
        self.written = written
        self.read = read
        self.max_tokens = max_tokens
        self.min_reading_chars = min_reading_chars
        self.intents = intents or {}

    def carried_by(self, entity_type: str, intent: str | None) -> bool:
        """Whether messages of `intent` carry entities of `entity_type` in the training data."""
        return intent in self.intents.get(entity_type, frozenset())

    def item_of(self, text: str, tokens: Sequence[Token]) -> Item | None:
        """The item the token run names, by how it is written or else by how it is read."""
        start, end = tokens[0].start, tokens[-1].end
        found = self.written.get(surface_key(text[start:end]))
        if found is not None:
            return found
        said = reading_key(tokens)
        if len(said) < self.min_reading_chars:
            return None
        return self.read.get(said)

    def matches(self, text: str, tokens: Sequence[Token]) -> Iterator[Tuple[int, int, Item]]:
        """Each (first token, end token, item) in the text: longest first, not overlapping."""
        index = 0
        while index < len(tokens):
            longest = min(self.max_tokens, len(tokens) - index)
            for length in range(longest, 0, -1):
                item = self.item_of(text, tokens[index : index + length])
                if item is not None:
                    yield index, index + length, item
                    index += length
                    break
            else:
                index += 1

    def as_json(self) -> Dict[str, Any]:
        """What is persisted with the model."""
        return {
            "written": {key: list(item) for key, item in self.written.items()},
            "read": {key: list(item) for key, item in self.read.items()},
            "intents": {kind: sorted(names) for kind, names in self.intents.items()},
        }

    @classmethod
    def from_json(
        cls, stored: Dict[str, Any], max_tokens: int, min_reading_chars: int
    ) -> Vocabulary:
        """The vocabulary `as_json` persisted."""
        written = {key: (item[0], item[1]) for key, item in stored["written"].items()}
        read = {key: (item[0], item[1]) for key, item in stored["read"].items()}
        intents = {kind: frozenset(names) for kind, names in stored["intents"].items()}
        return cls(written, read, max_tokens, min_reading_chars, intents)


def _annotations(message: Message, types: frozenset[str]) -> List[Dict[str, Any]]:
    return [e for e in message.get(ENTITIES) or [] if e.get(ENTITY_ATTRIBUTE_TYPE) in types]


def learn(
    examples: Iterable[Message],
    synonyms: Dict[str, str],
    types: Sequence[str],
    max_tokens: int,
    min_reading_chars: int,
) -> Vocabulary:
    """The vocabulary of the annotated spans and synonyms of `types` in the training examples.

    Args:
        examples: Tokenized training messages.
        synonyms: Surface form → canonical value (`TrainingData.entity_synonyms`).
        types: The entity types to learn.
        max_tokens: The longest run of tokens a word may span.
        min_reading_chars: The shortest reading matched by reading alone.

    Returns:
        The words annotated at least as often as they appear unannotated in the examples.
    """
    wanted = frozenset(types)
    examples = [m for m in examples if m.get(TEXT) and m.get(TOKENS_NAMES[TEXT])]
    values: Dict[str, collections.Counter[Item]] = collections.defaultdict(collections.Counter)
    written_as: Dict[str, str] = {}  # key -> a surface it was written with, to read it
    for message in examples:
        text = message.get(TEXT)
        for entity in _annotations(message, wanted):
            value = str(entity.get(ENTITY_ATTRIBUTE_VALUE))
            item = (entity[ENTITY_ATTRIBUTE_TYPE], synonyms.get(value, value))
            span = text[entity[ENTITY_ATTRIBUTE_START] : entity[ENTITY_ATTRIBUTE_END]]
            values[surface_key(span)][item] += 1
            written_as.setdefault(surface_key(span), span)
    known_values = {item for counter in values.values() for item in counter}
    for surface, value in synonyms.items():
        for item in {i for i in known_values if i[1] == value}:
            values[surface_key(surface)][item] += 0  # a synonym is a word even if unused here
            written_as.setdefault(surface_key(surface), surface)
    written = {key: counter.most_common(1)[0][0] for key, counter in values.items()}
    read = _readings(written, written_as, min_reading_chars)
    vocabulary = Vocabulary(written, read, max_tokens, min_reading_chars)
    # The intents whose messages carry each type: only there does an unannotated word count
    # against it (「相談しない」 in a question about the family doctor is no answer, and no
    # action reads the answer of a question).
    carrying: Dict[str, set[str]] = collections.defaultdict(set)
    for message in examples:
        for entity in _annotations(message, wanted):
            carrying[entity[ENTITY_ATTRIBUTE_TYPE]].add(str(message.get(INTENT)))
    annotated: collections.Counter[str] = collections.Counter()
    unannotated: collections.Counter[str] = collections.Counter()
    for message in examples:
        text = message.get(TEXT)
        tokens = message.get(TOKENS_NAMES[TEXT])
        spans = [
            (e[ENTITY_ATTRIBUTE_START], e[ENTITY_ATTRIBUTE_END])
            for e in _annotations(message, wanted)
        ]
        for first, last, (entity_type, _) in vocabulary.matches(text, tokens):
            if str(message.get(INTENT)) not in carrying[entity_type]:
                continue
            start, end = tokens[first].start, tokens[last - 1].end
            key = _key_of(vocabulary, text, tokens[first:last])
            if (start, end) in spans:
                annotated[key] += 1
            elif not any(s < end and start < e for s, e in spans):
                unannotated[key] += 1
    ambiguous = {key for key, count in unannotated.items() if count > annotated[key]}
    written = {key: item for key, item in written.items() if key not in ambiguous}
    # A word not learned as written is not learned as read either (統計 nor トウケイ).
    read = _readings(written, written_as, min_reading_chars)
    read = {key: item for key, item in read.items() if key not in ambiguous}
    intents = {kind: frozenset(names) for kind, names in carrying.items()}
    return Vocabulary(written, read, max_tokens, min_reading_chars, intents)


def _readings(
    written: Dict[str, Item], written_as: Dict[str, str], min_reading_chars: int
) -> Dict[str, Item]:
    """The reading of each written word long enough to be matched by reading alone."""
    read: Dict[str, Item] = {}
    for key, item in written.items():
        said = reading_key([Token(written_as[key], 0)])
        if len(said) >= min_reading_chars:
            read.setdefault(said, item)
    return read


def _key_of(vocabulary: Vocabulary, text: str, tokens: Sequence[Token]) -> str:
    """The key a matched run was found by (as written, else as read)."""
    written = surface_key(text[tokens[0].start : tokens[-1].end])
    return written if written in vocabulary.written else reading_key(tokens)


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR, is_trainable=True)
class ItemGazetteer(GraphComponent):
    """Finds the items named in the words the training data names them with (after DIET)."""

    @staticmethod
    def get_default_config() -> Dict[str, Any]:
        """Items, levels and family-doctor answers; runs of up to 8 tokens; readings of 3+ kana.

        8 tokens hold the longest answer of synonyms.yml (まだ|相談|し|て|い|ませ|ん is 7).
        """
        return {
            "entities": ["data_item", "data_level", "family_doctor_answer"],
            "max_tokens": 8,
            "min_reading_chars": 3,
            # FallbackClassifier's defaults; config.yml sets both to its FallbackClassifier's.
            "fallback_threshold": 0.3,
            "fallback_ambiguity_threshold": 0.1,
        }

    @classmethod
    def fingerprint_addon(cls, config: Dict[str, Any]) -> str | None:
        """This module, how words are read and Sudachi's dictionary, for Rasa's training cache."""
        return sudachi_fingerprint(Path(__file__), *readings.reading_sources())

    def __init__(
        self,
        config: Dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        vocabulary: Vocabulary | None = None,
    ) -> None:
        """The component, with the vocabulary it learned (none before training)."""
        self._config = config
        self._types = frozenset(config["entities"])
        self._storage = model_storage
        self._resource = resource
        self.vocabulary = vocabulary or Vocabulary(
            {}, {}, config["max_tokens"], config["min_reading_chars"]
        )

    @classmethod
    def create(
        cls,
        config: Dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> ItemGazetteer:
        """Creates an untrained component."""
        return cls(config, model_storage, resource)

    def train(self, training_data: TrainingData) -> Resource:
        """Learns the vocabulary from the tokenized training examples and persists it."""
        self.vocabulary = learn(
            training_data.training_examples,
            training_data.entity_synonyms,
            self._config["entities"],
            self._config["max_tokens"],
            self._config["min_reading_chars"],
        )
        with self._storage.write_to(self._resource) as directory:
            (directory / VOCABULARY_FILE).write_text(
                json.dumps(self.vocabulary.as_json(), ensure_ascii=False), encoding="utf-8"
            )
        return self._resource

    @classmethod
    def load(
        cls,
        config: Dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> ItemGazetteer:
        """Loads the learned vocabulary (an empty one if the model holds none)."""
        try:
            with model_storage.read_from(resource) as directory:
                stored = json.loads((directory / VOCABULARY_FILE).read_text(encoding="utf-8"))
            vocabulary = Vocabulary.from_json(
                stored, config["max_tokens"], config["min_reading_chars"]
            )
        except (ValueError, FileNotFoundError, KeyError, TypeError, AttributeError):
            logger.warning("%s: the model holds no vocabulary; no item will be found", cls.__name__)
            return cls(config, model_storage, resource)
        return cls(config, model_storage, resource, vocabulary)

    def _falls_back(self, message: Message) -> bool:
        """Whether FallbackClassifier, set as configured here, will not understand the message.

        It will not when the top intent's confidence is below its threshold, or the top two
        intents are closer than its ambiguity threshold.
        """
        given = message.get(INTENT)
        if not isinstance(given, dict):  # a training label: the intent is known
            return False
        confidence = float(given.get(PREDICTED_CONFIDENCE_KEY) or 0.0)
        if confidence < float(self._config["fallback_threshold"]):
            return True
        ranking = message.get(INTENT_RANKING_KEY) or []
        if len(ranking) < 2:
            return False
        gap = float(ranking[0].get(PREDICTED_CONFIDENCE_KEY) or 0.0) - float(
            ranking[1].get(PREDICTED_CONFIDENCE_KEY) or 0.0
        )
        return gap < float(self._config["fallback_ambiguity_threshold"])

    def process(self, messages: List[Message]) -> List[Message]:
        """Sets the items each message names as its only entities of the configured types."""
        for message in messages:
            text = message.get(TEXT) or ""
            tokens = message.get(TOKENS_NAMES[TEXT]) or []
            entities = message.get(ENTITIES) or []
            kept = [e for e in entities if e.get(ENTITY_ATTRIBUTE_TYPE) not in self._types]
            given = message.get(INTENT)  # a dict once classified; a label in training data
            intent = given.get(INTENT_NAME_KEY) if isinstance(given, dict) else given
            ungated = self._falls_back(message)
            found = [
                {
                    ENTITY_ATTRIBUTE_TYPE: entity_type,
                    ENTITY_ATTRIBUTE_START: tokens[first].start,
                    ENTITY_ATTRIBUTE_END: tokens[last - 1].end,
                    ENTITY_ATTRIBUTE_VALUE: value,
                    ENTITY_ATTRIBUTE_CONFIDENCE_TYPE: 1.0,
                    EXTRACTOR: self.__class__.__name__,
                }
                for first, last, (entity_type, value) in self.vocabulary.matches(text, tokens)
                if ungated or self.vocabulary.carried_by(entity_type, intent)
            ]
            if not found and len(kept) == len(entities):
                continue
            kept += found
            kept.sort(key=lambda entity: int(entity[ENTITY_ATTRIBUTE_START]))
            message.set(ENTITIES, kept, add_to_output=True)
        return messages
