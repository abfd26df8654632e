"""Kana-only and kanji spellings of a word get the same reading features (bot/nlu/readings.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, List

import numpy as np
import pytest
from rasa.engine.graph import ExecutionContext
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.nlu.constants import TOKENS_NAMES
from rasa.shared.nlu.constants import INTENT, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.nlu.japanese import SudachiTokenizer
from bot.nlu.readings import ReadingCountVectorsFeaturizer, reading
from tests.bot.test_nlu_japanese import HOSTILE


@pytest.mark.parametrize(
    ("spellings", "said"),
    [
        (["主治医", "しゅじい", "シュジイ", "ｼｭｼﾞｲ"], "シュジイ"),
        (["同意", "どうい", "ﾄﾞｳｲ"], "ドウイ"),
        (["撤回", "てっかい"], "テッカイ"),
        (["お知らせ", "おしらせ"], "オシラセ"),
        (["ｺﾚｽﾃﾛｰﾙ", "コレステロール"], "コレステロール"),
        # kanji with kana endings: Sudachi reads them as written, not folded first
        (["取り消し", "とりけし"], "トリケシ"),
        (["申し込み", "もうしこみ"], "モウシコミ"),
        (["教えて", "おしえて"], "オシエテ"),
    ],
)
def test_every_spelling_of_a_word_reads_the_same(spellings: List[str], said: str) -> None:
    assert {reading(word) for word in spellings} == {said}


def test_an_unknown_word_keeps_its_own_letters() -> None:
    # Sudachi does not know the typo 撤会; a shared placeholder reading would merge all typos.
    assert reading("撤会") == "撤会"
    assert reading("撤回") == "テッカイ"


def test_letters_digits_and_symbols_keep_their_own_letters() -> None:
    # a receipt code read aloud (ハチケー…) would share n-grams with unrelated Japanese words
    assert reading("8K3Q-7XZ2") == "8K3Q-7XZ2"
    assert reading("レベル2") == reading("れべる2") == "レベル2"
    assert reading("ＬＩＮＥ") == reading("line") == reading("ライン") == "ライン"  # a known word
    assert "キゴウ" not in reading("・") + reading("※") + reading("！")


def test_long_tokens_are_read_but_not_kept() -> None:
    from bot.nlu import readings

    readings._cached_read.cache_clear()
    assert reading("ﷺ" * 2) and _cache_size() == 0  # 2 characters, 36 after NFKC
    before = _cache_size()
    assert reading("ア" * 200) == "ア" * 200
    assert _cache_size() == before


def test_the_training_cache_key_follows_how_words_are_read(monkeypatch: Any) -> None:
    from bot.nlu import readings

    key = ReadingCountVectorsFeaturizer.fingerprint_addon({})
    assert key and key == ReadingCountVectorsFeaturizer.fingerprint_addon({})
    monkeypatch.setattr(readings.metadata, "version", lambda name: "0.0.0")
    assert ReadingCountVectorsFeaturizer.fingerprint_addon({}) != key


def _cache_size() -> int:
    from bot.nlu import readings

    return readings._cached_read.cache_info().currsize


@pytest.mark.parametrize("text", [*HOSTILE, "", " ", "\u3000"])
def test_hostile_text_has_a_reading(text: str) -> None:
    assert isinstance(reading(text), str)


def test_a_token_too_long_for_sudachi_reads_as_itself() -> None:
    # 5,000 「㌀」 pass the channels' limit; NFKC makes 20,000 kana, more than Sudachi takes.
    assert reading("㌀" * 5000) == "アパート" * 5000


def _context(name: str) -> ExecutionContext:
    return ExecutionContext(graph_schema=None, node_name=name)  # type: ignore[arg-type]


@pytest.fixture()
def featurizer(tmp_path: Any) -> ReadingCountVectorsFeaturizer:
    config = {
        **ReadingCountVectorsFeaturizer.get_default_config(),
        "analyzer": "char_wb",
        "min_ngram": 1,
        "max_ngram": 4,
    }
    storage = LocalModelStorage(tmp_path)
    return ReadingCountVectorsFeaturizer.create(
        config, storage, Resource("readings"), _context("readings")
    )


def _message(text: str, intent: str | None = None) -> Message:
    message = Message(data={TEXT: text, **({INTENT: intent} if intent else {})})
    tokenizer = SudachiTokenizer(SudachiTokenizer.get_default_config())
    message.set(TOKENS_NAMES[TEXT], tokenizer.tokenize(message, TEXT))
    return message


def _sentence_vector(featurizer: ReadingCountVectorsFeaturizer, text: str) -> Any:
    message = _message(text)
    featurizer.process([message])
    _, sentence = message.get_sparse_features(TEXT)
    assert sentence is not None
    return sentence.features.toarray()


def test_kana_and_kanji_messages_get_the_same_features(
    featurizer: ReadingCountVectorsFeaturizer,
) -> None:
    training = TrainingData(
        [_message("主治医がいない", "ask_no_family_doctor"), _message("同意を撤回したい", "x")]
    )
    featurizer.train(training)
    kanji = _sentence_vector(featurizer, "主治医がいない")
    assert kanji.sum() > 0
    np.testing.assert_array_equal(kanji, _sentence_vector(featurizer, "しゅじいがいない"))
    assert not np.array_equal(kanji, _sentence_vector(featurizer, "どういをてっかいしたい"))


def test_a_trained_featurizer_loads_with_its_vocabulary(
    featurizer: ReadingCountVectorsFeaturizer, tmp_path: Any
) -> None:
    featurizer.train(TrainingData([_message("同意したい", "give_consent")]))
    before = _sentence_vector(featurizer, "どういしたい")
    loaded = ReadingCountVectorsFeaturizer.load(
        featurizer._config,
        featurizer._model_storage,
        featurizer._resource,
        _context("readings"),
    )
    np.testing.assert_array_equal(before, _sentence_vector(loaded, "どういしたい"))


def test_the_training_cache_key_covers_the_masking_tokenizer_it_reads_with() -> None:
    from bot.nlu import readings
    from bot.privacy import masking

    sources = readings.reading_sources()
    assert Path(masking.__file__).resolve() in [source.resolve() for source in sources]
    assert all(source.is_file() for source in sources)
