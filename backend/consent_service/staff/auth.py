"""Staff log-in.

Argon2 password hashes, a TOTP second factor, lockout after repeated failures, server-side
sessions behind secure cookies, and a CSRF token per session.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from consent_service.config import Settings
from consent_service.models import StaffAccessLog, StaffSession, StaffUser

COOKIE = "staff_session"
ROLES = ("viewer", "admin")
_hasher = PasswordHasher()
# Compared against when the user does not exist, so timing does not tell usernames apart.
_DUMMY_HASH = _hasher.hash("not a password of anyone")


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def create_user(session: Session, username: str, password: str, role: str, now: dt.datetime) -> str:
    """Add a staff member; return the TOTP secret to enrol in an authenticator app.

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
            totp_secret=secret,
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


@dataclass(frozen=True)
class LoginResult:
    """The outcome of a login attempt."""

    user: StaffUser | None
    locked: bool = False


def authenticate(
    session: Session, settings: Settings, username: str, password: str, code: str, now: dt.datetime
) -> LoginResult:
    """Check password and TOTP code; count failures and lock the account after too many."""
    user = session.execute(
        select(StaffUser).where(StaffUser.username == username)
    ).scalar_one_or_none()
    if user is None:
        with contextlib.suppress(VerificationError):
            _hasher.verify(_DUMMY_HASH, password)
        return LoginResult(None)
    if user.locked_until is not None and user.locked_until > now:
        return LoginResult(None, locked=True)
    password_ok: bool
    try:
        password_ok = _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        password_ok = False
    code_ok = pyotp.TOTP(user.totp_secret).verify(code.strip(), for_time=now, valid_window=1)
    if password_ok and code_ok:
        user.failed_attempts, user.locked_until = 0, None
        return LoginResult(user)
    user.failed_attempts += 1
    if user.failed_attempts >= settings.staff_lockout_attempts:
        user.locked_until = now + dt.timedelta(minutes=settings.staff_lockout_minutes)
        user.failed_attempts = 0
        return LoginResult(None, locked=True)
    return LoginResult(None)


def open_session(session: Session, user: StaffUser, settings: Settings, now: dt.datetime) -> str:
    """Start a session; return the cookie's token (only its hash is stored)."""
    token = secrets.token_urlsafe(32)
    session.add(
        StaffSession(
            token_sha256=_sha256(token),
            user_id=user.id,
            csrf_token=secrets.token_urlsafe(24),
            expires_at=now + dt.timedelta(hours=settings.staff_session_hours),
        )
    )
    return token


def find_session(session: Session, token: str | None, now: dt.datetime) -> StaffSession | None:
    """The live session behind a cookie token."""
    if not token or len(token) > 100:
        return None
    found = session.get(StaffSession, _sha256(token))
    return found if found is not None and found.expires_at > now else None


def close_session(session: Session, token: str | None) -> None:
    """End a session (logout)."""
    if token:
        session.execute(delete(StaffSession).where(StaffSession.token_sha256 == _sha256(token)))


def csrf_ok(staff_session: StaffSession, submitted: str | None) -> bool:
    """Whether a form carried the session's CSRF token."""
    return bool(submitted) and hmac.compare_digest(staff_session.csrf_token, submitted or "")


def log_access(session: Session, username: str, action: str, target: str, now: dt.datetime) -> None:
    """Write one access-log entry (transcript views, exports, logins)."""
    session.add(StaffAccessLog(at=now, username=username, action=action, target=target[:200]))
