"""Request dependencies, as `Annotated` aliases the routes declare."""

from __future__ import annotations

import datetime as dt
import hmac
from collections.abc import Callable, Iterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session, sessionmaker

from consent_service.config import token_digest
from consent_service.consents import Controller, ServiceError

_bearer = HTTPBearer(auto_error=False, description="The client token (CONSENT_API_TOKEN).")


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


def get_controller(request: Request) -> Controller:
    """Who issues the receipts (from the catalogue)."""
    controller: Controller = request.app.state.controller
    return controller


def require_client(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str:
    """Authenticate the calling client by its bearer token.

    Only SHA-256 digests of tokens are kept; the comparison takes constant time.

    Returns:
        The digest of the client's token (which scopes its idempotency keys).

    Raises:
        ServiceError: 401 when the token is missing or unknown.
    """
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise ServiceError(401, "unauthorized", "A bearer token is required.")
    digest = token_digest(credentials.credentials)
    known: frozenset[str] = request.app.state.client_digests
    if not any(hmac.compare_digest(digest, candidate) for candidate in known):
        raise ServiceError(401, "unauthorized", "The bearer token is not valid.")
    return digest


SessionFactory = Annotated[sessionmaker[Session], Depends(get_factory)]
DbSession = Annotated[Session, Depends(get_session)]
Now = Annotated[dt.datetime, Depends(get_now)]
ReceiptController = Annotated[Controller, Depends(get_controller)]
Client = Annotated[str, Depends(require_client)]
