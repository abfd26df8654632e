"""Furigana for the web chat (bot/webchat/furigana.py): the readings of the domain's terms.

Table-driven: each term as it appears in the answers, with the reading a resident should see.
Where Sudachi reads a term wrongly for this domain the module's override must give the right one
(the rows marked "override" fail without it).
"""

from __future__ import annotations

from typing import List, Tuple

import pytest
import yaml

from bot.webchat.furigana import (
    KANJI,
    WORD_READINGS,
    furigana,
    hiragana,
    split_reading,
    with_furigana,
)
from tests.conftest import PROJECT_ROOT

Segment = Tuple[str, str | None]

# (term, reading of all its kanji-bearing segments joined) — the domain's vocabulary.
TERMS = [
    ("情報銀行", "じょうほうぎんこう"),
    ("倫理審査会", "りんりしんさかい"),
    ("データ倫理審査会", "りんりしんさかい"),
    ("既往歴", "きおうれき"),
    ("予防接種", "よぼうせっしゅ"),
    ("健診", "けんしん"),
    ("特定健診", "とくていけんしん"),
    ("船橋市", "ふなばしし"),
    ("要配慮", "ようはいりょ"),
    ("要配慮個人情報", "ようはいりょこじんじょうほう"),
    ("匿名加工", "とくめいかこう"),
    ("約款", "やっかん"),
    ("かかりつけ医", "い"),
    ("個人情報", "こじんじょうほう"),
    ("同意", "どうい"),
    ("撤回", "てっかい"),
    ("提供先", "ていきょうさき"),
    ("実証", "じっしょう"),
    ("情報信託機能", "じょうほうしんたくきのう"),
    ("受付番号", "うけつけばんごう"),
    ("保存期間", "ほぞんきかん"),
    ("医療専門職", "いりょうせんもんしょく"),
    ("防災", "ぼうさい"),
    ("子育て", "こそだ"),
    ("生年月日", "せいねんがっぴ"),
    ("健康診断", "けんこうしんだん"),
    ("市役所", "しやくしょ"),
    ("お薬手帳", "くすりてちょう"),
    ("遺伝子", "いでんし"),
    ("診療報酬", "しんりょうほうしゅう"),
    ("第三者", "だいさんしゃ"),
    ("取り消し", "とけ"),
    ("口腔内細菌", "こうくうないさいきん"),  # override: Sudachi reads 口腔 こうこう
    ("会話は90日間保存します", "かいわにちかんほぞん"),  # override: Sudachi reads 日間 かかん
    ("7.5日で削除します", "にちさくじょ"),  # override: Sudachi reads 日 か after 7.5
    ("3日で削除します", "かさくじょ"),  # みっか: the native reading stays
    ("10分有効です", "ふんゆうこう"),
    ("高齢の方の健康", "こうれいかたけんこう"),  # override: Sudachi reads 方 ほう after の
    ("ほかの方の会話", "かたかいわ"),  # override
    ("実証（デモ）", "じっしょう"),  # Sudachi's one morpheme ジッショウ, cut at the bracket
    ("約款（きまり）", "やっかん"),
]


def readings(segments: List[Segment]) -> str:
    return "".join(reading for _, reading in segments if reading)


@pytest.mark.parametrize(("term", "expected"), TERMS)
def test_domain_terms_read_correctly(term: str, expected: str) -> None:
    segments = furigana(term)
    assert "".join(surface for surface, _ in segments) == term
    assert readings(segments) == expected, segments


def test_okurigana_stay_outside_the_ruby() -> None:
    assert furigana("情報銀行に預ける") == [
        ("情報", "じょうほう"), ("銀行", "ぎんこう"), ("に", None), ("預", "あず"), ("ける", None)
    ]  # fmt: skip
    assert furigana("取り消したい") == [("取", "と"), ("り", None), ("消", "け"), ("したい", None)]
    assert furigana("かかりつけ医") == [("かかりつけ", None), ("医", "い")]


def test_words_without_kanji_have_no_reading() -> None:
    assert furigana("レセプトとマイナポータル") == [("レセプトとマイナポータル", None)]
    assert furigana("") == []


def test_split_reading_falls_back_to_the_whole_morpheme() -> None:
    assert split_reading("1人1人", "ひとりひとり") == [("1人1人", "ひとりひとり")]
    assert split_reading("預ける", "あずける") == [("預", "あず"), ("ける", None)]


def test_hiragana() -> None:
    assert hiragana("ジョウホウギンコウ") == "じょうほうぎんこう"
    assert hiragana("ヴァイオリン・データー") == "ゔぁいおりん・でーたー"


def test_every_override_is_needed() -> None:
    """Each whole-word override differs from what Sudachi says (else it is dead weight)."""
    from bot.webchat.furigana import _tokenizer

    for surface, reading in WORD_READINGS.items():
        [morpheme] = list(_tokenizer().tokenize(surface))
        assert hiragana(morpheme.reading_form()) != reading


def test_every_answer_is_given_back_exactly() -> None:
    """For every response of domain.yml the segments join to the text, readings are hiragana."""
    domain = yaml.safe_load((PROJECT_ROOT / "domain.yml").read_text(encoding="utf-8"))
    texts = [
        variant["text"]
        for variants in domain["responses"].values()
        for variant in variants
        if variant.get("text")
    ]
    assert len(texts) > 50
    for text in texts:
        segments = furigana(text)
        assert "".join(surface for surface, _ in segments) == text
        for surface, reading in segments:
            if reading is not None:
                assert KANJI.search(surface), (surface, reading)
                assert not KANJI.search(reading), (surface, reading)
                assert all(not "ァ" <= c <= "ヺ" for c in reading), (surface, reading)


def test_with_furigana_adds_structured_segments_only() -> None:
    message = with_furigana({"text": "同意を撤回する", "quick_replies": []})
    expected = [["同意", "どうい"], ["を", None], ["撤回", "てっかい"], ["する", None]]
    assert message["furigana"] == expected
    assert message["quick_replies"] == [] and message["text"] == "同意を撤回する"
    assert with_furigana({"text": "はい"}) == {"text": "はい"}
    assert with_furigana({}) == {}
    # markup in a text stays text in a surface: the page only ever sets textContent
    tagged = with_furigana({"text": "<b>情報</b>"})["furigana"]
    assert "".join(surface for surface, _ in tagged) == "<b>情報</b>"


def test_answers_about_one_residents_consent_are_not_cached() -> None:
    from bot.webchat.furigana import _cached

    _cached.cache_clear()
    furigana("受付番号：K7Q2-M9XD-3 を控えてください")
    furigana("受付番号：KQXA-MBXD-C を控えてください")
    furigana("2026年12月1日に同意しました")
    furigana("2026-12-01 10:15 に記録")
    assert _cached.cache_info().currsize == 0
    furigana("同意を撤回する")
    furigana("会話は90日間保存します")
    assert _cached.cache_info().currsize == 2
