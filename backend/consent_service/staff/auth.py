"""Staff log-in.

Argon2 password hashes; a TOTP second factor whose secret is encrypted at rest (AES-256-GCM under
STAFF_TOTP_KEY) and whose codes are accepted once (the last accepted time step is stored);
failures counted by one atomic UPDATE and a lockout that also ends the account's sessions; a
per-address throttle in front of argon2; server-side sessions with an absolute and an idle
timeout behind secure cookies, and a CSRF token per session.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import datetime as dt
import hashlib
import hmac
import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from consent_service.config import DEVELOPMENT_STAFF_TOTP_KEY, Settings
from consent_service.models import StaffAccessLog, StaffSession, StaffUser

COOKIE = "staff_session"
# viewer: the aggregate views and transcripts; admin: also the access log; counter (窓口): only
# looking consents up by receipt code and withdrawing them on a resident's behalf; editor: a
# viewer who may also label what the assistant did not understand (issue 15; admins may too) and
# draft health notices (issue 17); approver: a viewer who may also approve a notice another
# account drafted (admins may too; nobody approves their own).
ROLES = ("viewer", "admin", "counter", "editor", "approver")
SEALED = "v1:"
_hasher = PasswordHasher()
# Compared against when the user does not exist or is locked, so timing tells nothing apart.
_DUMMY_HASH = _hasher.hash("not a password of anyone")
_TOTP_STEP = 30
# How often a session's last use is written (a page view within this is not a write).
_TOUCH_EVERY = dt.timedelta(seconds=60)


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


# ---- TOTP secrets at rest ----------------------------------------------------------------


def _aead(settings: Settings, material: bytes | None = None) -> AESGCM:
    key = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"funabashi staff totp secret v1"
    ).derive(material or settings.staff_totp_key_bytes())
    return AESGCM(key)


def _aad(username: str) -> bytes:
    # Binds a ciphertext to its account: copied to another row it does not decrypt.
    return b"staff_users.totp_secret:" + username.encode("utf-8")


def seal_secret(settings: Settings, username: str, secret: str) -> str:
    """Encrypt a TOTP secret for storage.

    Args:
        settings: Where STAFF_TOTP_KEY is.
        username: The account (authenticated as associated data).
        secret: The base32 TOTP secret.

    Returns:
        "v1:" + base64url(nonce + ciphertext + tag).
    """
    nonce = secrets.token_bytes(12)
    sealed = nonce + _aead(settings).encrypt(nonce, secret.encode("ascii"), _aad(username))
    return SEALED + base64.urlsafe_b64encode(sealed).decode("ascii")


def open_secret(
    settings: Settings, username: str, stored: str, material: bytes | None = None
) -> str | None:
    """Decrypt a stored TOTP secret; None when it is not sealed or not under this key.

    Args:
        settings: Where STAFF_TOTP_KEY is.
        username: The account the secret belongs to.
        stored: The column's value.
        material: Another key to try instead of STAFF_TOTP_KEY.

    Returns:
        The base32 secret, or None (the log-in then fails like a wrong code).
    """
    if not stored.startswith(SEALED):
        return None
    try:
        sealed = base64.urlsafe_b64decode(stored[len(SEALED) :].encode("ascii"))
        plain = _aead(settings, material).decrypt(sealed[:12], sealed[12:], _aad(username))
    except (InvalidTag, ValueError, binascii.Error):
        return None
    return plain.decode("ascii")


def encrypt_stored_secrets(session: Session, settings: Settings) -> int:
    """Encrypt under STAFF_TOTP_KEY every TOTP secret stored in clear or under the public key.

    Secrets in clear are those of accounts made before migration 0004; under the public
    development key, those made before STAFF_TOTP_KEY was set.

    Idempotent; `prepare_database` runs it after the migrations.

    Args:
        session: A session in a transaction.
        settings: Where STAFF_TOTP_KEY is.

    Returns:
        How many secrets were (re-)encrypted.
    """
    development = DEVELOPMENT_STAFF_TOTP_KEY.encode("utf-8")
    current = settings.staff_totp_key_bytes()
    count = 0
    for user in session.execute(select(StaffUser)).scalars():
        if not user.totp_secret.startswith(SEALED):
            secret: str | None = user.totp_secret
        elif current != development:
            secret = open_secret(settings, user.username, user.totp_secret, development)
        else:
            secret = None
        if secret is not None:
            user.totp_secret = seal_secret(settings, user.username, secret)
            count += 1
    session.flush()
    return count


# ---- accounts ----------------------------------------------------------------------------


def create_user(
    session: Session,
    username: str,
    password: str,
    role: str,
    now: dt.datetime,
    settings: Settings,
) -> str:
    """Add a staff member; return the TOTP secret to enrol in an authenticator app.

    Only the encrypted secret is stored.

    Raises:
        ValueError: For an unknown role or a password shorter than 12 characters.
    """
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}")
    if len(password) < 12:
        raise ValueError("the password needs at least 12 characters")
    secret = pyotp.random_base32()
    session.add(
        StaffUser(
            username=username,
            password_hash=_hasher.hash(password),
            totp_secret=seal_secret(settings, username, secret),
            role=role,
            failed_attempts=0,
            created_at=now,
        )
    )
    session.flush()
    return secret


def provisioning_uri(username: str, secret: str) -> str:
    """The otpauth:// URI (as a QR code it enrols the account in an authenticator app)."""
    return pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name="Funabashi Info Bank")


