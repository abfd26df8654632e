"""The FastAPI application: `create_app()` builds it; nothing happens at import time."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlalchemy import Engine
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from consent_service import audit, catalog, code_attempts, links, migrations, roles
from consent_service.api import notices as notices_api
from consent_service.api.deps import admin_credential_ok
from consent_service.api.routes import health_router, router
from consent_service.config import Settings, get_settings
from consent_service.consents import Controller, purge_expired_idempotency
from consent_service.db import make_engine, make_sessionmaker
from consent_service.errors import Reason, Refused, error_body
from consent_service.staff import auth as staff_auth
from consent_service.staff.views import LoginRequired
from consent_service.staff.views import router as staff_router

log = logging.getLogger("consent_service")


def utc_now() -> dt.datetime:
    """The current time, timezone-aware UTC."""
    return dt.datetime.now(dt.UTC)


def prepare_database(engine: Engine, settings: Settings, now: dt.datetime) -> None:
    """Apply migrations, grant the roles their privileges, load the catalogue, tidy up.

    Migrations run as the schema owner (CONSENT_MIGRATION_DATABASE_URL when set, which then
    also grants the app and read-only roles exactly their privileges); everything else as the
    app. Loading the catalogue at every start means a changed catalogue file takes effect on
    restart; new terms versions and approvals are added, nothing a consent refers to is
    removed. An audit chain from before migration 0005 is sealed with a keyed entry, and
    expired idempotency records are deleted.

    Args:
        engine: The database, as the app connects to it.
        settings: Where the catalogue file is, the roles' URLs, the audit key.
        now: The current time (UTC).
    """
    if settings.consent_migration_database_url:
        owner = make_engine(settings.consent_migration_database_url)
        try:
            migrations.upgrade(owner)
            roles.apply_grants(owner, settings)
        finally:
            owner.dispose()
    else:
        migrations.upgrade(engine)
    factory = make_sessionmaker(engine, settings.audit_key())
    with factory() as session, session.begin():
        if audit.seal_legacy(session, now):
            log.info("Audit chain: entries from before its key are sealed by a keyed entry")
        catalog.load(session, settings.consent_catalog_path, now)
        purged = purge_expired_idempotency(session, idempotency_cutoff(settings, now))
        purged_codes = code_attempts.purge(session, code_attempts_cutoff(settings, now))
        purged_links = links.purge(session, link_codes_cutoff(settings, now))
        if staff_auth.encrypt_stored_secrets(session, settings):
            log.info("Staff TOTP secrets stored in clear are now encrypted (STAFF_TOTP_KEY)")
    log.info("Catalogue loaded from %s", settings.consent_catalog_path.name)
    if purged:
        log.info("Deleted %d expired idempotency records", purged)
    if purged_codes:
        log.info("Deleted %d failed receipt-code look-ups older than their window", purged_codes)
    if purged_links:
        log.info("Deleted %d expired link codes", purged_links)


def code_attempts_cutoff(settings: Settings, now: dt.datetime) -> dt.datetime:
    """The oldest failed look-up by receipt code still kept (and counted) at `now`."""
    return now - dt.timedelta(seconds=settings.receipt_code_window_seconds)


def link_codes_cutoff(settings: Settings, now: dt.datetime) -> dt.datetime:
    """Link codes that expired before this are deleted (LINK_CODE_TTL_SECONDS after expiry)."""
    return now - dt.timedelta(seconds=settings.link_code_ttl_seconds)


def idempotency_cutoff(settings: Settings, now: dt.datetime) -> dt.datetime:
    """The oldest stored answer to an Idempotency-Key that is still replayed at `now`."""
    return now - dt.timedelta(hours=settings.consent_idempotency_ttl_hours)


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
    settings.require_safe_to_serve()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own_engine = engine is None
        db = engine or make_engine(settings.database_url)
        if settings.consent_auto_migrate:
            prepare_database(db, settings, clock())
        spec, _ = catalog.read(settings.consent_catalog_path)
        app.state.sessionmaker = make_sessionmaker(db, settings.audit_key())
        app.state.clock = clock
        app.state.client_digests = settings.client_token_digests()
        app.state.admin_digests = settings.admin_token_digests()
        app.state.controller = Controller(spec.controller.name_ja, spec.controller.jurisdiction)
        app.state.settings = settings
        yield
        if own_engine:
            db.dispose()

    app = FastAPI(
        title="Funabashi information bank: consent service",
        version="1.0.0",
        description=(
            "Records residents' consent to offers of the information bank and enforces its "
            "rules (levels 0-3, family doctor, data ethics board, health benefit). "
            "Every call but `GET /health` needs `Authorization: Bearer <token>`: the client "
            "token (CONSENT_API_TOKEN) for the catalogue and a subject's consents, the admin "
            "token (CONSENT_ADMIN_TOKEN) for `/v1/audit/verify`."
        ),
        lifespan=lifespan,
        # In production the documentation answers only to the admin token (_install_docs).
        docs_url=None if settings.production else "/docs",
        redoc_url=None if settings.production else "/redoc",
        openapi_url=None if settings.production else "/openapi.json",
    )
    if settings.production:
        _install_docs(app)
    app.include_router(health_router)
    app.include_router(router)
    app.include_router(notices_api.router)
    app.include_router(staff_router)
    _install_error_handlers(app)
    return app


def _install_docs(app: FastAPI) -> None:
    """Serve `/openapi.json`, `/docs` and `/redoc` only with the admin token.

    Bearer, or HTTP Basic with the token as password so that a browser can open the pages.
    """
    challenge = {"WWW-Authenticate": 'Basic realm="consent service admin", charset="UTF-8"'}

    def refusal() -> JSONResponse:
        return JSONResponse(
            error_body(Reason.UNAUTHORIZED, "The admin token is required."),
            status_code=401,
            headers=challenge,
        )

    @app.get("/openapi.json", include_in_schema=False)
    async def _openapi(request: Request) -> Response:
        if not admin_credential_ok(request):
            return refusal()
        return JSONResponse(app.openapi())

    @app.get("/docs", include_in_schema=False)
    async def _docs(request: Request) -> Response:
        if not admin_credential_ok(request):
            return refusal()
        return get_swagger_ui_html(openapi_url="/openapi.json", title=app.title)

    @app.get("/redoc", include_in_schema=False)
    async def _redoc(request: Request) -> Response:
        if not admin_credential_ok(request):
            return refusal()
        return get_redoc_html(openapi_url="/openapi.json", title=app.title)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(Refused)
    async def _refused(_request: Request, exc: Refused) -> JSONResponse:
        body = error_body(exc.reason, exc.message, exc.consent_id or None)
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return JSONResponse(body, status_code=exc.status, headers=headers)

    @app.exception_handler(LoginRequired)
    async def _login(_request: Request, exc: LoginRequired) -> RedirectResponse:
        return RedirectResponse(exc.location, status_code=302)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        # Never echo the submitted values back (or into logs): only where and what.
        errors = [
            {"loc": list(e.get("loc", ())), "type": e.get("type"), "msg": e.get("msg")}
            for e in exc.errors()
        ]
        return JSONResponse(
            error_body(Reason.INVALID_REQUEST, "The request is not valid.", errors=errors),
            status_code=422,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        reasons = {
            400: Reason.MALFORMED_BODY,
            404: Reason.NOT_FOUND,
            405: Reason.METHOD_NOT_ALLOWED,
        }
        headers = getattr(exc, "headers", None)
        if exc.status_code == 405:
            # Starlette names only the first route's methods; a path served by several routes
            # (GET, POST and DELETE /v1/subjects/{id}/links) allows all of theirs.
            headers = {**(headers or {}), "Allow": ", ".join(_allowed_methods(app, request))}
        return JSONResponse(
            error_body(reasons.get(exc.status_code, Reason.HTTP_ERROR), str(exc.detail)),
            status_code=exc.status_code,
            headers=headers,
        )


def _allowed_methods(app: FastAPI, request: Request) -> list[str]:
    """Every method some route serves at the request's path."""
    scope = {"type": "http", "path": request.url.path, "method": "", "root_path": ""}
    methods: set[str] = set()
    for route in app.router.routes:
        match, _ = route.matches(scope)
        if match != Match.NONE:
            methods |= set(getattr(route, "methods", None) or ())
    return sorted(methods)
