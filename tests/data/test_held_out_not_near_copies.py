"""The held-out NLU set (tests/nlu) must measure understanding, not recall of training sentences.

`test_held_out_sentences_are_unseen` (test_training_data.py) only catches exact copies; a test
sentence that differs from a training one by a particle or a comma measures the same thing. This
test fails when a held-out sentence is within a small edit distance of any training sentence in
data/nlu/*.yml (read at run time, so files added later are checked too): after normalising both
(annotations removed by Rasa's loader, NFKC, lower case, punctuation, symbols and spaces
stripped), Levenshtein distance ≤ max(3, 20% of the shorter length) is a near-copy. The same
rule applies to the sentences read aloud (Sudachi's katakana readings), where a held-out reading
of 8 or more kana inside a training reading counts too: 「どういのりれきをみせて」 is a copy of
「ﾄﾞｳｲの履歴をみせて」 that no surface distance sees.
"""

from __future__ import annotations

import functools
import random
import unicodedata
from collections import Counter
from typing import Any, List, Tuple

import numpy as np
import pytest
from rasa.shared.nlu.training_data.loading import load_data

from tests.conftest import CONTRACT_INTENTS, PROJECT_ROOT
from tests.data.test_training_data import EXTRA_INTENTS

MIN_HELD_OUT = 10  # per intent a resident types (not the intents the channels send)
MIN_DISTANCE = 3
RELATIVE_DISTANCE = 0.2


def normalise(text: str) -> str:
    """NFKC, lower case, and drop punctuation (P*), symbols (S*), separators (Z*), controls (C*)."""
    folded = unicodedata.normalize("NFKC", text).lower()
    return "".join(ch for ch in folded if unicodedata.category(ch)[0] not in "PSZC")


def allowed_distance(a: str, b: str) -> int:
    """The largest edit distance at which two normalised sentences count as near-copies."""
    return max(MIN_DISTANCE, int(RELATIVE_DISTANCE * min(len(a), len(b))))


def bounded_levenshtein(a: str, b: str, limit: int) -> int:
    """Levenshtein distance of a and b, or limit + 1 as soon as it is known to exceed limit.

    Only the diagonal band of width 2·limit + 1 is computed, and the row loop stops once every
    cell of a row exceeds the limit (distances never shrink from one row to the next).
    """
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    if len(a) > len(b):
        a, b = b, a
    over = limit + 1
    previous = [j if j <= limit else over for j in range(len(b) + 1)]
    for i in range(1, len(a) + 1):
        low = max(1, i - limit)
        high = min(len(b), i + limit)
        current = [over] * (len(b) + 1)
        current[0] = i if i <= limit else over
        char = a[i - 1]
        for j in range(low, high + 1):
            cost = 0 if char == b[j - 1] else 1
            best = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            current[j] = best if best <= limit else over
        if min(current[max(0, low - 1) : high + 1]) > limit:
            return over
        previous = current
    return min(previous[len(b)], over)


def near_copies(held_out: List[str], training: List[str]) -> List[Tuple[str, str, int]]:
    """Every (held-out, training, distance) near-copy, in the held-out set's order.

    Two cheap lower bounds of the edit distance rule out most pairs before the dynamic programme
    runs: the length difference, and the bag distance (the larger length minus the characters the
    two sentences share, counted with multiplicity), both computed for all training sentences at
    once with numpy.
    """
    train = sorted({normalise(t) for t in training})
    vocabulary = {ch: i for i, ch in enumerate(sorted(set("".join(train))))}
    counts = np.zeros((len(train), len(vocabulary)), dtype=np.int32)
    for row, sentence in enumerate(train):
        for ch in sentence:
            counts[row, vocabulary[ch]] += 1
    lengths = np.array([len(t) for t in train], dtype=np.int32)
    found = []
    for original in held_out:
        text = normalise(original)
        own = Counter(text)
        columns = [vocabulary[ch] for ch in own if ch in vocabulary]
        wanted = np.array([own[ch] for ch in own if ch in vocabulary], dtype=np.int32)
        shared = np.minimum(counts[:, columns], wanted).sum(axis=1) if columns else 0
        shorter = np.minimum(lengths, len(text))
        limits = np.maximum(MIN_DISTANCE, np.floor(RELATIVE_DISTANCE * shorter)).astype(np.int32)
        close_in_length = np.abs(lengths - len(text)) <= limits
        close_in_characters = np.maximum(lengths, len(text)) - shared <= limits
        for row in np.flatnonzero(close_in_length & close_in_characters):
            candidate = train[row]
            limit = allowed_distance(text, candidate)
            distance = bounded_levenshtein(text, candidate, limit)
            if distance <= limit:
                found.append((original, candidate, distance))
    return found


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("kitten", "sitting", 3),
        ("", "abc", 3),
        ("同意したい", "同意したい", 0),
        ("同意を取り消したい", "同意をとりけしたい", 2),
        ("あいうえお", "かきくけこ", 5),
    ],
)
def test_levenshtein(a: str, b: str, expected: int) -> None:
    assert bounded_levenshtein(a, b, 10) == expected
    assert bounded_levenshtein(a, b, expected) == expected
    if expected:
        assert bounded_levenshtein(a, b, expected - 1) == expected


