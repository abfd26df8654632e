"""A light Japanese front end for DIET: Sudachi tokens and GiNZA's static word vectors.

Rasa's stock front end for Japanese (`SpacyNLP` with `ja_ginza`, `SpacyTokenizer`,
`SpacyFeaturizer`) runs GiNZA's neural pipeline (tok2vec, NER, morphologizer, ...) on every
message, and keeps spaCy's vocabulary of about a million strings in memory, although DIET reads
only the tokens, their lemmas and the static word vectors. Those three come from Sudachi (the
tokenizer GiNZA itself calls, split mode C) and from ja_ginza's vector table, so the two
components below give DIET exactly the features the stock front end gives
(`tests/bot/test_nlu_japanese.py` compares them token by token with spaCy's) without loading spaCy
at all: a turn costs a fraction of a millisecond instead of tens, and the server holds the vector
table memory-mapped (shared between processes) instead of a private copy of spaCy's vocabulary.

The baseline this replaces is kept in `bench/baseline/config.yml`; `make bench` compares both.
"""

from __future__ import annotations

import importlib.util
import logging
import re
import threading
from pathlib import Path
from typing import Any, Dict, List, Type

import numpy as np
import numpy.typing as npt
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.constants import DENSE_FEATURIZABLE_ATTRIBUTES, TOKENS_NAMES
from rasa.nlu.featurizers.dense_featurizer.dense_featurizer import DenseFeaturizer
from rasa.nlu.tokenizers.tokenizer import Token, Tokenizer
from rasa.shared.exceptions import RasaException
from rasa.shared.nlu.constants import FEATURE_TYPE_SENTENCE, FEATURE_TYPE_SEQUENCE
from rasa.shared.nlu.training_data.features import Features
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

logger = logging.getLogger(__name__)

POS_TAG_KEY = "pos"  # the key rasa's SpacyTokenizer uses, read by LexicalSyntacticFeaturizer
# Sudachi refuses longer input; longer text is tokenized in pieces of at most this many
# characters (the channels cap messages far below it).
MAX_SUDACHI_CHARS = 12_000


def _marker_pattern() -> re.Pattern[str]:
    from bot.privacy import MARKERS

    return re.compile("|".join(sorted({re.escape(marker) for marker in MARKERS.values()})))


_MASK64 = (1 << 64) - 1
_MURMUR_M = 0xC6A4A7935BD1E995
_MURMUR_R = 47


def spacy_string_key(text: str) -> int:
    """The 64-bit key spaCy gives a string (`spacy.strings.hash_string`), computed without spaCy.

    spaCy hashes the UTF-8 bytes with MurmurHash64A and seed 1; vector tables are keyed by it.

    Args:
        text: The string, e.g. a token's text.

    Returns:
        The unsigned 64-bit key.
    """
    data = text.encode("utf8")
    length = len(data)
    h = (1 ^ (length * _MURMUR_M)) & _MASK64
    full = length - length % 8
    for offset in range(0, full, 8):
        k = int.from_bytes(data[offset : offset + 8], "little")
        k = (k * _MURMUR_M) & _MASK64
        k ^= k >> _MURMUR_R
        k = (k * _MURMUR_M) & _MASK64
        h ^= k
        h = (h * _MURMUR_M) & _MASK64
    tail = data[full:]
    if tail:
        h ^= int.from_bytes(tail, "little")
        h = (h * _MURMUR_M) & _MASK64
    h ^= h >> _MURMUR_R
    h = (h * _MURMUR_M) & _MASK64
    h ^= h >> _MURMUR_R
    return h


