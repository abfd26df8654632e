"""Write a development `.env` with freshly generated secrets, or add the ones it lacks.

`make run` (and every target that needs `.env`) calls this. A missing file is written whole; an
existing one keeps every value it has and only gains the generated secrets it lacks (e.g.
`RASA_API_TOKEN` and `ACTION_SERVER_TOKEN`, which older files did not have), and the notice
sender's X25519 key pair (issue 17: `NOTICE_PUBLIC_KEY` for the LINE channel, which seals LINE
user ids to it; `NOTICE_PRIVATE_KEY` for `send-notices` alone) when it lacks one. The file is
git-ignored and private to its user (0600), as is `var/` beside it (0700: databases, logs);
production takes its secrets from the environment instead (the environment always wins over
`.env`).
"""

from __future__ import annotations

import os
import re
import secrets
import sys
from pathlib import Path
from typing import Callable, Dict, List

# Run as a script (`python scripts/init_env.py`), the project root is not on the path.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.notice_seal import generate_keypair, public_from_private

TEMPLATE = """\
# Development settings written by `make run` on {path}. Git-ignored: never commit it.
# Variables set in the environment take precedence over this file.

# Client token of the consent service (Authorization: Bearer ...).
CONSENT_API_TOKEN={CONSENT_API_TOKEN}
# The consent service's operators: /v1/audit/verify (Authorization: Bearer ...).
CONSENT_ADMIN_TOKEN={CONSENT_ADMIN_TOKEN}
# Key of the consent service's audit chain (HMAC-SHA256); keep it: the chain verifies only with it.
CONSENT_AUDIT_KEY={CONSENT_AUDIT_KEY}
# Key of the subject pseudonyms: hex(HMAC-SHA256(key, "<channel>:<sender_id>")).
SUBJECT_PSEUDONYM_KEY={SUBJECT_PSEUDONYM_KEY}
# Rasa's HTTP API (on in development) answers only with ?token=<this>.
RASA_API_TOKEN={RASA_API_TOKEN}
# Rasa's calls to the action server carry Authorization: Bearer <this>; others are refused.
ACTION_SERVER_TOKEN={ACTION_SERVER_TOKEN}
# Encrypts the staff console's TOTP secrets in the consent database (docs/staff-console.md).
STAFF_TOTP_KEY={STAFF_TOTP_KEY}
# Health notices (issue 17, docs/notices.md): the LINE channel seals LINE user ids to the public
# key; only the sender (`send-notices`) may read the private one. Keep the pair together.
NOTICE_PUBLIC_KEY={NOTICE_PUBLIC_KEY}
NOTICE_PRIVATE_KEY={NOTICE_PRIVATE_KEY}
# Consent service database; empty means the SQLite file var/consent.db.
CONSENT_DATABASE_URL=

# LINE Messaging API (docs/line.md): fill in from the LINE Developers console.
LINE_CHANNEL_SECRET=
LINE_CHANNEL_ACCESS_TOKEN=
LINE_API_BASE_URL=https://api.line.me
LINE_API_DATA_BASE_URL=https://api-data.line.me

# Resident web chat (docs/webchat.md): the origins allowed to connect.
WEBCHAT_ALLOWED_ORIGINS=http://localhost:5005,http://127.0.0.1:5005

# Production profile only (`make run PROFILE=prod`, docs/deploy.md), which refuses to start while
# these are empty: the tracker store's PostgreSQL role and Redis' requirepass password.
RASA_DB_USER=
RASA_DB_PASSWORD=
REDIS_PASSWORD=

# The city's contact route, offered when a resident asks for a person or is not understood.
# Left empty, the assistant refers residents to the city's website instead of inventing details.
CITY_CONTACT_NAME=
CITY_CONTACT_PHONE=
CITY_CONTACT_HOURS=
"""


# The generated secrets: 32 random bytes each (the servers refuse weaker tokens).
GENERATED: Dict[str, Callable[[], str]] = {
    "CONSENT_API_TOKEN": lambda: secrets.token_urlsafe(32),
    "CONSENT_ADMIN_TOKEN": lambda: secrets.token_urlsafe(32),
    "CONSENT_AUDIT_KEY": lambda: secrets.token_urlsafe(32),
    "SUBJECT_PSEUDONYM_KEY": lambda: secrets.token_hex(32),
    "RASA_API_TOKEN": lambda: secrets.token_urlsafe(32),
    "ACTION_SERVER_TOKEN": lambda: secrets.token_urlsafe(32),
    "STAFF_TOTP_KEY": lambda: secrets.token_urlsafe(32),
}
PRIVATE_UMASK = 0o077


