"""The `/staff` pages. Every page needs a logged-in staff member; without one, 302 to the log-in.

Data: Rasa's tracker store (read-only) and the consent tables. Every text is masked and every
count below 5 is shown as "<5", on the pages and in the CSV exports alike.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import secrets
from collections import Counter
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from consent_service.config import Settings
from consent_service.models import Consent, Offer, StaffAccessLog, StaffSession
from consent_service.staff import auth, charts, metrics
from consent_service.staff.masking import SMALL, mask, suppress
from consent_service.staff.tracker import (
    JST,
    Conversation,
    conversations,
    read_events,
    read_sender_events,
)

HERE = Path(__file__).resolve().parent
templates = Jinja2Templates(directory=str(HERE / "templates"))
templates.env.filters["n"] = suppress
router = APIRouter(prefix="/staff", include_in_schema=False)
CHANNELS = ("LINE", "web", "REST")
LOGIN_CSRF = "staff_login_csrf"
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; style-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


class LoginRequired(Exception):
    """Raised by the session dependency; answered with a redirect to the log-in page."""


def _db(request: Request) -> Any:
    return request.app.state.sessionmaker()


def _now(request: Request) -> dt.datetime:
    now: dt.datetime = request.app.state.clock()
    return now


def current(request: Request) -> StaffSession:
    """The logged-in staff session, or LoginRequired."""
    with _db(request) as session:
        found = auth.find_session(session, request.cookies.get(auth.COOKIE), _now(request))
        if found is None:
            raise LoginRequired
        session.expunge(found)
        return found


Staff = Annotated[StaffSession, Depends(current)]


def admin(staff: Staff) -> StaffSession:
    """Only admins: others are sent back to the overview."""
    if staff.user.role != "admin":
        raise LoginRequired
    return staff


class Filters:
    """The date range and channel of a page (Japan days; the last 30 by default)."""

    def __init__(
        self,
        request: Request,
        start: Annotated[dt.date | None, Query()] = None,
        end: Annotated[dt.date | None, Query()] = None,
        channel: Annotated[str, Query(max_length=8)] = "all",
    ) -> None:
        today = _now(request).astimezone(JST).date()
        self.end = min(end or today, today)
        self.start = start or self.end - dt.timedelta(days=29)
        if self.start > self.end or (self.end - self.start).days > 366:
            self.start = self.end - dt.timedelta(days=29)
        self.channel = channel if channel in CHANNELS else "all"

    def query(self) -> str:
        """The filters as a query string, for links."""
        return f"start={self.start}&end={self.end}&channel={self.channel}"


Filtered = Annotated[Filters, Depends()]


def load(request: Request, filters: Filters) -> list[Conversation]:
    """The conversations in the filters' range and channel."""
    events = read_events(request.app.state.tracker_engine, filters.start, filters.end)
    convs = conversations(events, filters.start, filters.end)
    return [c for c in convs if filters.channel in ("all", c.channel)]


def masker(request: Request) -> Any:
    """mask() with GiNZA's entities when enabled (the pipeline is loaded on first use)."""
    settings: Settings = request.app.state.settings
    if not settings.staff_mask_with_ginza:
        return lambda text: mask(text)
    if getattr(request.app.state, "ginza", None) is None:
        import spacy

        request.app.state.ginza = spacy.load("ja_ginza")
    nlp = request.app.state.ginza
    return lambda text: mask(text, nlp)


def page(request: Request, name: str, staff: StaffSession | None, **context: Any) -> Response:
    """Render a template with the common context and the security headers."""
    context.update(request=request, staff=staff, csrf=staff.csrf_token if staff else "")
    return templates.TemplateResponse(request, name, context, headers=SECURITY_HEADERS)


# ---- log-in ------------------------------------------------------------------------------


@router.get("/login")
def login_form(request: Request, error: str = "") -> Response:
    """The log-in form (username, password, code from the authenticator app)."""
    token = secrets.token_urlsafe(24)
    response = page(request, "login.html", None, login_csrf=token, error=error[:40])
    response.set_cookie(LOGIN_CSRF, token, httponly=True, samesite="strict", path="/staff",
                        secure=request.app.state.settings.staff_cookie_secure)  # fmt: skip
    return response


@router.post("/login")
def login(
    request: Request,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=200)],
    code: Annotated[str, Form(max_length=10)],
    csrf: Annotated[str, Form(max_length=64)],
) -> Response:
    """Check the credentials; on success start a session."""
    cookie = request.cookies.get(LOGIN_CSRF, "")
    if not cookie or not secrets.compare_digest(cookie, csrf):
        return RedirectResponse("/staff/login?error=expired", status_code=303)
    settings: Settings = request.app.state.settings
    now = _now(request)
    with _db(request) as session, session.begin():
        result = auth.authenticate(session, settings, username, password, code, now)
        if result.user is None:
            reason = "locked" if result.locked else "invalid"
            return RedirectResponse(f"/staff/login?error={reason}", status_code=303)
        token = auth.open_session(session, result.user, settings, now)
        auth.log_access(session, result.user.username, "login", "", now)
    response = RedirectResponse("/staff/", status_code=303)
    response.set_cookie(auth.COOKIE, token, httponly=True, samesite="strict", path="/staff",
                        secure=settings.staff_cookie_secure,
                        max_age=settings.staff_session_hours * 3600)  # fmt: skip
    response.delete_cookie(LOGIN_CSRF, path="/staff")
    return response