def lower_keeping_offsets(text: str) -> str:
    """`text` lower-cased, except the few characters whose lower case is longer (「İ」 is two).

    Tokens' offsets point into the message's own text (entities are cut from it by them), so the
    lower-cased text must keep every character where it was.
    """
    lowered = text.lower()
    if len(lowered) == len(text):
        return lowered
    return "".join(c if len(c.lower()) != 1 else c.lower() for c in text)


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.MESSAGE_TOKENIZER, is_trainable=False)
class SudachiTokenizer(Tokenizer):
    """Tokens and lemmas from Sudachi, as GiNZA's tokenizer makes them, without spaCy."""

    @staticmethod
    def get_default_config() -> Dict[str, Any]:
        """The component's default config (see parent class for full docstring)."""
        return {
            "intent_tokenization_flag": False,
            "intent_split_symbol": "_",
            "token_pattern": None,
            "prefix_separator_symbol": None,
            # GiNZA's split mode (ja_ginza's config.cfg): the longest units.
            "split_mode": "C",
            # Like SpacyNLP's `case_sensitive: false`: text is lower-cased before tokenizing.
            "case_sensitive": False,
        }

    @staticmethod
    def required_packages() -> List[str]:
        """Any extra python dependencies required for this component to run."""
        return ["sudachipy"]

    def __init__(self, config: Dict[str, Any]) -> None:
        """Creates the tokenizer; Sudachi's dictionary is opened on first use."""
        super().__init__(config)
        self._case_sensitive = bool(config.get("case_sensitive", False))
        self._split_mode = str(config.get("split_mode", "C"))
        self._local = threading.local()  # a Sudachi tokenizer is not safe to share across threads
        self._markers = _marker_pattern()

    @classmethod
    def fingerprint_addon(cls, config: Dict[str, Any]) -> str | None:
        """Sudachi's version and dictionary, for Rasa's training cache (tokens depend on them)."""
        from bot.nlu.readings import sudachi_fingerprint

        return sudachi_fingerprint()

    def _tokenizer(self) -> Any:
        tokenizer = getattr(self._local, "sudachi", None)
        if tokenizer is None:
            from sudachipy import Dictionary, SplitMode

            mode = {"A": SplitMode.A, "B": SplitMode.B, "C": SplitMode.C}[self._split_mode]
            tokenizer = Dictionary().create(mode=mode)
            self._local.sudachi = tokenizer
        return tokenizer

    def tokenize(self, message: Message, attribute: str) -> List[Token]:
        """Tokenizes the text of the provided attribute of the incoming message.

        The markers the channels put where they masked a personal detail (`bot.privacy.MARKERS`,
        e.g. ［名前］) are left out: they are not words of the question, and the model is trained
        on text without them. A message of nothing but markers keeps them, so it is not empty.
        """
        text = message.get(attribute)
        if not text:
            return []
        if not self._case_sensitive:
            text = lower_keeping_offsets(text)
        tokens = self._sudachi_tokens(text)
        marked = [match.span() for match in self._markers.finditer(text)]
        if marked:
            words = [t for t in tokens if not any(s < t.end and t.start < e for s, e in marked)]
            tokens = words or tokens
        patterned: List[Token] = self._apply_token_pattern(tokens)
        return patterned

    def _sudachi_tokens(self, text: str) -> List[Token]:
        tokenizer = self._tokenizer()
        tokens: List[Token] = []
        for start in range(0, len(text), MAX_SUDACHI_CHARS):
            piece = text[start : start + MAX_SUDACHI_CHARS]
            for morpheme in tokenizer.tokenize(piece):
                surface = morpheme.surface()
                if not surface or not surface.strip():
                    continue
                tag = "-".join(part for part in morpheme.part_of_speech()[:4] if part != "*")
                tokens.append(
                    Token(
                        surface,
                        start + morpheme.begin(),
                        lemma=morpheme.dictionary_form() or surface,
                        data={POS_TAG_KEY: tag},
                    )
                )
        return tokens


def _package_vocab_dir(package: str) -> Path:
    """The `vocab` folder of an installed spaCy model package, found without importing it."""
    spec = importlib.util.find_spec(package)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        for vocab in sorted(Path(location).glob(f"{package}-*/vocab")):
            if (vocab / "vectors").is_file() and (vocab / "key2row").is_file():
                return vocab
    raise RasaException(
        f"The spaCy model package '{package}' with word vectors is not installed "
        f"(pip install {package.replace('_', '-')})."
    )


