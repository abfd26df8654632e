"""What every Rasa-side server checks and sets before it starts (server.py, action_server.py).

- **Private files.** The process's umask becomes 0077: the tracker store's SQLite file, logs and
  anything else it creates are readable by its own user only.
- **Strong tokens.** `ACTION_SERVER_TOKEN`, `RASA_API_TOKEN` and `CONSENT_API_TOKEN` guard the
  action server, Rasa's HTTP API and the consent service. A guessable one is as good as none, so
  a token shorter than 32 random bytes in URL-safe base64 (43 characters, what
  `secrets.token_urlsafe(32)` and `make run` give; 64 for hex digits, as the consent service
  counts) is refused at start-up with a message saying which and how to make one; so is a
  required one that is missing.
- **A strong pseudonym key.** `SUBJECT_PSEUDONYM_KEY` keys every pseudonym (LINE ids, subject
  ids, signed button data): the action server and Rasa's `run` refuse to start without one of the
  same strength, instead of failing at the first resident's message.
- **Endpoint variables from `.env`.** Rasa fills `${ACTION_SERVER_TOKEN}` in endpoints files from
  the environment only; the settings also read `.env`, so the value found there is exported to
  this process (the environment still wins). The token then never appears on a command line.

Nothing happens at import.
"""

from __future__ import annotations

import os
from typing import Iterable

from pydantic import SecretStr

from bot.settings import Settings

PRIVATE_UMASK = 0o077
# secrets.token_urlsafe(32): 32 random bytes are 43 URL-safe base64 characters, 64 hex digits.
MIN_TOKEN_CHARS = 43
MIN_HEX_TOKEN_CHARS = 64
HEX_DIGITS = frozenset("0123456789abcdefABCDEF")
# A long placeholder ("xxxx…", "changeme" repeated) has few distinct characters; 43 random
# URL-safe characters have about 32, 64 random hex digits all 16.
MIN_DISTINCT_CHARS = 12
TOKEN_NAMES = ("ACTION_SERVER_TOKEN", "RASA_API_TOKEN", "CONSENT_API_TOKEN")
HOW_TO_MAKE_ONE = (
    "make one with `python3 -c 'import secrets; print(secrets.token_urlsafe(32))'`"
    " (`make run` writes them to .env)"
)


def private_files() -> None:
    """Make every file and folder this process creates private to its user (umask 0077)."""
    os.umask(PRIVATE_UMASK)


def strong_token(value: str) -> bool:
    """Tell whether `value` is long and varied enough to hold 32 random bytes.

    Args:
        value: The token as configured.

    Returns:
        True for at least 43 characters (64 if all are hex digits) with at least 12 distinct
        ones.
    """
    minimum = MIN_HEX_TOKEN_CHARS if set(value) <= HEX_DIGITS else MIN_TOKEN_CHARS
    return len(value) >= minimum and len(set(value)) >= MIN_DISTINCT_CHARS


def token_problem(name: str, value: str | None, required: bool = False) -> str | None:
    """What is wrong with one token, in one line, or None when nothing is.

    Args:
        name: The variable's name, e.g. `ACTION_SERVER_TOKEN`.
        value: Its value (None or empty: not set).
        required: Whether it must be set.

    Returns:
        The message, or None.
    """
    if not value:
        return f"{name} is not set: {HOW_TO_MAKE_ONE}." if required else None
    if not strong_token(value):
        return (
            f"{name} is too weak (at least {MIN_TOKEN_CHARS} characters of 32 random bytes): "
            f"{HOW_TO_MAKE_ONE}."
        )
    return None


def _secret(settings: Settings, name: str) -> str | None:
    value: SecretStr | None = getattr(settings, name.lower())
    return value.get_secret_value() if value is not None else None


def check_tokens(settings: Settings, required: Iterable[str] = ()) -> None:
    """Refuse to start with a weak token, or without a required one.

    Args:
        settings: This process's settings.
        required: Names of tokens that must be set (the others are checked only when set).

    Raises:
        SystemExit: With a one-line message naming the token.
    """
    needed = set(required)
    for name in TOKEN_NAMES:
        problem = token_problem(name, _secret(settings, name), name in needed)
        if problem:
            raise SystemExit(problem)


def check_pseudonym_key(settings: Settings) -> None:
    """Refuse to start without a strong `SUBJECT_PSEUDONYM_KEY`.

    Every pseudonym the Rasa side makes (the LINE user ids Rasa sees, the subject ids sent to
    the consent service, the web chat's and LINE's signed payloads) is keyed with it: without
    it the first resident's message would fail; with a guessable one the pseudonyms could be
    reversed by trying LINE ids.

    Args:
        settings: This process's settings.

    Raises:
        SystemExit: With a one-line message naming the key and how to make one.
    """
    key = _secret(settings, "SUBJECT_PSEUDONYM_KEY")
    if not key:
        raise SystemExit(f"SUBJECT_PSEUDONYM_KEY is not set: {HOW_TO_MAKE_ONE}.")
    if not strong_token(key):
        raise SystemExit(
            f"SUBJECT_PSEUDONYM_KEY is too weak (at least {MIN_TOKEN_CHARS} characters of 32 "
            f"random bytes): {HOW_TO_MAKE_ONE}."
        )


def export_endpoint_variables(settings: Settings) -> None:
    """Put `ACTION_SERVER_TOKEN` from the settings (`.env`) into this process's environment.

    Rasa substitutes `${ACTION_SERVER_TOKEN}` in endpoints files from `os.environ` only; a value
    already in the environment is kept (it is also what the settings read first).

    Args:
        settings: This process's settings.
    """
    token = _secret(settings, "ACTION_SERVER_TOKEN")
    if token and not os.environ.get("ACTION_SERVER_TOKEN"):
        os.environ["ACTION_SERVER_TOKEN"] = token
