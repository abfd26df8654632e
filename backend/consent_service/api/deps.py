"""Request dependencies, as `Annotated` aliases the routes declare."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hmac
from collections.abc import Callable, Iterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session, sessionmaker

from consent_service.config import Settings, token_digest
from consent_service.consents import Controller
from consent_service.errors import Reason, Refused

_bearer = HTTPBearer(
    auto_error=False, scheme_name="client", description="The client token (CONSENT_API_TOKEN)."
)
_admin_bearer = HTTPBearer(
    auto_error=False, scheme_name="admin", description="The admin token (CONSENT_ADMIN_TOKEN)."
)


def get_factory(request: Request) -> sessionmaker[Session]:
    """The session factory the app was started with."""
    factory: sessionmaker[Session] = request.app.state.sessionmaker
    return factory


def get_session(
    factory: Annotated[sessionmaker[Session], Depends(get_factory)],
) -> Iterator[Session]:
    """A read session for one request."""
    with factory() as session:
        yield session


def get_now(request: Request) -> dt.datetime:
    """The current time (UTC), from the app's clock so that tests can set it."""
    clock: Callable[[], dt.datetime] = request.app.state.clock
    return clock()


def get_app_settings(request: Request) -> Settings:
    """The settings the app was started with."""
    settings: Settings = request.app.state.settings
    return settings


def get_controller(request: Request) -> Controller:
    """Who issues the receipts (from the catalogue)."""
    controller: Controller = request.app.state.controller
    return controller


def _scope_of(request: Request, token: str) -> str | None:
    """Which credential `token` is: "client", "admin" or None (unknown).

    Only SHA-256 digests of tokens are kept; every comparison takes constant time.
    """
    digest = token_digest(token)
    clients: frozenset[str] = request.app.state.client_digests
    admins: frozenset[str] = request.app.state.admin_digests
    is_client = any([hmac.compare_digest(digest, known) for known in clients])
    is_admin = any([hmac.compare_digest(digest, known) for known in admins])
    return "client" if is_client else "admin" if is_admin else None


def _require_scope(
    request: Request, credentials: HTTPAuthorizationCredentials | None, scope: str
) -> str:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Refused(Reason.UNAUTHORIZED, "A bearer token is required.")
    found = _scope_of(request, credentials.credentials)
    if found is None:
        raise Refused(Reason.UNAUTHORIZED, "The bearer token is not valid.")
    if found != scope:
        raise Refused(Reason.FORBIDDEN, f"This call needs the {scope} credential.")
    return token_digest(credentials.credentials)


def require_client(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str:
    """Authenticate the calling client (the assistant) by its bearer token.

    Returns:
        The digest of the client's token (which scopes its idempotency keys).

    Raises:
        Refused: 401 when the token is missing or unknown, 403 for the admin token.
    """
    return _require_scope(request, credentials, "client")


def require_admin(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_admin_bearer)],
) -> None:
    """Authenticate an operator by the admin token (CONSENT_ADMIN_TOKEN).

    Raises:
        Refused: 401 when the token is missing or unknown, 403 for a client token.
    """
    _require_scope(request, credentials, "admin")


def admin_credential_ok(request: Request) -> bool:
    """Whether the request carries the admin token.

    It may come as a bearer token or as the password of HTTP Basic authentication (so that a
    browser can open the API documentation).

    Args:
        request: The request.

    Returns:
        True for the admin token.
    """
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    token = value.strip()
    if scheme.lower() == "basic":
        try:
            token = base64.b64decode(token, validate=True).decode("utf-8").partition(":")[2]
        except (binascii.Error, UnicodeDecodeError):
            return False
    elif scheme.lower() != "bearer":
        return False
    return bool(token) and _scope_of(request, token) == "admin"


SessionFactory = Annotated[sessionmaker[Session], Depends(get_factory)]
DbSession = Annotated[Session, Depends(get_session)]
Now = Annotated[dt.datetime, Depends(get_now)]
ReceiptController = Annotated[Controller, Depends(get_controller)]
AppSettings = Annotated[Settings, Depends(get_app_settings)]
Client = Annotated[str, Depends(require_client)]
Admin = Annotated[None, Depends(require_admin)]