@router.post("/logout")
def logout(request: Request, staff: Staff, csrf: Annotated[str, Form(max_length=64)]) -> Response:
    """End the session (the form carries the CSRF token; without it nothing happens)."""
    if not auth.csrf_ok(staff, csrf):
        return RedirectResponse("/staff/", status_code=303)
    with _db(request) as session, session.begin():
        auth.close_session(session, request.cookies.get(auth.COOKIE))
    response = RedirectResponse("/staff/login", status_code=303)
    response.delete_cookie(auth.COOKIE, path="/staff")
    return response


# ---- the views ---------------------------------------------------------------------------


def overview_data(convs: list[Conversation], filters: Filters) -> dict[str, Any]:
    """Conversations and residents per day and channel."""
    counts = metrics.per_day(convs)
    days = metrics.days(filters.start, filters.end)
    channels = [c for c in CHANNELS if filters.channel in ("all", c)]
    rows = [(day, [counts.get((day, ch), (0, 0)) for ch in channels]) for day in days]
    chart = charts.bars(
        "1日あたりの会話数（チャネル別）",
        [d.strftime("%m/%d") for d in days],
        {ch: [counts.get((d, ch), (0, 0))[0] for d in days] for ch in channels},
    )
    totals = Counter({ch: sum(counts.get((d, ch), (0, 0))[0] for d in days) for ch in channels})
    residents = len({c.sender for c in convs})
    return {"rows": rows, "channels": channels, "chart": chart, "totals": totals,
            "residents": residents, "conversations": len(convs)}  # fmt: skip


@router.get("/", response_class=HTMLResponse)
def overview(request: Request, staff: Staff, filters: Filtered) -> Response:
    """Conversations and residents per day and channel."""
    data = overview_data(load(request, filters), filters)
    return page(request, "overview.html", staff, filters=filters, view="overview", **data)


def intents_data(convs: list[Conversation], filters: Filters) -> dict[str, Any]:
    """Intent distribution, FAQ topics and their trend."""
    counts = metrics.intents(convs)
    faq = Counter({k: v for k, v in counts.items() if k.startswith("ask_")})
    top = [name for name, _ in faq.most_common(5)]
    days = metrics.days(filters.start, filters.end)
    trend = metrics.intent_trend(convs, top)
    chart = charts.bars(
        "よく聞かれる話題（上位5件）の推移",
        [d.strftime("%m/%d") for d in days],
        {name: [trend[name][d] for d in days] for name in top},
    )
    return {"counts": counts.most_common(), "faq": faq.most_common(10), "chart": chart}


@router.get("/intents", response_class=HTMLResponse)
def intents(request: Request, staff: Staff, filters: Filtered) -> Response:
    """What residents ask."""
    data = intents_data(load(request, filters), filters)
    return page(request, "intents.html", staff, filters=filters, view="intents", **data)


def fallbacks_data(convs: list[Conversation], filters: Filters, hide: Any) -> dict[str, Any]:
    """Fallback rate per day and the misunderstood messages grouped by similarity."""
    per_day = metrics.fallbacks(convs)
    days = metrics.days(filters.start, filters.end)
    chart = charts.bars(
        "理解できなかったメッセージの数",
        [d.strftime("%m/%d") for d in days],
        {"理解できなかった": [per_day[d].fallbacks if d in per_day else 0 for d in days]},
    )
    groups = metrics.group_similar([hide(t) for t in metrics.unanswered(convs)])
    total = sum(d.messages for d in per_day.values())
    missed = sum(d.fallbacks for d in per_day.values())
    # A rate next to a suppressed count would give the count away: it is hidden too.
    rate = missed / total if total and not 0 < missed < SMALL else None
    return {"per_day": per_day, "chart": chart, "groups": groups[:30], "total": total,
            "missed": missed, "rate": rate}  # fmt: skip


@router.get("/fallbacks", response_class=HTMLResponse)
def fallbacks(request: Request, staff: Staff, filters: Filtered) -> Response:
    """Where the assistant fails."""
    data = fallbacks_data(load(request, filters), filters, masker(request))
    return page(request, "fallbacks.html", staff, filters=filters, view="fallbacks", **data)