# ---- log-in ------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoginResult:
    """The outcome of a log-in attempt.

    `reason` is for the access log only ("ok", "unknown_user", "locked", "credentials",
    "replayed_code"); the person logging in sees one message for every failure.
    """

    user: StaffUser | None
    reason: str
    locked_now: bool = False


def _burn(password: str) -> None:
    """Spend an argon2 verification, so refusing early takes as long as checking."""
    with contextlib.suppress(VerificationError):
        _hasher.verify(_DUMMY_HASH, password)


def _code_step(secret: str, code: str, now: dt.datetime) -> int | None:
    """The time step (of now, the one before or the one after) whose code `code` is."""
    code = code.strip()
    if len(code) != 6 or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret)
    base = totp.timecode(now)
    matches = [
        base + offset
        for offset in (-1, 0, 1)
        if hmac.compare_digest(totp.at(now, counter_offset=offset), code)
    ]
    return max(matches) if matches else None


def authenticate(
    session: Session, settings: Settings, username: str, password: str, code: str, now: dt.datetime
) -> LoginResult:
    """Check password and TOTP code; count failures and lock the account after too many.

    Every write is one conditional UPDATE, so concurrent attempts cannot lose a failure or use
    one code twice: success needs `last_totp_step < step` and no lock at the moment of writing;
    a failure is `failed_attempts = failed_attempts + 1 ... RETURNING`. A lockout also deletes
    the account's sessions.
    """
    user = session.execute(
        select(StaffUser).where(StaffUser.username == username)
    ).scalar_one_or_none()
    if user is None:
        _burn(password)
        return LoginResult(None, "unknown_user")
    if user.locked_until is not None and user.locked_until > now:
        _burn(password)
        return LoginResult(None, "locked")
    password_ok: bool
    try:
        password_ok = _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        password_ok = False
    secret = open_secret(settings, user.username, user.totp_secret)
    step = _code_step(secret, code, now) if secret else None
    reason = "credentials"
    if password_ok and step is not None:
        accepted = session.execute(
            update(StaffUser)
            .where(
                StaffUser.id == user.id,
                or_(StaffUser.last_totp_step.is_(None), StaffUser.last_totp_step < step),
                or_(StaffUser.locked_until.is_(None), StaffUser.locked_until <= now),
            )
            .values(failed_attempts=0, locked_until=None, last_totp_step=step)
            .execution_options(synchronize_session=False)
        )
        if accepted.rowcount == 1:  # type: ignore[attr-defined]
            session.refresh(user)
            return LoginResult(user, "ok")
        reason = "replayed_code"
    failures = session.execute(
        update(StaffUser)
        .where(StaffUser.id == user.id)
        .values(failed_attempts=StaffUser.failed_attempts + 1)
        .returning(StaffUser.failed_attempts)
        .execution_options(synchronize_session=False)
    ).scalar_one()
    if failures < settings.staff_lockout_attempts:
        return LoginResult(None, reason)
    session.execute(
        update(StaffUser)
        .where(StaffUser.id == user.id)
        .values(
            locked_until=now + dt.timedelta(minutes=settings.staff_lockout_minutes),
            failed_attempts=0,
        )
        .execution_options(synchronize_session=False)
    )
    session.execute(delete(StaffSession).where(StaffSession.user_id == user.id))
    return LoginResult(None, reason, locked_now=True)


