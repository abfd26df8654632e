"""The light Japanese front end gives DIET exactly what Rasa's stock spaCy front end gives.

`bot.nlu.japanese` replaces `SpacyNLP` + `SpacyTokenizer` + `SpacyFeaturizer` (config.yml); the
benchmark's quality figures rest on the claim that tokens, offsets, lemmas, POS tags and both
kinds of dense features are identical. This checks it with Rasa's own stock components on every
training and test example, and on hostile text.
"""

from __future__ import annotations

from typing import Any, List

import numpy as np
import pytest
from rasa.engine.graph import ExecutionContext
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.nlu.constants import TOKENS_NAMES
from rasa.nlu.featurizers.dense_featurizer.spacy_featurizer import SpacyFeaturizer
from rasa.nlu.tokenizers.spacy_tokenizer import SpacyTokenizer
from rasa.nlu.utils.spacy_utils import SpacyNLP
from rasa.shared.importers.rasa import RasaFileImporter
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message

from bot.nlu.japanese import StaticVectorsFeaturizer, SudachiTokenizer, spacy_string_key
from tests.conftest import PROJECT_ROOT

HOSTILE = [
    "ＡＢＣ　ｄｅｆ　情報銀行", "İstanbulの歩数", "血圧…どうなる？", "歩数\n\n体重\t体温",
    "😀🎉 同意したい 👍🏽", "\u200b\u200d\u2028 ゼロ幅", "ｶﾀｶﾅ ﾃﾞｰﾀ", "A" * 300,
    "ｷﾞｶﾞｶﾞ" * 40, "Level3 遺伝子 データ", "   先頭と末尾の空白   ", "①②③ ㈱ ℡",
    "\x01\x02制御文字\x7f", "/give_consent{\"data_item\": \"genetic\"}",
]  # fmt: skip


def _texts() -> List[str]:
    importer = RasaFileImporter(
        training_data_paths=[str(PROJECT_ROOT / "data"), str(PROJECT_ROOT / "tests" / "nlu")],
        domain_path=str(PROJECT_ROOT / "domain.yml"),
    )
    data = importer.get_nlu_data()
    texts = [m.get(TEXT) for m in data.training_examples if m.get(TEXT)]
    assert len(texts) > 1000
    return texts + HOSTILE


@pytest.fixture(scope="module")
def front_ends(tmp_path_factory: Any) -> Any:
    storage = LocalModelStorage(tmp_path_factory.mktemp("storage"))

    def context(name: str) -> ExecutionContext:
        return ExecutionContext(graph_schema=None, node_name=name)  # type: ignore[arg-type]

    resource = Resource("front-end")
    spacy_nlp = SpacyNLP.create(
        {**SpacyNLP.get_default_config(), "model": "ja_ginza", "case_sensitive": False},
        storage, resource, context("nlp"),
    )  # fmt: skip
    stock = (
        spacy_nlp,
        SpacyTokenizer.create(SpacyTokenizer.get_default_config(), storage, resource, context("t")),
        SpacyFeaturizer.create(
            {**SpacyFeaturizer.get_default_config(), "alias": "dense"}, storage, resource,
            context("f"),
        ),
    )  # fmt: skip
    light = (
        SudachiTokenizer.create(
            SudachiTokenizer.get_default_config(), storage, resource, context("t")
        ),
        StaticVectorsFeaturizer.create(
            {**StaticVectorsFeaturizer.get_default_config(), "alias": "dense"}, storage,
            resource, context("f"),
        ),
    )  # fmt: skip
    return stock, light


def _through_stock(stock: Any, text: str) -> Message:
    spacy_nlp, tokenizer, featurizer = stock
    message = Message(data={TEXT: text})
    spacy_nlp.process([message], spacy_nlp.provide())
    tokenizer.process([message])
    featurizer.process([message])
    return message


def _through_light(light: Any, text: str) -> Message:
    tokenizer, featurizer = light
    message = Message(data={TEXT: text})
    tokenizer.process([message])
    featurizer.process([message])
    return message


def _tokens(message: Message) -> List[Any]:
    return [(t.text, t.start, t.end, t.lemma, t.data) for t in message.get(TOKENS_NAMES[TEXT])]


def test_same_tokens_and_features_as_the_stock_front_end(front_ends: Any) -> None:
    stock, light = front_ends
    # Where lower-casing lengthens the text (「İ」), the stock front end's offsets run past the
    # message's characters; ours stay on them (the test below), so those texts differ by design.
    texts = [text for text in _texts() if len(text.lower()) == len(text)]
    for text in texts:
        expected, actual = _through_stock(stock, text), _through_light(light, text)
        assert _tokens(actual) == _tokens(expected), text
        for kind in ("sequence", "sentence"):
            want = [f for f in expected.features if f.type == kind]
            got = [f for f in actual.features if f.type == kind]
            assert len(got) == len(want) == 1, text
            assert got[0].features.dtype == want[0].features.dtype
            np.testing.assert_array_equal(got[0].features, want[0].features, err_msg=text)
            assert got[0].origin == want[0].origin


def test_string_keys_are_spacys() -> None:
    spacy_strings = pytest.importorskip("spacy.strings")
    for text in ["", "a", "情報", "12345678", "123456789", "歩数データ", "😀", "x" * 17, *HOSTILE]:
        assert spacy_string_key(text) == spacy_strings.hash_string(text), text


def test_whitespace_only_text_gives_no_tokens_and_no_crash(front_ends: Any) -> None:
    _, light = front_ends
    message = _through_light(light, " \u3000\n\t ")
    assert message.get(TOKENS_NAMES[TEXT]) == []
    assert message.features == []


def test_text_longer_than_sudachi_accepts_is_tokenized_in_pieces(front_ends: Any) -> None:
    _, light = front_ends
    text = "情報銀行について教えてください。" * 2000
    tokens = _through_light(light, text).get(TOKENS_NAMES[TEXT])
    assert tokens[-1].end == len(text)
    assert all(text[t.start : t.end] == t.text for t in tokens)


@pytest.mark.parametrize("text", [*HOSTILE, "İİİ血圧", "ＡＢＣİ健診"])
def test_every_token_lies_where_its_text_is_in_the_message(text: str) -> None:
    tokenizer = SudachiTokenizer(SudachiTokenizer.get_default_config())
    for token in tokenizer.tokenize(Message(data={TEXT: text}), TEXT):
        assert text[token.start : token.end].lower() == token.text.lower(), (text, token.text)


def test_each_thread_tokenizes_with_its_own_sudachi_tokenizer() -> None:
    from concurrent.futures import ThreadPoolExecutor

    tokenizer = SudachiTokenizer(SudachiTokenizer.get_default_config())
    texts = [f"健診の結果を{n}回見せたい" for n in range(200)]

    def words(text: str) -> List[str]:
        return [t.text for t in tokenizer.tokenize(Message(data={TEXT: text}), TEXT)]

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert list(pool.map(words, texts)) == [words(text) for text in texts]
    assert tokenizer._tokenizer() is tokenizer._tokenizer()  # kept per thread, not re-opened
    with ThreadPoolExecutor(max_workers=1) as pool:
        assert pool.submit(tokenizer._tokenizer).result() is not tokenizer._tokenizer()


def test_the_training_cache_key_follows_the_sudachi_dictionary(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from bot.nlu import readings

    key = SudachiTokenizer.fingerprint_addon({})
    assert key and key == SudachiTokenizer.fingerprint_addon({})
    monkeypatch.setattr(readings.metadata, "version", lambda name: "0.0.0")
    assert SudachiTokenizer.fingerprint_addon({}) != key
