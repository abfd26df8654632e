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

`intake` is the one step every channel (LINE, the web chat, REST) applies to typed text before
Rasa sees it (issue 19): personal details are masked (`bot.privacy.mask_personal`), so what Rasa
parses, stores in the tracker store, publishes to the event broker and logs is the masked text;
the raw text lives only in the channel's memory for that one message. When something was removed,
`rasa_texts` puts the system intent `/personal_detail_removed{"detail_kind": [...]}`
(bot/channels/system_intents.py) before the masked text: the assistant tells the resident which
kind of detail it removed (once per conversation, `actions/privacy.py`) and then answers the
masked message as usual. Button payloads the assistant offered are not typed text and are not
masked.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

from rasa.shared.constants import INTENT_MESSAGE_PREFIX

from bot.channels.system_intents import removal_message
from bot.privacy import DetailKind, Masked, mask_personal

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


def intake(text: str) -> Masked:
    """Take typed text in: personal details masked, and never an intent.

    Args:
        text: The text as the channel received it (held only for this call).

    Returns:
        The text to hand Rasa (masked, then made safe by `typed_text`) and the kinds of detail
        removed from it.
    """
    masked = mask_personal(text)
    return Masked(typed_text(masked.text), masked.kinds)


def removal_notice(kinds: Iterable[DetailKind]) -> str | None:
    """The system intent telling the assistant which kinds of detail were removed.

    Args:
        kinds: The kinds removed from one message.

    Returns:
        e.g. `/personal_detail_removed{"detail_kind": ["name", "phone"]}` (kinds sorted), or
        None when nothing was removed.
    """
    names = sorted({DetailKind(kind).value for kind in kinds})
    if not names:
        return None
    return removal_message(names)


def rasa_texts(masked: Masked) -> list[str]:
    """What Rasa receives for one typed message, in order.

    Args:
        masked: The message after `intake`.

    Returns:
        The removal notice first when something was removed, then the masked text.
    """
    notice = removal_notice(masked.kinds)
    return [notice, masked.text] if notice else [masked.text]