class LoginThrottle:
    """At most `attempts` log-in attempts per client address per window, before argon2 runs.

    Fixed windows per address, in this process's memory; at most `max_clients` addresses are
    remembered (the least recently seen is forgotten first), so a flood of addresses cannot
    exhaust memory.
    """

    def __init__(self, attempts: int, window: dt.timedelta, max_clients: int) -> None:
        """Set the limits.

        Args:
            attempts: Attempts allowed per address and window.
            window: The window.
            max_clients: Addresses remembered at most.
        """
        self.attempts, self.window, self.max_clients = attempts, window, max_clients
        self._seen: OrderedDict[str, tuple[dt.datetime, int]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._seen)

    def check(self, client: str, now: dt.datetime) -> tuple[bool, bool]:
        """Count one attempt from `client`.

        Args:
            client: The client's address.
            now: The current time.

        Returns:
            (allowed, first refusal of this window) — the first refusal is worth logging.
        """
        with self._lock:
            start, count = self._seen.pop(client, (now, 0))
            if now - start >= self.window:
                start, count = now, 0
            count += 1
            self._seen[client] = (start, count)
            while len(self._seen) > self.max_clients:
                self._seen.popitem(last=False)
            return count <= self.attempts, count == self.attempts + 1


# ---- sessions ----------------------------------------------------------------------------


def open_session(session: Session, user: StaffUser, settings: Settings, now: dt.datetime) -> str:
    """Start a session; return the cookie's token (only its hash is stored)."""
    token = secrets.token_urlsafe(32)
    session.add(
        StaffSession(
            token_sha256=_sha256(token),
            user_id=user.id,
            csrf_token=secrets.token_urlsafe(24),
            expires_at=now + dt.timedelta(hours=settings.staff_session_hours),
            last_seen_at=now,
        )
    )
    return token


def find_session(
    session: Session, token: str | None, now: dt.datetime, idle: dt.timedelta
) -> StaffSession | None:
    """The live session behind a cookie token, marked as used now.

    A session ends at its absolute expiry, after `idle` without use, or when its account is
    locked (the lockout deletes it; a lock set by other means is checked here too).
    """
    if not token or len(token) > 100:
        return None
    found = session.get(StaffSession, _sha256(token))
    if found is None or found.expires_at <= now:
        return None
    if found.last_seen_at is None or now - found.last_seen_at > idle:
        session.delete(found)
        return None
    if found.user.locked_until is not None and found.user.locked_until > now:
        return None
    if now - found.last_seen_at >= _TOUCH_EVERY:
        found.last_seen_at = now
    return found


def close_session(session: Session, token: str | None) -> None:
    """End a session (logout)."""
    if token:
        session.execute(delete(StaffSession).where(StaffSession.token_sha256 == _sha256(token)))


def csrf_ok(staff_session: StaffSession, submitted: str | None) -> bool:
    """Whether a form carried the session's CSRF token."""
    return bool(submitted) and hmac.compare_digest(staff_session.csrf_token, submitted or "")


def log_access(session: Session, username: str, action: str, target: str, now: dt.datetime) -> None:
    """Write one access-log entry (transcript views, exports, log-ins and their failures)."""
    session.add(StaffAccessLog(at=now, username=username[:64], action=action, target=target[:200]))
