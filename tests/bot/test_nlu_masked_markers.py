"""The NLU reads a masked message as it reads the question alone (issue 19).

The channels replace personal details with markers (`bot.privacy.MARKERS`, e.g. ［名前］) before
Rasa sees a message. The markers are not words of the question: the tokenizer leaves them out,
so a message like "［名前］です。情報銀行って何ですか" gets the tokens, and so the features, of
"です。情報銀行って何ですか".
"""

from __future__ import annotations

import pytest
from rasa.nlu.constants import TOKENS_NAMES
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message

from bot.nlu.japanese import SudachiTokenizer
from bot.privacy import MARKERS


def tokens(text: str) -> list[str]:
    tokenizer = SudachiTokenizer(SudachiTokenizer.get_default_config())
    message = Message(data={TEXT: text})
    tokenizer.process([message])
    return [token.text for token in message.get(TOKENS_NAMES[TEXT])]


@pytest.mark.parametrize("marker", sorted(set(MARKERS.values())))
def test_no_marker_becomes_a_token(marker: str) -> None:
    masked = tokens(f"{marker}です。情報銀行って何ですか")
    assert masked == tokens("です。情報銀行って何ですか")


def test_words_around_markers_keep_their_offsets() -> None:
    tokenizer = SudachiTokenizer(SudachiTokenizer.get_default_config())
    text = "血圧は［数値］です。レベル2の扱いは？"
    message = Message(data={TEXT: text})
    tokenizer.process([message])
    for token in message.get(TOKENS_NAMES[TEXT]):
        assert text[token.start : token.end] == token.text
    assert "血圧" in [token.text for token in message.get(TOKENS_NAMES[TEXT])]


def test_a_message_of_markers_only_keeps_its_tokens() -> None:
    # Nothing else to read: the markers stay, so the message still has features.
    assert tokens("［電話番号］") != []


def test_brackets_that_are_not_markers_are_words() -> None:
    assert "健診" in tokens("［健診］の結果はどのレベル？")
