"""Keyed pseudonyms: hex(HMAC-SHA256(SUBJECT_PSEUDONYM_KEY, "<channel>:<id>"))."""

from __future__ import annotations

import hashlib
import hmac

from bot.settings import Settings


def pseudonym(settings: Settings, channel: str, identifier: str) -> str:
    """The pseudonym of `identifier` on `channel`; the identifier itself is never kept.

    Args:
        settings: Where the key (`SUBJECT_PSEUDONYM_KEY`) comes from.
        channel: A namespace such as "line", "web" or "rest".
        identifier: The id to hide (a LINE user id, a Rasa sender id).

    Returns:
        64 hex characters.

    Raises:
        RuntimeError: When no key is configured.
    """
    if settings.subject_pseudonym_key is None:
        raise RuntimeError("SUBJECT_PSEUDONYM_KEY is not set")
    key = settings.subject_pseudonym_key.get_secret_value().encode("utf-8")
    return hmac.new(key, f"{channel}:{identifier}".encode(), hashlib.sha256).hexdigest()
