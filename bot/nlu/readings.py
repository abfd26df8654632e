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

Sudachi reads the NFKC text as the resident wrote it, and only its reading is folded to katakana:
folding first would hand Sudachi kanji with katakana endings, which it misreads (取リ消シ →
トリリショウシ). What has no reading worth sharing keeps its own letters: words Sudachi does not
know (the typo 撤会), digits and single Latin letters (in a receipt code 8K3Q Sudachi reads
「8」 ハチ and 「K」 キロ), and symbols (「・」 is not キゴウ); known Latin words are read
(LINE → ライン).
"""

from __future__ import annotations

import functools
import hashlib
import re
import unicodedata
from importlib import metadata
from pathlib import Path
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
# Longer token texts are read each time rather than kept (a word is shorter; a flood is not).
CACHED_CHARS = 32
# Sudachi refuses input longer than this many bytes (SudachiPy 0.6: 49,149).
MAX_SUDACHI_BYTES = 49_149
# Parts of speech whose Sudachi reading names the class (「・」 reads キゴウ), not the word.
_SYMBOLS = ("補助記号", "記号", "空白")
# Digits and single Latin letters: Sudachi reads 「8」 ハチ, 「K」 キロ and 「T」 トン, which would
# give a receipt code n-grams of unrelated words; they are written the same in every spelling. Known
# Latin words keep their reading (LINE and ライン meet).
_DIGITS_OR_LETTER = re.compile(r"[A-Za-z]|.*[0-9].*")


def _sudachi() -> Any:
    """The intake masking's Sudachi tokenizer (split mode C), opened once per thread."""
    from bot.privacy.masking import _sudachi as masking_sudachi

    return masking_sudachi()


def to_katakana(text: str) -> str:
    """NFKC-normalise `text` and fold its hiragana into katakana."""
    return unicodedata.normalize("NFKC", text).translate(_HIRAGANA_TO_KATAKANA)


def reading(word: str) -> str:
    """How `word` is read, in katakana; its own letters where the reading would not help.

    Args:
        word: A token's text.

    Returns:
        Sudachi's reading of each morpheme of the NFKC text, joined and folded to katakana; an
        unknown word, digits, single Latin letters and symbols keep their (NFKC, folded) surface.
    """
    text = unicodedata.normalize("NFKC", word)
    if len(text) > CACHED_CHARS:
        return _read(text)  # what is kept is bounded after NFKC: 「ﷺ」 becomes 18 characters
    return _cached_read(text)


def _read(text: str) -> str:
    """The reading of `text`, already NFKC-normalised."""
    if not text.strip() or len(text.encode("utf-8")) > MAX_SUDACHI_BYTES:
        # blank, or longer than Sudachi takes once NFKC has expanded it (「㌀」: four kana)
        return to_katakana(text)
    parts = []
    for morpheme in _sudachi().tokenize(text):
        surface = morpheme.surface()
        said = morpheme.reading_form()
        keep_surface = (
            not said
            or morpheme.is_oov()  # a typo such as 撤会 or a name has no reading of its own
            or morpheme.part_of_speech()[0] in _SYMBOLS
            or _DIGITS_OR_LETTER.fullmatch(surface) is not None
        )
        parts.append(surface if keep_surface else said)
    return to_katakana("".join(parts))


_cached_read = functools.lru_cache(maxsize=READING_CACHE_SIZE)(_read)


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER, is_trainable=True)
class ReadingCountVectorsFeaturizer(CountVectorsFeaturizer):
    """Rasa's `CountVectorsFeaturizer` on the readings of the message's tokens."""

    @classmethod
    def fingerprint_addon(cls, config: Dict[str, Any]) -> str | None:
        """This module's source and Sudachi's dictionary, for Rasa's training cache.

        Rasa keys a cached component by its class's source and config only; `reading` lives
        outside the class, so without this a change to how words are read (or a new Sudachi
        dictionary) would reuse features computed the old way.
        """
        return sudachi_fingerprint(*reading_sources())

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


def reading_sources() -> Tuple[Path, ...]:
    """The source files `reading` depends on.

    This module, and the intake masking module whose Sudachi tokenizer it reads with
    (bot/privacy/masking.py, located without importing it).
    """
    here = Path(__file__)
    return here, here.parents[1] / "privacy" / "masking.py"


def sudachi_fingerprint(*sources: Path) -> str:
    """A hash of these source files and the installed Sudachi and its dictionary.

    For a component's `fingerprint_addon`: Rasa's training cache keys a component by its class's
    source and config, not by the module functions or the dictionary its output depends on.
    """
    digest = hashlib.sha256()
    for source in sources:
        digest.update(source.read_bytes())
    for distribution in ("sudachipy", "sudachidict_core"):
        try:
            digest.update(f"{distribution}=={metadata.version(distribution)}".encode())
        except metadata.PackageNotFoundError:
            digest.update(f"{distribution} missing".encode())
    return digest.hexdigest()


def _joined(attribute: str, tokens: List[str]) -> str:
    """A text's readings run together; other attributes' tokens spaced, as Rasa joins them."""
    return ("" if attribute == TEXT else " ").join(tokens)
