"""What every public channel does to text a resident typed before Rasa sees it.

Rasa treats a message whose text starts with "/" as an intent with entities
(`/give_consent{"offer_id": "..."}`), skipping the NLU. It looks for the "/" after stripping:
`UserMessage.__init__` keeps `text.strip()` and `YAMLStoryReader.unpack_regex_message` (run by
the `RegexMessageHandler` of the NLU graph) strips again before `startswith("/")`. `str.strip()`
removes every character `str.isspace()` accepts: ASCII blanks and controls (tab, newline, form
feed, U+001C-U+001F), U+0085, NBSP, the ideographic space U+3000 and the other Unicode spaces and
line/paragraph separators. So `" /ask"` or `"\u3000/ask"` was an intent although it did not start
with "/".

`typed_text` therefore strips exactly as Rasa does and then looks past anything invisible a
resident cannot have meant as text (zero-width characters such as U+200B and U+FEFF, which
`strip()` keeps, other format and control characters, combining marks, blank fillers): if the
first visible character is "/", it becomes the full-width "／". The text is then ordinary text
for the NLU, whatever Rasa or a later normaliser strips. LINE, the web chat and any other
public channel call this one function.
"""

from __future__ import annotations

import unicodedata

from rasa.shared.constants import INTENT_MESSAGE_PREFIX

FULL_WIDTH_SLASH = "／"
# Characters that look blank but are letters or symbols to Unicode (Hangul fillers, braille blank).
BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800")


def is_invisible(char: str) -> bool:
    """Tell whether `char` shows nothing a resident could have meant before a "/".

    Args:
        char: One character.

    Returns:
        True for whitespace, controls, format characters (zero-width space, BOM, direction
        marks), combining marks, unassigned and private-use code points, and blank fillers.
    """
    return (
        char.isspace() or unicodedata.category(char)[0] in ("C", "Z", "M") or char in BLANK_LETTERS
    )


def typed_text(text: str) -> str:
    """Make text a resident typed safe for Rasa: never an intent, whatever precedes the "/".

    Args:
        text: The text as the channel received it.

    Returns:
        The text stripped as Rasa strips it, with the first visible character turned from "/"
        into "／" if it was one (otherwise unchanged).
    """
    stripped = text.strip()  # what UserMessage and unpack_regex_message do
    for index, char in enumerate(stripped):
        if is_invisible(char):
            continue
        if char == INTENT_MESSAGE_PREFIX:
            return stripped[:index] + FULL_WIDTH_SLASH + stripped[index + 1 :]
        break
    return stripped
