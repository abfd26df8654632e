"""The counter's consultation memo (相談メモ, issue 18): the chat's print page, at the counter.

Residents without a printer ask at the city counter. Counter staff (and admins) pick the
level-2 offer on `/staff/counter/memo` and get the very page the web chat links to, from the
Rasa side: the console never builds a memo itself (it shares no code with the assistant), it
asks `GET {STAFF_RASA_URL}/webhooks/socketio/counter/memo/<offer_id>` with RASA_API_TOKEN
(`bot/webchat/memo_counter.py`: the chat's builder and template) and serves the answer, with
its stylesheet, under `/staff/counter/memo/` (`print?offer=<id>`). Staff print it with the
browser. Each print is written to the access log (`counter_memo_printed`, the offer's id), and
so is a failure (`counter_memo_failed`). The memo holds nothing about any resident; no
conversation is opened on the Rasa side.
"""

from __future__ import annotations

import re
from typing import Annotated

import httpx
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select

from consent_service import consents
from consent_service.api.routes import _offer_public as offer_public
from consent_service.config import Settings
from consent_service.models import Offer, StaffSession
from consent_service.staff import auth
from consent_service.staff.views import (
    SECURITY_HEADERS,
    AnyStaff,
    LoginRequired,
    _db,
    _now,
    _settings,
    home,
    page,
)

# Included by `views.router` (prefix /staff), which this module's dependencies come from.
router: APIRouter = APIRouter(include_in_schema=False)
MEMO_ROLES = ("counter", "admin")
RASA_PATH = "/webhooks/socketio/counter/memo/"  # bot/webchat/memo_counter.py
RASA_ASSETS = "/webhooks/socketio/memo/"  # the chat page's stylesheet and script
ASSETS = {"memo.css": "text/css; charset=utf-8", "memo.js": "text/javascript; charset=utf-8"}
OFFER_ID = re.compile(r"[a-z][a-z0-9_]{0,63}")
MAX_PAGE_BYTES = 1_000_000
LEVEL_NEEDING_DOCTOR = 2


class RasaUnavailable(Exception):
    """The Rasa side did not answer with the page (down, timed out, refused, or not HTML)."""


def memo_staff(staff: AnyStaff) -> StaffSession:
    """Counter staff and admins; others are sent back to their first page."""
    if staff.user.role not in MEMO_ROLES:
        raise LoginRequired(home(staff.user.role))
    return staff


MemoStaff = Annotated[StaffSession, Depends(memo_staff)]


def level2_offers(request: Request) -> list[dict[str, str]]:
    """The offers the memo is for: level-2 data, consentable now (as `/v1/offers` says)."""
    now = _now(request)
    with _db(request) as session:
        offers = session.execute(select(Offer).order_by(Offer.offer_id)).scalars().all()
        levels = consents.item_levels(session)
        served = [offer_public(offer, levels, now) for offer in offers]
    return [
        {"offer_id": o.offer_id, "title": o.title_ja, "recipient": o.recipient.name_ja}
        for o in served
        if o.max_level >= LEVEL_NEEDING_DOCTOR and o.consentable
    ]


def fetch(settings: Settings, path: str, params: dict[str, str] | None = None) -> httpx.Response:
    """GET `path` of the Rasa side with RASA_API_TOKEN, within STAFF_RASA_TIMEOUT_SECONDS.

    Raises:
        RasaUnavailable: On any transport error or timeout (the answer's status is the caller's).
    """
    token = settings.rasa_api_token.get_secret_value() if settings.rasa_api_token else ""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    url = settings.staff_rasa_url.rstrip("/") + path
    timeout = httpx.Timeout(settings.staff_rasa_timeout_seconds)
    try:
        with httpx.Client(timeout=timeout, follow_redirects=False) as client:
            return client.get(url, params=params, headers=headers)
    except httpx.HTTPError as error:
        raise RasaUnavailable(type(error).__name__) from error


def memo_page(settings: Settings, offer_id: str, plain: bool, furigana: bool) -> str | None:
    """The memo's page from the Rasa side, or None when it knows no level-2 offer of that id.

    Raises:
        RasaUnavailable: It could not be asked, or answered anything but the page or 404.
    """
    params = {k: "1" for k, on in (("plain", plain), ("furigana", furigana)) if on}
    answer = fetch(settings, RASA_PATH + offer_id, params)
    if answer.status_code == 404:
        return None
    if answer.status_code != 200:
        raise RasaUnavailable(f"HTTP {answer.status_code}")
    if not answer.headers.get("content-type", "").startswith("text/html"):
        raise RasaUnavailable("not a page")
    if len(answer.content) > MAX_PAGE_BYTES:
        raise RasaUnavailable("too large")
    return answer.text


def _picker(request: Request, staff: StaffSession, status: int = 200, **context: str) -> Response:
    context.setdefault("error", "")
    context.setdefault("chosen", "")
    shown = page(request, "counter_memo.html", staff, view="counter",
                 offers=level2_offers(request), **context)  # fmt: skip
    shown.status_code = status
    return shown


@router.get("/counter/memo", response_class=HTMLResponse)
def counter_memo(request: Request, staff: MemoStaff) -> Response:
    """Pick a level-2 offer to print its consultation memo for a resident."""
    return _picker(request, staff)


def _asset(request: Request, filename: str) -> Response:
    try:
        answer = fetch(_settings(request), RASA_ASSETS + filename)
    except RasaUnavailable:
        return Response(status_code=503)
    if answer.status_code != 200:
        return Response(status_code=503)
    return Response(answer.content, media_type=ASSETS[filename], headers=SECURITY_HEADERS)


@router.get("/counter/memo/memo.css")
def memo_stylesheet(request: Request, staff: MemoStaff) -> Response:
    """The memo page's stylesheet: the chat page's own, from the Rasa side."""
    return _asset(request, "memo.css")


@router.get("/counter/memo/memo.js")
def memo_script(request: Request, staff: MemoStaff) -> Response:
    """The memo page's script (readings shown or not): the chat page's own, from the Rasa side."""
    return _asset(request, "memo.js")


@router.get("/counter/memo/print", response_class=HTMLResponse)
def counter_memo_print(
    request: Request,
    staff: MemoStaff,
    offer: Annotated[str, Query(max_length=64)] = "",
    plain: Annotated[str, Query(max_length=1)] = "",
    furigana: Annotated[str, Query(max_length=1)] = "",
) -> Response:
    """The print page of one offer's memo, exactly as the web chat serves it; logged.

    Rasa unreachable (or refusing): the picker with an error, 503. An offer Rasa makes no
    memo for (unknown, or without level-2 data): the picker with an error, 404.
    """
    if not OFFER_ID.fullmatch(offer):
        return _picker(request, staff, 404, error="unknown")
    try:
        html = memo_page(_settings(request), offer, plain == "1", furigana == "1")
    except RasaUnavailable as error:
        with _db(request) as session, session.begin():
            auth.log_access(session, staff.user.username, "counter_memo_failed",
                            f"{offer} rasa_unavailable {error}", _now(request))  # fmt: skip
        return _picker(request, staff, 503, error="rasa", chosen=offer)
    if html is None:
        with _db(request) as session, session.begin():
            auth.log_access(session, staff.user.username, "counter_memo_failed",
                            f"{offer} unknown_offer", _now(request))  # fmt: skip
        return _picker(request, staff, 404, error="unknown", chosen=offer)
    with _db(request) as session, session.begin():
        auth.log_access(session, staff.user.username, "counter_memo_printed", offer,
                        _now(request))  # fmt: skip
    return HTMLResponse(html, headers=SECURITY_HEADERS)
