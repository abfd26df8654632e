"""The FastAPI application: `create_app()` builds it; nothing happens at import time."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from sqlalchemy import Engine
from starlette.exceptions import HTTPException as StarletteHTTPException

from consent_service import catalog, migrations
from consent_service.api.routes import health_router, router
from consent_service.config import Settings, get_settings
from consent_service.consents import Controller, ServiceError
from consent_service.db import make_engine, make_sessionmaker
from consent_service.staff.tracker import read_only_engine
from consent_service.staff.views import LoginRequired
from consent_service.staff.views import router as staff_router

log = logging.getLogger("consent_service")


def utc_now() -> dt.datetime:
    """The current time, timezone-aware UTC."""
    return dt.datetime.now(dt.UTC)


def prepare_database(engine: Engine, settings: Settings, now: dt.datetime) -> None:
    """Apply migrations and load the catalogue (an idempotent upsert).

    Loading at every start means a changed catalogue file takes effect on restart; new terms
    versions and approvals are added, nothing a consent refers to is removed.

    Args:
        engine: The database.
        settings: Where the catalogue file is.
        now: The current time (UTC).
    """
    migrations.upgrade(engine)
    factory = make_sessionmaker(engine)
    with factory() as session, session.begin():
        catalog.load(session, settings.consent_catalog_path, now)
    log.info("Catalogue loaded from %s", settings.consent_catalog_path.name)


def create_app(
    settings: Settings | None = None,
    *,
    engine: Engine | None = None,
    clock: Callable[[], dt.datetime] = utc_now,
) -> FastAPI:
    """Build the consent service.

    Args:
        settings: Settings (default: read from the environment and `.env`).
        engine: A database engine to use instead of the one the settings name (tests).
        clock: Where the service reads the time (tests set it).

    Returns:
        The application.
    """
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own_engine = engine is None
        db = engine or make_engine(settings.database_url)
        if settings.consent_auto_migrate:
            prepare_database(db, settings, clock())
        spec, _ = catalog.read(settings.consent_catalog_path)
        app.state.sessionmaker = make_sessionmaker(db)
        app.state.clock = clock
        app.state.client_digests = settings.client_token_digests()
        app.state.controller = Controller(spec.controller.name_ja, spec.controller.jurisdiction)
        app.state.settings = settings
        app.state.tracker_engine = read_only_engine(settings.tracker_database_url)
        app.state.ginza = None
        yield
        app.state.tracker_engine.dispose()
        if own_engine:
            db.dispose()

    app = FastAPI(
        title="Funabashi information bank: consent service",
        version="1.0.0",
        description=(
            "Records residents' consent to offers of the information bank and enforces its "
            "rules (levels 0-3, family doctor, data ethics board, health benefit). "
            "Every call but `GET /health` needs `Authorization: Bearer <token>`."
        ),
        lifespan=lifespan,
    )
    app.include_router(health_router)
    app.include_router(router)
    app.include_router(staff_router)
    _install_error_handlers(app)
    return app


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def _service_error(_request: Request, exc: ServiceError) -> JSONResponse:
        body: dict[str, Any] = {"reason": exc.reason, "message": exc.message}
        if exc.consent_id:
            body["consent_id"] = exc.consent_id
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return JSONResponse(body, status_code=exc.status, headers=headers)

    @app.exception_handler(LoginRequired)
    async def _login(_request: Request, _exc: LoginRequired) -> RedirectResponse:
        return RedirectResponse("/staff/login", status_code=302)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        # Never echo the submitted values back (or into logs): only where and what.
        errors = [
            {"loc": list(e.get("loc", ())), "type": e.get("type"), "msg": e.get("msg")}
            for e in exc.errors()
        ]
        return JSONResponse(
            {"reason": "invalid_request", "message": "The request is not valid.", "errors": errors},
            status_code=422,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        reasons = {400: "malformed_body", 404: "not_found", 405: "method_not_allowed"}
        return JSONResponse(
            {"reason": reasons.get(exc.status_code, "http_error"), "message": str(exc.detail)},
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )
