"""Receipt codes in what a resident typed: find one, normalise it, tell a typo from no code.

A receipt code (docs/contract.md, "Additions (December)") is `XXXX-XXXX-C`: eight symbols of a
31-symbol alphabet (the digits and the upper-case letters without I, L, O, U and Z) and one check
symbol C = (1*v1 + 2*v2 + ... + 8*v8) mod 31, vi being the index of the i-th symbol in the
alphabet. Every single-symbol typo and every swap of two neighbours changes C, so a mistyped code
is caught here, before any call, and never matches another resident's consent.

The consent service checks codes with the same rules (backend/consent_service/receipt_codes.py);
the two sides never import each other, so this small normaliser is duplicated on purpose and
`tests/actions/test_receipt_code.py` pins both to the same examples.

Residents type codes in many ways: full-width (ＫＱ７２), lower case, with spaces, hyphens,
dashes or the long vowel mark ー (typed for a hyphen on Japanese keyboards) anywhere, or none.
A letter outside the alphabet (O, I, ...) is never silently mapped to a digit: such a code is
reported as mistyped.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXY"
BASE = len(ALPHABET)  # 31, a prime
RANDOM_SYMBOLS = 8
CODE_LENGTH = RANDOM_SYMBOLS + 1
VALUES = {symbol: value for value, symbol in enumerate(ALPHABET)}
# Hyphens, dashes, the long vowel mark (full- and half-width) and spaces.
SEPARATOR_CHARS = r"\s\-‐‑‒–—―−ー－ｰ"
_SEPARATORS = re.compile(f"[{SEPARATOR_CHARS}]+")
# Alphanumeric groups joined by at most three separator characters: "K7Q2 - M9XD - 3".
RUN = re.compile(f"[0-9A-Za-z]+(?:[{SEPARATOR_CHARS}]{{1,3}}[0-9A-Za-z]+)*")
_GROUP = re.compile("[0-9A-Za-z]+")
# The longest input normalised as a code, and the part of a message searched for one: the work
# stays bounded whatever is sent (the channels cap messages far below this).
MAX_CODE_INPUT = 40
MAX_SCANNED = 1000
# A typed run this long that contains a digit looks like an attempt at a code ("mistyped");
# shorter or longer runs ("LINE", a phone number) are not codes at all.
MIN_ATTEMPT, MAX_ATTEMPT = 7, 12


class InvalidCode(ValueError):
    """The text is not a receipt code (length, a symbol outside the alphabet, or the check)."""


@dataclass(frozen=True)
class CodeInText:
    """What a message holds: a valid code, something that looks like a mistyped one, or none.

    Attributes:
        code: The valid code as `XXXX-XXXX-C`, or None.
        mistyped: True when there is no valid code but something code-like was typed.
    """

    code: str | None
    mistyped: bool

    @property
    def found(self) -> bool:
        """Whether the message holds a code or an attempt at one."""
        return self.code is not None or self.mistyped


NOTHING = CodeInText(code=None, mistyped=False)


def check_symbol(symbols: str) -> str:
    """The check symbol of eight symbols of the alphabet.

    Args:
        symbols: The eight random symbols, upper case, without separators.

    Returns:
        One symbol of ALPHABET.

    Raises:
        KeyError: A symbol is not in the alphabet.
    """
    total = sum(weight * VALUES[s] for weight, s in enumerate(symbols, start=1))
    return ALPHABET[total % BASE]


def normalise(text: str) -> str:
    """Read one code as a resident typed it.

    Args:
        text: The code alone, e.g. "ｋ７ｑ２ー…" or "K7Q2 M9XD 3".

    Returns:
        The code as `XXXX-XXXX-C`.

    Raises:
        InvalidCode: When it is not a valid code.
    """
    if len(text) > MAX_CODE_INPUT:
        raise InvalidCode("too long")
    plain = _SEPARATORS.sub("", unicodedata.normalize("NFKC", text)).upper()
    if len(plain) != CODE_LENGTH or any(s not in VALUES for s in plain):
        raise InvalidCode("not nine symbols of the alphabet")
    if check_symbol(plain[:RANDOM_SYMBOLS]) != plain[RANDOM_SYMBOLS]:
        raise InvalidCode("the check symbol does not match")
    return f"{plain[:4]}-{plain[4:8]}-{plain[8:]}"


def is_valid(text: str) -> bool:
    """Whether `text` is exactly one valid code (in any accepted spelling)."""
    try:
        normalise(text)
    except InvalidCode:
        return False
    return True


def find_code(text: str) -> CodeInText:
    """Find a receipt code in a message.

    Every run of letters and digits (groups joined by separators) is tried, as a whole and as
    any sequence of its neighbouring groups, so "受付番号 K7Q2-M9XD-3 の同意" and
    "k7q2m9xd3 を取り消して" both give the code, and "LINE ID" gives nothing.

    Args:
        text: The message as the resident sent it.

    Returns:
        The first valid code; else `mistyped` when a run of 7 to 12 letters and digits with at
        least one digit was typed; else nothing.
    """
    scanned = unicodedata.normalize("NFKC", text[:MAX_SCANNED])
    attempted = False
    for run in RUN.finditer(scanned):
        groups = _GROUP.findall(run.group())
        for first in range(len(groups)):
            joined = ""
            for group in groups[first:]:
                joined += group
                if len(joined) > CODE_LENGTH:
                    break
                if len(joined) == CODE_LENGTH and is_valid(joined):
                    return CodeInText(code=normalise(joined), mistyped=False)
        plain = "".join(groups)
        if MIN_ATTEMPT <= len(plain) <= MAX_ATTEMPT and any(ch.isdigit() for ch in plain):
            attempted = True
    return CodeInText(code=None, mistyped=True) if attempted else NOTHING


def valid_receipt_code(value: object) -> bool:
    """Whether `value` is a code in its canonical form `XXXX-XXXX-C` (safe in a URL path).

    Args:
        value: A code as it came from a conversation (entity, slot or button payload).

    Returns:
        True only for the canonical, checked form.
    """
    return (
        isinstance(value, str)
        and len(value) == CODE_LENGTH + 2
        and is_valid(value)
        and (normalise(value) == value)
    )
