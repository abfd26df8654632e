"""Character n-grams of how each word is read, so kana-only and kanji spellings meet (issue 15).

Residents type 「しゅじいがいない」 as often as 「主治医がいない」, 「ﾄﾞｳｲ」 as 「同意」. The
surface-text featurizers see no shared character between those spellings, so an intent learned
from kanji examples is not recognised in kana (and the other way round). This featurizer is
Rasa's `CountVectorsFeaturizer` run on each token's *reading* instead of its text: Sudachi's
katakana reading of the token (「主治医」 → シュジイ; a kana token reads as itself), normalised
with NFKC (half-width ｺﾚｽﾃﾛｰﾙ → コレステロール) and hiragana folded to katakana.

Sudachi cuts a kana-only message into other tokens than its kanji twin (しゅ|じい|が|い|ない
against 主治医|が|い|ない), so the message's sentence features (and the vocabulary) are the
n-grams of its readings joined *without* spaces: シュジイガイナイ either way, the same features.
Each token's sequence features are the n-grams of its own reading.

Readings are computed from the tokens' text with Sudachi's own dictionary (split mode C), so the
component works behind any tokenizer, ours (`bot.nlu.japanese.SudachiTokenizer`) and spaCy's
alike (`bench/baseline/config.yml`). Everything else — vocabulary, persistence, loading — is
Rasa's class unchanged.

Known fault (found 2026-12-03, after the measurements in docs/nlu-report.md): `reading` folds
hiragana to katakana *before* Sudachi reads the word, so kanji words with kana endings are misread
(取り消し → トリリショウシ) and verbs do not yet share features across spellings. The fix — read
the NFKC text, fold the reading — changes every feature and must be re-measured
(`bench/nlu_cv.py --only 0`, then `make bench-nlu`).
"""

from __future__ import annotations

import functools
import unicodedata
from typing import Any, Dict, List, Tuple

from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.nlu.constants import DENSE_FEATURIZABLE_ATTRIBUTES, TOKENS_NAMES
from rasa.nlu.featurizers.sparse_featurizer.count_vectors_featurizer import (
    CountVectorsFeaturizer,
)
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message
from scipy import sparse

# The hiragana block that has katakana twins (ぁ U+3041 … ゖ U+3096), folded by code point.
_HIRAGANA_TO_KATAKANA = {code: code + 0x60 for code in range(0x3041, 0x3097)}
# Distinct token texts whose readings are kept; a token is a word, so this bounds the memory.
READING_CACHE_SIZE = 65_536
# Sudachi refuses input longer than this many bytes (SudachiPy 0.6: 49,149).
MAX_SUDACHI_BYTES = 49_149


@functools.lru_cache(maxsize=1)
def _sudachi() -> Any:
    from sudachipy import Dictionary, SplitMode

    return Dictionary().create(mode=SplitMode.C)


def to_katakana(text: str) -> str:
    """NFKC-normalise `text` and fold its hiragana into katakana."""
    return unicodedata.normalize("NFKC", text).translate(_HIRAGANA_TO_KATAKANA)


@functools.lru_cache(maxsize=READING_CACHE_SIZE)
def reading(word: str) -> str:
    """How `word` is read, in katakana; the word itself (folded) where Sudachi knows no reading.

    Args:
        word: A token's text.

    Returns:
        Its reading: Sudachi's reading of each morpheme, joined, NFKC-normalised, in katakana.
    """
    folded = to_katakana(word)
    if not folded.strip():
        return folded
    if len(folded.encode("utf-8")) > MAX_SUDACHI_BYTES:
        return folded  # longer than Sudachi takes once NFKC has expanded it (「㌀」: four kana)
    parts = []
    for morpheme in _sudachi().tokenize(folded):
        said = morpheme.reading_form()
        # An unknown word (a typo such as 撤会, a name) has no reading of its own: keep its surface.
        parts.append(said if said and not morpheme.is_oov() else morpheme.surface())
    return to_katakana("".join(parts))


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER, is_trainable=True)
class ReadingCountVectorsFeaturizer(CountVectorsFeaturizer):
    """Rasa's `CountVectorsFeaturizer` on the readings of the message's tokens."""

    def _get_message_tokens_by_attribute(self, message: Message, attribute: str) -> List[str]:
        """The readings of the tokens of the text; other attributes as Rasa reads them."""
        if attribute != TEXT:
            tokens: List[str] = super()._get_message_tokens_by_attribute(message, attribute)
            return tokens
        return [reading(token.text) for token in message.get(TOKENS_NAMES[attribute]) or []]

    @staticmethod
    def _convert_attribute_tokens_to_texts(
        attribute_tokens: Dict[str, List[List[str]]],
    ) -> Dict[str, List[str]]:
        """The texts the vocabulary is fitted on: the text's readings joined without spaces."""
        return {
            attribute: [_joined(attribute, tokens) for tokens in all_tokens]
            for attribute, all_tokens in attribute_tokens.items()
        }

    def _create_features(
        self, attribute: str, all_tokens: List[List[str]]
    ) -> Tuple[List[sparse.spmatrix | None], List[sparse.spmatrix | None]]:
        """Rasa's features, but a sentence's n-grams run across its tokens' boundaries."""
        vectorizer = self.vectorizers.get(attribute)
        if not vectorizer:
            return [None], [None]
        sequence_features: List[sparse.spmatrix | None] = []
        sentence_features: List[sparse.spmatrix | None] = []
        for tokens in all_tokens:
            if not tokens:
                sequence_features.append(None)
                sentence_features.append(None)
                continue
            sequence = vectorizer.transform(tokens)
            sequence.sort_indices()
            sequence_features.append(sequence.tocoo())
            if attribute in DENSE_FEATURIZABLE_ATTRIBUTES:
                sentence = vectorizer.transform([_joined(attribute, tokens)])
                sentence.sort_indices()
                sentence_features.append(sentence.tocoo())
            else:
                sentence_features.append(None)
        return sequence_features, sentence_features


def _joined(attribute: str, tokens: List[str]) -> str:
    """A text's readings run together; other attributes' tokens spaced, as Rasa joins them."""
    return ("" if attribute == TEXT else " ").join(tokens)
