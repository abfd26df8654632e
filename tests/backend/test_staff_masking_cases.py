"""The staff console's masking, the second line of defence, on the intake's generated set.

The same labelled messages as tests/privacy/test_intake_masking.py (`tests/privacy/cases.py`,
standard library only, so it imports here in the consent service's environment). The console's
masking sees what the channels stored, already masked once; measured here on the raw messages,
as if the first line had missed everything. Figures in docs/privacy.md.

- The pattern layer (no GiNZA): recall >= 0.99 for every kind but names. Names need a dictionary:
  the patterns find only names given with "名前は", "と申します" or "母の…の代わり".
- With GiNZA (STAFF_MASK_WITH_GINZA): names too, on the first GINZA_CASES messages (GiNZA costs
  ~30 ms a message, so not the whole set).
"""

from __future__ import annotations

from collections import Counter
from functools import lru_cache

import pytest

from consent_service.staff.masking import mask
from tests.privacy.cases import KINDS, Case, cases, missed

MIN_RECALL = 0.99
# What the patterns alone reach for names (measured 0.48); asserted so that it cannot drop.
MIN_NAME_RECALL_PATTERNS = 0.45
# What patterns + GiNZA reach for names on the first GINZA_CASES messages (measured 0.97; 0.945
# since the generator grew new shapes in issue 19's review and its first 300 messages changed:
# the 3 misses of 55 are kana names without a cue, あおききょうこの家族です, ふくだですが).
MIN_NAME_RECALL_GINZA = 0.94
GINZA_CASES = 300


def _recall(pairs: list[tuple[Case, str]]) -> dict[str, float]:
    found: Counter[str] = Counter()
    total: Counter[str] = Counter()
    for case, masked in pairs:
        for detail in case.details:
            total[detail.kind] += 1
            found[detail.kind] += not missed(detail, masked)
    return {kind: found[kind] / total[kind] for kind in total}


@lru_cache(maxsize=1)
def _patterns() -> dict[str, float]:
    return _recall([(case, mask(case.text)) for case in cases()])


@pytest.mark.parametrize("kind", [kind for kind in KINDS if kind != "name"])
def test_pattern_layer_recall(kind: str) -> None:
    assert _patterns()[kind] >= MIN_RECALL


def test_pattern_layer_finds_names_only_where_they_are_given() -> None:
    assert _patterns()["name"] >= MIN_NAME_RECALL_PATTERNS


@pytest.fixture(scope="module")
def ginza():
    spacy = pytest.importorskip("spacy")
    return spacy.load("ja_ginza")


def test_with_ginza_every_kind(ginza) -> None:
    recall = _recall([(case, mask(case.text, ginza)) for case in cases()[:GINZA_CASES]])
    assert recall.pop("name") >= MIN_NAME_RECALL_GINZA
    assert all(value >= MIN_RECALL for value in recall.values()), recall


# The two misses of issue 19: a given name after a masked surname, a block after a masked town.
def test_the_given_name_goes_with_the_surname(ginza) -> None:
    for text in ("山田花子です", "遠藤花子って言います", "木村悠真の家族です"):
        masked = mask(text, ginza)
        assert "花子" not in masked and "悠真" not in masked, masked


@pytest.mark.parametrize("nlp", [False, True])
def test_the_block_number_goes_with_the_town(ginza, nlp: bool) -> None:
    masked = mask("船橋市本町1-2-3に住んでいます", ginza if nlp else None)
    assert "1-2-3" not in masked and "本町" not in masked
    assert "＊＊" not in masked  # one marker for the whole address, not ［伏せ字］＊＊-＊＊


def test_the_intake_markers_stay_as_they_are() -> None:
    text = "［名前］です。電話は［電話番号］、血圧は［数値］です"
    assert mask(text) == text


def test_a_lone_surrogate_does_not_stop_the_masking(ginza) -> None:
    assert "花子" not in mask("\ud800山田花子です", ginza)
