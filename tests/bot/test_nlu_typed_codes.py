"""A code typed alone gets its intent from its form (bot/nlu/typed_codes.py)."""

from __future__ import annotations

import pytest
from rasa.shared.nlu.constants import INTENT, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message

from bot.nlu.typed_codes import TypedCodeClassifier, code_intent
from bot.receipt_code import check_symbol

CODE = "K7Q2M9XD"
VALID = f"{CODE[:4]}-{CODE[4:]}-{check_symbol(CODE)}"
WRONG_CHECK = VALID[:-1] + ("A" if VALID[-1] != "A" else "B")


@pytest.mark.parametrize(
    "text",
    [
        VALID,
        VALID.lower(),
        VALID.lower().replace("-", " "),
        VALID.replace("-", ""),
        VALID.replace("-", "ー"),
        f"受付番号は{VALID}です",
        f"受付番号：{VALID}",
        VALID.translate({ord(c): ord(c) + 0xFEE0 for c in VALID}),
    ],
)
def test_a_receipt_code_alone_is_inform_receipt_code(text: str) -> None:
    assert code_intent(text) == "inform_receipt_code"


@pytest.mark.parametrize(
    "text", ["1234-5678", "12345678", "連携コードは 1234 5678 です", "１２３４ー５６７８"]
)
def test_eight_digits_alone_are_inform_link_code(text: str) -> None:
    assert code_intent(text) == "inform_link_code"


def test_a_mistyped_code_alone_is_inform_receipt_code() -> None:
    # The withdrawal flow answers it as mistyped; DIET alone sometimes took it for nothing.
    assert code_intent(WRONG_CHECK) == "inform_receipt_code"
    assert code_intent(f"受付番号は{WRONG_CHECK}です") == "inform_receipt_code"


@pytest.mark.parametrize("text", ["ABCDEFGH", "ABC1", "090-1234-5678"])
def test_no_letters_and_digits_of_a_code_length_is_no_code(text: str) -> None:
    assert code_intent(text) is None


@pytest.mark.parametrize(
    "text",
    [
        f"受付番号 {VALID} の同意を取り消したい",  # a request that names a code
        "レベル2って何？",
        "2",
        "047-123-4567",
        "1234-5678-9012",
        "はい",
        "",
        "LINE ID",
        "x" * 500,
    ],
)
def test_anything_else_is_left_to_the_classifier(text: str) -> None:
    assert code_intent(text) is None


def test_the_component_puts_the_code_intent_first_with_full_confidence() -> None:
    message = Message(data={TEXT: VALID.lower()})
    message.set(INTENT, {"name": "nlu_fallback", "confidence": 0.55})
    message.set(
        INTENT_RANKING_KEY,
        [
            {"name": "inform_link_code", "confidence": 0.5},
            {"name": "inform_receipt_code", "confidence": 0.2},
        ],
    )
    [out] = TypedCodeClassifier().process([message])
    assert out.get(INTENT) == {"name": "inform_receipt_code", "confidence": 1.0}
    assert [r["name"] for r in out.get(INTENT_RANKING_KEY)] == [
        "inform_receipt_code",
        "inform_link_code",
    ]


def test_other_messages_are_untouched() -> None:
    message = Message(data={TEXT: "情報銀行って何？"})
    message.set(INTENT, {"name": "ask_info_bank", "confidence": 0.9})
    [out] = TypedCodeClassifier().process([message])
    assert out.get(INTENT) == {"name": "ask_info_bank", "confidence": 0.9}