def consent_records(session: Session, filters: Filters) -> dict[tuple[int, str], list[int]]:
    """(level, channel) → [recorded, withdrawn] from the consent tables in the range."""
    low = dt.datetime.combine(filters.start, dt.time.min, JST)
    high = dt.datetime.combine(filters.end + dt.timedelta(days=1), dt.time.min, JST)
    levels = {
        o.offer_id: max(i.item.level for i in o.items)
        for o in session.execute(select(Offer)).scalars()
    }
    names = {"line": "LINE", "web": "web", "rest": "REST"}
    result: dict[tuple[int, str], list[int]] = {}
    in_range = or_(
        and_(Consent.created_at >= low, Consent.created_at < high),
        and_(Consent.withdrawn_at >= low, Consent.withdrawn_at < high),
    )
    for consent in session.execute(select(Consent).where(in_range)).scalars():
        key = (levels.get(consent.offer_id, 1), names.get(consent.channel, "REST"))
        if filters.channel not in ("all", key[1]):
            continue
        row = result.setdefault(key, [0, 0])
        row[0] += low <= consent.created_at < high
        row[1] += consent.withdrawn_at is not None and low <= consent.withdrawn_at < high
    return result


@router.get("/funnel", response_class=HTMLResponse)
def funnel(request: Request, staff: Staff, filters: Filtered) -> Response:
    """The consent funnel by level and channel."""
    rows = metrics.funnel(load(request, filters))
    with _db(request) as session:
        records = consent_records(session, filters)
    return page(request, "funnel.html", staff, filters=filters, view="funnel",
                rows=sorted(rows.items()), records=sorted(records.items()))  # fmt: skip


@router.get("/conversations", response_class=HTMLResponse)
def conversation_list(request: Request, staff: Staff, filters: Filtered) -> Response:
    """The conversations in the range, newest first, to open for review."""
    convs = sorted(load(request, filters), key=lambda c: c.events[0].at, reverse=True)[:200]
    return page(request, "conversations.html", staff, filters=filters, view="conversations",
                convs=convs, fallback=metrics.FALLBACK)  # fmt: skip


@router.get("/conversations/{key}", response_class=HTMLResponse)
def transcript(request: Request, staff: Staff, key: str) -> Response:
    """One conversation with intents and actions, masked; the view is written to the access log."""
    sender, _, number = key.rpartition(":")
    today = _now(request).astimezone(JST).date()
    events = read_sender_events(request.app.state.tracker_engine, sender)
    recent = conversations(events, today - dt.timedelta(days=366), today)  # the last year only
    conv = next((c for c in recent if str(c.number) == number), None)
    if conv is None:
        return page(request, "transcript.html", staff, conv=None, lines=[], view="conversations")
    hide = masker(request)
    lines = []
    for event in conv.events:
        if event.kind == "user":
            shown = event.text
            shown = f"［ボタン］{shown[1:].split('{')[0]}" if shown.startswith("/") else hide(shown)
            confidence = (event.data.get("parse_data") or {}).get("intent", {}).get("confidence")
            lines.append(("user", event.at, shown, event.intent, confidence))
        elif event.kind == "bot":
            lines.append(("bot", event.at, hide(event.text), event.utter_action, None))
        elif event.kind == "action" and event.action != "action_listen":
            lines.append(("action", event.at, "", event.action, None))
    with _db(request) as session, session.begin():
        auth.log_access(
            session, staff.user.username, "view_transcript", conv.key[:16] + "…", _now(request)
        )
    return page(request, "transcript.html", staff, conv=conv, lines=lines, view="conversations")


@router.get("/access-log", response_class=HTMLResponse)
def access_log(request: Request, staff: Annotated[StaffSession, Depends(admin)]) -> Response:
    """Who viewed what (admins only)."""
    with _db(request) as session:
        entries = list(
            session.execute(
                select(StaffAccessLog).order_by(StaffAccessLog.id.desc()).limit(500)
            ).scalars()
        )
    return page(request, "access_log.html", staff, entries=entries, view="access-log")


@router.get("/export/{name}.csv")
def export(request: Request, staff: Staff, filters: Filtered, name: str) -> Response:
    """A view as CSV, with the same masking and small-count rules as the page."""
    convs = load(request, filters)
    out = io.StringIO()
    writer = csv.writer(out)
    if name == "overview":
        data = overview_data(convs, filters)
        writer.writerow(["day", *[f"{c} conversations" for c in data["channels"]],
                         *[f"{c} residents" for c in data["channels"]]])  # fmt: skip
        for day, cells in data["rows"]:
            writer.writerow(
                [day, *[suppress(c[0]) for c in cells], *[suppress(c[1]) for c in cells]]
            )
    elif name == "intents":
        writer.writerow(["intent", "count"])
        for intent, count in metrics.intents(convs).most_common():
            writer.writerow([intent, suppress(count)])
    elif name == "fallbacks":
        writer.writerow(["group", "count", "example (masked)"])
        for i, group in enumerate(fallbacks_data(convs, filters, masker(request))["groups"], 1):
            writer.writerow([i, suppress(len(group)), group[0]])
    else:
        return Response(status_code=404)
    with _db(request) as session, session.begin():
        auth.log_access(session, staff.user.username, "export", name, _now(request))
    return Response(
        out.getvalue().encode("utf-8-sig"),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}.csv"', **SECURITY_HEADERS},
    )


@router.get("/static/staff.css")
def stylesheet() -> Response:
    """The console's stylesheet."""
    return Response((HERE / "templates" / "staff.css").read_text(encoding="utf-8"),
                    media_type="text/css")  # fmt: skip
