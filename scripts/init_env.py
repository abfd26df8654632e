"""Write a development `.env` with freshly generated secrets, unless one exists already.

`make run` calls this. The file is git-ignored; production takes its secrets from the
environment instead (the environment always wins over `.env`).
"""

from __future__ import annotations

import secrets
import sys
from pathlib import Path

TEMPLATE = """\
# Development settings written by `make run` on {path}. Git-ignored: never commit it.
# Variables set in the environment take precedence over this file.

# Client token of the consent service (Authorization: Bearer ...).
CONSENT_API_TOKEN={consent_token}
# Key of the subject pseudonyms: hex(HMAC-SHA256(key, "<channel>:<sender_id>")).
SUBJECT_PSEUDONYM_KEY={pseudonym_key}
# Consent service database; empty means the SQLite file var/consent.db.
CONSENT_DATABASE_URL=

# LINE Messaging API (docs/line.md): fill in from the LINE Developers console.
LINE_CHANNEL_SECRET=
LINE_CHANNEL_ACCESS_TOKEN=
LINE_API_BASE_URL=https://api.line.me
LINE_API_DATA_BASE_URL=https://api-data.line.me

# Resident web chat (docs/webchat.md): the origins allowed to connect.
WEBCHAT_ALLOWED_ORIGINS=http://localhost:5005,http://127.0.0.1:5005

# The city's contact route, offered when a resident asks for a person or is not understood.
# Left empty, the assistant refers residents to the city's website instead of inventing details.
CITY_CONTACT_NAME=
CITY_CONTACT_PHONE=
CITY_CONTACT_HOURS=
"""


def main(path: Path) -> int:
    """Create the file at `path` if it is missing.

    Args:
        path: Where the `.env` file goes.

    Returns:
        The process exit code.
    """
    if path.exists():
        return 0
    path.write_text(
        TEMPLATE.format(
            path=path.name,
            consent_token=secrets.token_urlsafe(32),
            pseudonym_key=secrets.token_hex(32),
        ),
        encoding="utf-8",
    )
    path.chmod(0o600)
    print(f"Wrote development secrets to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1] if len(sys.argv) > 1 else ".env")))