class StaticVectors:
    """A spaCy vector table read without spaCy: keys sorted for lookup, rows memory-mapped."""

    def __init__(
        self,
        keys: npt.NDArray[np.uint64],
        rows: npt.NDArray[np.int32],
        vectors: npt.NDArray[np.float32],
    ) -> None:
        """Wraps sorted `keys`, their `rows` and the `vectors` matrix."""
        self._keys = keys
        self._rows = rows
        self._vectors = vectors
        self.dimension = int(vectors.shape[1])

    @classmethod
    def from_package(cls, package: str) -> StaticVectors:
        """Opens the vector table of an installed spaCy model package (e.g. `ja_ginza`)."""
        import srsly

        vocab = _package_vocab_dir(package)
        key2row: Dict[int, int] = srsly.read_msgpack(vocab / "key2row")
        keys = np.fromiter(key2row.keys(), dtype=np.uint64, count=len(key2row))
        rows = np.fromiter(key2row.values(), dtype=np.int64, count=len(key2row))
        del key2row
        order = np.argsort(keys)
        vectors = np.load(vocab / "vectors", mmap_mode="r")
        return cls(keys[order], rows[order].astype(np.int32), vectors)

    def row(self, text: str) -> int | None:
        """The table row of a token's text, or None when the table has no vector for it."""
        key = np.uint64(spacy_string_key(text))
        index = int(np.searchsorted(self._keys, key))
        if index < len(self._keys) and self._keys[index] == key:
            return int(self._rows[index])
        return None

    def matrix(self, texts: List[str]) -> npt.NDArray[np.float32]:
        """One float32 row per text: its vector, or zeros (as spaCy gives for unknown words)."""
        result = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for position, text in enumerate(texts):
            row = self.row(text)
            if row is not None:
                result[position] = self._vectors[row]
        return result


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER, is_trainable=False)
class StaticVectorsFeaturizer(DenseFeaturizer, GraphComponent):
    """Dense features from a spaCy model's static word vectors, like `SpacyFeaturizer`."""

    @classmethod
    def required_components(cls) -> List[Type[Any]]:
        """Components that should be included in the pipeline before this component."""
        return [Tokenizer]

    @staticmethod
    def get_default_config() -> Dict[str, Any]:
        """The component's default config (see parent class for full docstring)."""
        return {
            **DenseFeaturizer.get_default_config(),
            # The installed spaCy model package whose vectors are used.
            "model": "ja_ginza",
            # How the sentence vector is made from the token vectors: "mean" or "max".
            "pooling": "mean",
        }

    @staticmethod
    def required_packages() -> List[str]:
        """Any extra python dependencies required for this component to run."""
        return ["srsly"]

    def __init__(self, config: Dict[str, Any], name: str, vectors: StaticVectors) -> None:
        """Creates the featurizer over an opened vector table."""
        super().__init__(name, config)
        self._vectors = vectors
        self._pooling = str(self._config["pooling"])

    @classmethod
    def create(
        cls,
        config: Dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> GraphComponent:
        """Creates the featurizer and opens the vector table of `config["model"]`."""
        vectors = StaticVectors.from_package(str(config["model"]))
        return cls(config, execution_context.node_name, vectors)

    def process(self, messages: List[Message]) -> List[Message]:
        """Adds a vector per token and a pooled sentence vector to each message."""
        for message in messages:
            for attribute in DENSE_FEATURIZABLE_ATTRIBUTES:
                self._set_features(message, attribute)
        return messages

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        """Featurizes the training examples in place."""
        self.process(training_data.training_examples)
        return training_data

    def _set_features(self, message: Message, attribute: str) -> None:
        tokens = message.get(TOKENS_NAMES[attribute])
        if not message.get(attribute) or not tokens:
            return
        sequence = self._vectors.matrix([token.text for token in tokens])
        sentence = self.aggregate_sequence_features(sequence, self._pooling)
        alias = self._config["alias"]
        message.add_features(Features(sequence, FEATURE_TYPE_SEQUENCE, attribute, alias))
        message.add_features(Features(sentence, FEATURE_TYPE_SENTENCE, attribute, alias))

    @classmethod
    def validate_config(cls, config: Dict[str, Any]) -> None:
        """Checks the pooling operation."""
        if config.get("pooling", "mean") not in ("mean", "max"):
            raise RasaException("StaticVectorsFeaturizer: pooling must be 'mean' or 'max'.")
