"""Receipt codes: short codes a resident can read aloud, write down and type back.

Format `XXXX-XXXX-C`: eight symbols drawn with `secrets` from a 31-symbol alphabet (the digits
and the upper-case letters without I, L, O, U and Z, which are read or written like 1, 1, 0, V
and 2), then one check symbol

    C = (1 * v1 + 2 * v2 + ... + 8 * v8) mod 31

where vi is the value (index in the alphabet) of the i-th symbol. 31 is prime and the weights
1..8 are distinct and non-zero modulo 31, so changing one symbol (by d != 0: the sum changes by
i * d != 0 mod 31) or swapping two different neighbours (the sum changes by vi - vi+1 != 0) always
changes C: every single-symbol typo and every adjacent swap is caught, never matched to another
receipt. The check symbol itself is one of the 31, so a changed C is caught too.

31^8 = 852,891,037,441 codes (39.6 bits). Codes are unique in the `receipts` table (a collision
draws again). Normalisation accepts full-width characters (NFKC), lower case, and hyphens,
spaces or dashes anywhere; it never maps a letter outside the alphabet (O, I, ...) to another
symbol: such a code is simply invalid.
"""

from __future__ import annotations

import re
import secrets
import unicodedata
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session

from consent_service.models import Receipt

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXY"
BASE = len(ALPHABET)  # 31, a prime
RANDOM_SYMBOLS = 8
CODE_SPACE = BASE**RANDOM_SYMBOLS  # 852,891,037,441
VALUES = {symbol: value for value, symbol in enumerate(ALPHABET)}
# Separators a resident may type or paste: hyphens, dashes, the long vowel mark (often typed for
# a hyphen in Japanese input), spaces.
_SEPARATORS = re.compile(r"[\s\-‐‑‒–—―−ー－ｰ]+")
# The longest input considered (anything longer is not a code; keeps the work bounded).
MAX_INPUT = 40
# How often a collision with an existing code is drawn again before giving up.
ATTEMPTS = 20

RandomBelow = Callable[[int], int]


class InvalidCode(ValueError):
    """The text is not a receipt code (wrong length, a symbol outside the alphabet, or check)."""


def check_symbol(symbols: str) -> str:
    """The check symbol of eight symbols of the alphabet.

    Args:
        symbols: The eight random symbols, without separators.

    Returns:
        One symbol of ALPHABET.
    """
    total = sum(weight * VALUES[s] for weight, s in enumerate(symbols, start=1))
    return ALPHABET[total % BASE]


def format_code(symbols: str) -> str:
    """Group nine symbols (eight + check) as `XXXX-XXXX-C`."""
    return f"{symbols[:4]}-{symbols[4:8]}-{symbols[8:]}"


def new_code(randbelow: RandomBelow = secrets.randbelow) -> str:
    """Draw a fresh code.

    Args:
        randbelow: The random source (`secrets.randbelow`; tests pass their own).

    Returns:
        A code `XXXX-XXXX-C`.
    """
    symbols = "".join(ALPHABET[randbelow(BASE)] for _ in range(RANDOM_SYMBOLS))
    return format_code(symbols + check_symbol(symbols))


def normalise(text: str) -> str:
    """Read a code as a resident typed it.

    Full-width characters become half-width (NFKC), letters upper case, separators are dropped;
    then the length, the alphabet and the check symbol are checked.

    Args:
        text: What was typed or pasted.

    Returns:
        The code as `XXXX-XXXX-C`.

    Raises:
        InvalidCode: When it is not a valid code.
    """
    if len(text) > MAX_INPUT:
        raise InvalidCode("too long")
    plain = _SEPARATORS.sub("", unicodedata.normalize("NFKC", text)).upper()
    if len(plain) != RANDOM_SYMBOLS + 1 or any(s not in VALUES for s in plain):
        raise InvalidCode("not nine symbols of the alphabet")
    if check_symbol(plain[:RANDOM_SYMBOLS]) != plain[RANDOM_SYMBOLS]:
        raise InvalidCode("the check symbol does not match")
    return format_code(plain)


def is_valid(text: str) -> bool:
    """Whether `text` normalises to a valid code."""
    try:
        normalise(text)
    except InvalidCode:
        return False
    return True


def issue(session: Session, randbelow: RandomBelow | None = None) -> str:
    """Draw a code no receipt has yet (inside the caller's transaction).

    The unique index on `receipts.receipt_code` stays the last word: two transactions drawing
    the same new code at the same moment (odds about 1 in 10^12) make one of them fail.

    Args:
        session: The open session.
        randbelow: The random source; None means `secrets.randbelow`.

    Returns:
        A code `XXXX-XXXX-C` unused at the time of the call.

    Raises:
        RuntimeError: When ATTEMPTS draws all collided (a broken random source).
    """
    source = randbelow or secrets.randbelow
    for _ in range(ATTEMPTS):
        code = new_code(source)
        taken = session.execute(
            select(Receipt.receipt_id).where(Receipt.receipt_code == code)
        ).first()
        if taken is None:
            return code
    raise RuntimeError("no unused receipt code after several draws; is the random source broken?")
