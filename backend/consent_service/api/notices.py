"""`/v1` calls of the health notices residents opt into (issue 17, docs/notices.md)."""

from __future__ import annotations

from fastapi import APIRouter

from consent_service.api.routes import ERRORS

router = APIRouter(prefix="/v1", responses={400: ERRORS[400], 401: ERRORS[401], 403: ERRORS[403]})
