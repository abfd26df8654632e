"""Codes residents type are not personal details: the intake never masks them.

A receipt code (`XXXX-XXXX-C`, bot/receipt_code.py) or a linking code (eight digits) typed
loosely must reach the assistant whole, or withdrawing by code and linking fail. Letters and
digits of a code can look like a value with a unit ("41kg", "7cm") or a phone-like number.
"""

from __future__ import annotations

import random

import pytest

from bot.privacy import mask_personal
from bot.receipt_code import ALPHABET, check_symbol

RANDOM = random.Random(20261201)  # noqa: S311 - test data, the same every run


def receipt_code() -> str:
    symbols = "".join(RANDOM.choice(ALPHABET) for _ in range(8))
    return f"{symbols[:4]}-{symbols[4:]}-{check_symbol(symbols)}"


def spellings(code: str) -> list[str]:
    """The ways residents type one code."""
    lower = code.lower()
    return [
        code,
        lower,
        lower.replace("-", " "),
        code.replace("-", ""),
        code.replace("-", "ー"),
        code.translate({ord(c): ord(c) + 0xFEE0 for c in "0123456789ABCDEFGHJKMNPQRSTVWXY-"}),
    ]


CODES = [receipt_code() for _ in range(1500)]


@pytest.mark.parametrize("form", range(6))
def test_receipt_codes_typed_alone_are_never_masked(form: int) -> None:
    masked = [text for code in CODES if (text := spellings(code)[form]) != mask_personal(text).text]
    assert masked == []


@pytest.mark.parametrize(
    "template", ["受付番号 {code} の同意を取り消したい", "{code}です", "番号は{code}"]
)
def test_receipt_codes_in_a_sentence_are_never_masked(template: str) -> None:
    for code in CODES[:300]:
        for spelling in spellings(code):
            text = template.format(code=spelling)
            assert mask_personal(text).text == text


@pytest.mark.parametrize(
    "text", ["1234-5678", "連携コード 1234-5678", "１２３４ー５６７８", "12345678"]
)
def test_linking_codes_are_never_masked(text: str) -> None:
    assert mask_personal(text).text == text


def test_a_weight_with_its_unit_is_still_masked() -> None:
    assert "62" not in mask_personal("体重は62kgです").text
    assert "62" not in mask_personal("62kgになりました").text