def _write_new(path: Path, text: str) -> None:
    """Create `path` readable by its owner only from the first byte (never world-readable)."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as out:
        out.write(text)


def _private_var(root: Path) -> None:
    """Create `var/` (and make an existing one and its `log/`) accessible to the owner only."""
    var = root / "var"
    var.mkdir(mode=0o700, exist_ok=True)
    for folder in (var, var / "log"):
        if folder.is_dir():
            folder.chmod(0o700)


def _value(line: str, name: str) -> str | None:
    """The value `line` assigns to `name` (quotes removed), or None if it assigns something else."""
    match = re.match(rf"\s*(?:export\s+)?{name}\s*=(.*)$", line)
    return match.group(1).strip().strip("'\"") if match else None


def _add_missing(path: Path) -> list[str]:
    """Give an existing file the generated secrets it lacks (absent or empty).

    Returns:
        The names added; every other line is kept as it was.
    """
    lines = path.read_text(encoding="utf-8").splitlines()
    added = []
    for name, generate in GENERATED.items():
        assigned = [i for i, line in enumerate(lines) if _value(line, name) is not None]
        if assigned and _value(lines[assigned[-1]], name):
            continue
        line = f"{name}={generate()}"
        if assigned:
            lines[assigned[-1]] = line
        else:
            lines += ["# Generated by `make run` (scripts/init_env.py).", line]
        added.append(name)
    added += _add_notice_keys(lines)
    if added:
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return added


def _last_value(lines: List[str], name: str) -> tuple[int | None, str]:
    """The index of the last line assigning `name` and its value ("" when unassigned)."""
    assigned = [i for i, line in enumerate(lines) if _value(line, name) is not None]
    if not assigned:
        return None, ""
    return assigned[-1], _value(lines[assigned[-1]], name) or ""


def _set(lines: List[str], name: str, value: str) -> None:
    index, _ = _last_value(lines, name)
    if index is None:
        lines += ["# Generated by `make run` (scripts/init_env.py).", f"{name}={value}"]
    else:
        lines[index] = f"{name}={value}"


def _add_notice_keys(lines: List[str]) -> list[str]:
    """Give the file the notice key pair it lacks, changing `lines` in place.

    A private key without its public key gets the public key derived from it; a missing private
    key means a new pair (a public key alone is useless: nothing sealed to it can be opened).

    Returns:
        The names added or replaced.
    """
    _, private = _last_value(lines, "NOTICE_PRIVATE_KEY")
    _, public = _last_value(lines, "NOTICE_PUBLIC_KEY")
    if private and public:
        return []
    if private:
        _set(lines, "NOTICE_PUBLIC_KEY", public_from_private(private))
        return ["NOTICE_PUBLIC_KEY"]
    private, public = generate_keypair()
    _set(lines, "NOTICE_PUBLIC_KEY", public)
    _set(lines, "NOTICE_PRIVATE_KEY", private)
    return ["NOTICE_PUBLIC_KEY", "NOTICE_PRIVATE_KEY"]


def main(path: Path) -> int:
    """Create the file at `path` if it is missing, or add the generated secrets it lacks.

    Everything it creates is private: `path` 0600, the `var/` folder beside it 0700.

    Args:
        path: Where the `.env` file goes.

    Returns:
        The process exit code.
    """
    os.umask(PRIVATE_UMASK)
    _private_var(path.resolve().parent)
    if path.exists():
        path.chmod(0o600)
        added = _add_missing(path)
        if added:
            print(f"Added {', '.join(added)} to {path}")
        return 0
    values = {name: generate() for name, generate in GENERATED.items()}
    values["NOTICE_PRIVATE_KEY"], values["NOTICE_PUBLIC_KEY"] = generate_keypair()
    _write_new(path, TEMPLATE.format(path=path.name, **values))
    print(f"Wrote development secrets to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1] if len(sys.argv) > 1 else ".env")))
