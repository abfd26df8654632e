"""Typed text never becomes an intent, whatever blank or invisible characters precede the "/".

Checked with Rasa's own code: `UserMessage` (which strips the text) and
`YAMLStoryReader.unpack_regex_message` (what the NLU graph's `RegexMessageHandler` runs), so the
tests follow Rasa if its stripping ever changes.
"""

from __future__ import annotations

import sys
import unicodedata

import pytest
from rasa.core.channels.channel import UserMessage
from rasa.shared.core.training_data.story_reader.yaml_story_reader import YAMLStoryReader
from rasa.shared.nlu.constants import INTENT, INTENT_NAME_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message

from bot.channels.guard import typed_text
from bot.channels.line import event_text
from tests.bot.test_webchat_channel import WebChat

# Every character str.strip() removes (Rasa strips with it): ASCII blanks and the controls
# U+001C-U+001F, U+0085, NBSP, U+1680, U+2000-U+200A, U+2028/2029, U+202F, U+205F, U+3000.
WHITESPACE = [chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace()]
# Invisible characters strip() keeps: zero-width space/joiners, word joiner, BOM, direction
# marks, soft hyphen, Mongolian vowel separator, combining grapheme joiner, Hangul filler, NUL.
INVISIBLE = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u200e", "\u200f", "\u00ad",
             "\u180e", "\u034f", "\u3164", "\x00"]  # fmt: skip
PREFIXES = WHITESPACE + INVISIBLE + [" \u200b\u3000", "\ufeff \n", "\u3000\u3000", "\r\n\t"]
PAYLOADS = ["/ask_data_levels", '/give_consent{"offer_id": "../audit/verify"}']


def rasa_intent(text: str) -> str | None:
    """The intent Rasa would take from `text` without its NLU (None: the NLU decides)."""
    message = UserMessage(text)
    parsed = YAMLStoryReader.unpack_regex_message(Message({TEXT: message.text}))
    intent = parsed.get(INTENT)
    return intent.get(INTENT_NAME_KEY) if intent else None


def name(prefix: str) -> str:
    return "+".join(unicodedata.name(c, f"U+{ord(c):04X}") for c in prefix)


def test_the_whitespace_list_is_what_rasa_strips() -> None:
    assert len(WHITESPACE) == 29 and "\u3000" in WHITESPACE and "\u00a0" in WHITESPACE
    for char in WHITESPACE:  # the bypass: each of these in front of "/" made an intent
        assert rasa_intent(char + "/ask_data_levels") == "ask_data_levels", name(char)


@pytest.mark.parametrize("payload", PAYLOADS)
@pytest.mark.parametrize("prefix", PREFIXES, ids=name)
def test_line_text_is_never_an_intent(prefix: str, payload: str) -> None:
    text = event_text({"type": "message", "message": {"type": "text", "text": prefix + payload}})
    assert text is not None
    assert rasa_intent(text) is None, repr(text)
    assert "／" in text


@pytest.mark.parametrize("prefix", PREFIXES, ids=name)
def test_line_postback_that_is_not_ours_is_never_an_intent(prefix: str) -> None:
    data = prefix + '/give_consent{"offer_id": "../audit/verify"}'
    text = event_text({"type": "postback", "postback": {"data": data}})
    assert text is None or rasa_intent(text) is None, repr(text)


@pytest.mark.parametrize("field", ["message", "payload"])
@pytest.mark.parametrize("payload", PAYLOADS)
@pytest.mark.parametrize("prefix", PREFIXES, ids=name)
async def test_web_chat_text_is_never_an_intent(prefix: str, payload: str, field: str) -> None:
    chat = WebChat()
    assert await chat.connect("s1")
    await chat.utter("s1", {field: prefix + payload})
    [text] = chat.texts
    assert rasa_intent(text) is None, repr(text)


@pytest.mark.parametrize(
    ("text", "safe"),
    [
        ("/affirm", "／affirm"),
        ("\u3000/affirm ", "／affirm"),
        ("\u200b/affirm", "\u200b／affirm"),
        ("\ufeff\u200b /affirm", "\ufeff\u200b ／affirm"),
        ("a/b", "a/b"),
        ("  情報銀行？\n", "情報銀行？"),
        ("／affirm", "／affirm"),
        ("//x", "／/x"),
        ("\u200b", "\u200b"),
        ("", ""),
    ],
)  # fmt: skip
def test_typed_text(text: str, safe: str) -> None:
    assert typed_text(text) == safe
    assert typed_text(safe) == safe  # idempotent: a channel may apply it twice
