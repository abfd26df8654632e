"""Staff console pages (placeholder router, filled in by its issue's work)."""

from __future__ import annotations

from fastapi import APIRouter

# Included by `views.router` (prefix /staff), which this module's dependencies come from.
router: APIRouter = APIRouter(include_in_schema=False)
