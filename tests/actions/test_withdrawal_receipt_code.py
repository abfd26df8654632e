"""Receipt codes in what residents type (bot/receipt_code.py): the same rules as the consent
service, every single-symbol typo and neighbour swap caught, and a typo told apart from no code."""

from __future__ import annotations

import itertools
import random

import pytest

from bot.receipt_code import (
    ALPHABET,
    InvalidCode,
    check_symbol,
    find_code,
    is_valid,
    normalise,
    valid_receipt_code,
)

# Drawn by the consent service (backend/consent_service/receipt_codes.py, new_code()): the two
# sides must accept exactly the same codes.
SERVICE_CODES = ["M8EX-289T-V", "F57B-7RF1-A", "H42T-WD34-3", "FQ00-5KSF-Y", "D0SD-1598-Q"]
CODE = "H42T-WD34-3"


def test_the_alphabet_has_31_unambiguous_symbols() -> None:
    assert len(ALPHABET) == len(set(ALPHABET)) == 31
    assert not set("ILOUZ") & set(ALPHABET)


@pytest.mark.parametrize("code", SERVICE_CODES)
def test_codes_the_service_draws_are_valid_here(code: str) -> None:
    assert normalise(code) == code and valid_receipt_code(code)


def test_the_contract_example_is_not_a_valid_code_of_ours() -> None:
    # K7Q2-M9XD-3 illustrates the format; its check symbol under our rule is D.
    assert check_symbol("K7Q2M9XD") == "D" and not is_valid("K7Q2-M9XD-3")


@pytest.mark.parametrize(
    "typed",
    ["h42t-wd34-3", "H42TWD343", "Ｈ４２Ｔ－ＷＤ３４－３", "H42T ー WD34 ー 3", "h42t wd34 3",
     " H42T‐WD34—3 ", "ｈ４２ｔｰｗｄ３４ｰ３"],
)  # fmt: skip
def test_every_accepted_spelling_normalises_to_the_canonical_code(typed: str) -> None:
    assert normalise(typed) == CODE


def test_every_single_symbol_typo_and_neighbour_swap_is_caught() -> None:
    rng = random.Random(14)  # noqa: S311 - reproducible test cases, not secrets
    for _ in range(200):
        symbols = "".join(rng.choice(ALPHABET) for _ in range(8))
        plain = symbols + check_symbol(symbols)
        assert is_valid(plain)
        for position, symbol in itertools.product(range(9), ALPHABET):
            if plain[position] != symbol:
                typo = plain[:position] + symbol + plain[position + 1 :]
                assert not is_valid(typo), typo
        for position in range(8):
            a, b = plain[position], plain[position + 1]
            if a != b:
                swapped = plain[:position] + b + a + plain[position + 2 :]
                assert not is_valid(swapped), swapped


@pytest.mark.parametrize(
    "text", ["H42T-WD34-O", "H42T-WD34", "H42T-WD34-33", "I42T-WD34-3", "../audit", "x" * 41, ""]
)
def test_anything_else_is_invalid_never_mapped(text: str) -> None:
    with pytest.raises(InvalidCode):
        normalise(text)
    assert not valid_receipt_code(text)


@pytest.mark.parametrize("spelling", ["h42t-wd34-3", "H42TWD343", "H42T WD34 3"])
def test_only_the_canonical_form_may_reach_a_url(spelling: str) -> None:
    assert is_valid(spelling) and not valid_receipt_code(spelling)


@pytest.mark.parametrize(
    "message",
    [
        "受付番号 H42T-WD34-3 の同意を取り消したい",
        "受付番号H42T-WD34-3の同意を取り消したい",
        "h42twd343 を取り消して",
        "受付番号はＨ４２Ｔ－ＷＤ３４－３です",
        "H42T-WD34-3",
        "この番号です：h42t ー wd34 ー 3。取り消してください",
        "LINE で同意した H42T WD34 3",
    ],
)
def test_a_code_is_found_in_a_message(message: str) -> None:
    found = find_code(message)
    assert (found.code, found.mistyped) == (CODE, False)


@pytest.mark.parametrize(
    "message",
    ["受付番号 H42T-WD34-4 の同意を取り消したい", "H42T-WD43-3", "受付番号は H42T-WD34 です",
     "H42T-WD34-O を取り消したい", "K7Q2-M9XD-3"],
)  # fmt: skip
def test_a_mistyped_code_is_told_apart(message: str) -> None:
    found = find_code(message)
    assert found.code is None and found.mistyped and found.found


@pytest.mark.parametrize(
    "message", ["同意を取り消したい", "LINE ID で同意した", "レベル2の情報", "2026年12月1日", ""]
)
def test_a_message_without_a_code_has_none(message: str) -> None:
    assert not find_code(message).found


def test_a_huge_message_is_scanned_in_bounded_time() -> None:
    assert not find_code("A-" * 100_000).found