def test_normalise_strips_form_not_content() -> None:
    assert normalise("ＯＫ、いいよ！　 (笑)") == "okいいよ笑"
    assert normalise("レベル２って〜何？") == "レベル2って何"


def test_near_copies_are_found() -> None:
    training = ["マイナンバーカードは必要？", "情報銀行って何？"]
    held_out = ["マイナンバーカードって必要？", "情報銀行の仕組みを一から説明してください"]
    assert [pair[0] for pair in near_copies(held_out, training)] == ["マイナンバーカードって必要？"]


def test_prefilters_drop_no_near_copy() -> None:
    """The numpy prefilters against the plain distance on every pair of a random sample."""
    rng = random.Random(15)  # noqa: S311 - a fixed sample, not a secret
    alphabet = "あいうえおかきくけこ同意取消"
    sample = ["".join(rng.choices(alphabet, k=rng.randint(0, 14))) for _ in range(120)]
    held_out, training = sample[:40], sample[40:]
    expected = [
        (a, b, bounded_levenshtein(a, b, allowed_distance(a, b)))
        for a in held_out
        for b in sorted(set(training))
        if bounded_levenshtein(a, b, allowed_distance(a, b)) <= allowed_distance(a, b)
    ]
    assert expected, "the sample should contain near-copies"
    assert near_copies(held_out, training) == expected


def test_no_held_out_sentence_is_a_near_copy_of_a_training_sentence() -> None:
    training = load_data(str(PROJECT_ROOT / "data" / "nlu"))
    held_out = load_data(str(PROJECT_ROOT / "tests" / "nlu"))
    found = near_copies(
        [m.get("text") for m in held_out.intent_examples],
        [m.get("text") for m in training.intent_examples],
    )
    report = "\n".join(f"{test!r} ~ {train!r} (distance {d})" for test, train, d in found)
    assert found == [], f"{len({t for t, _, _ in found})} near-copies:\n{report}"


# A held-out sentence this long (in kana) found inside a training sentence is a copy with words
# around it (「おしらせ とうろく したい」 inside 「さいがいの ときの おしらせ とうろく したい」).
MIN_CONTAINED = 8


@functools.lru_cache(maxsize=1)
def _sudachi() -> Any:
    """Sudachi's tokenizer (split mode C, as the pipeline's), made on first use."""
    from sudachipy import Dictionary, SplitMode

    return Dictionary().create(mode=SplitMode.C)


def reading(text: str) -> str:
    """The sentence as read aloud: `normalise`, then Sudachi's katakana reading of each token.

    「どういのりれきをみせて」 and 「ﾄﾞｳｲの履歴をみせて」 differ in nearly every character but read
    the same, so the surface comparison above misses such pairs.
    """
    plain = normalise(text)
    return "".join(token.reading_form() for token in _sudachi().tokenize(plain)) if plain else ""


def test_reading_sees_kana_and_kanji_alike() -> None:
    assert reading("ﾄﾞｳｲの履歴をみせて") == reading("どういのりれきをみせて")
    assert reading("同意を取り消したい") != reading("お知らせを止めたい")


def test_no_held_out_sentence_is_a_near_copy_when_read_aloud() -> None:
    """The same rule on the readings, plus a long held-out reading inside a training reading."""
    training = {
        reading(m.get("text")): m.get("text")
        for m in load_data(str(PROJECT_ROOT / "data" / "nlu")).intent_examples
    }
    held_out = {
        reading(m.get("text")): m.get("text")
        for m in load_data(str(PROJECT_ROOT / "tests" / "nlu")).intent_examples
    }
    found = [
        f"{held_out[test]!r} ~ {training[train]!r} (distance {d} read aloud)"
        for test, train, d in near_copies(list(held_out), list(training))
    ]
    found += [
        f"{held_out[test]!r} inside {training[train]!r} (read aloud)"
        for test in held_out
        if len(test) >= MIN_CONTAINED
        for train in training
        if test in train and test != train
    ]
    assert found == [], f"{len(found)} near-copies:\n" + "\n".join(found)


def test_every_intent_has_ten_held_out_sentences() -> None:
    held_out = load_data(str(PROJECT_ROOT / "tests" / "nlu"))
    counts = Counter(str(m.get("intent")) for m in held_out.intent_examples)
    short = {i: counts[i] for i in CONTRACT_INTENTS + EXTRA_INTENTS if counts[i] < MIN_HELD_OUT}
    assert short == {}
