"""The `/staff` pages. Every page needs a logged-in staff member; without one, 302 to the log-in.

Data: the analytics tables (written by `python -m consent_service consume` from Rasa's event
broker, every text masked there) and the consent tables; never Rasa's own database. The
aggregate views (overview, intents, fallbacks, funnel) and their CSV exports count in cells of
one completed week, one channel and one category; a cell of 1 to 4 is shown as "<5" and every
other number is a sum of cells shown exactly or as the range it must lie in (`masking.Count`),
so no number on any page or export gives a hidden cell away (docs/staff-console.md).
"""

from __future__ import annotations

import datetime as dt
import secrets
import threading
from collections import Counter
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from consent_service import code_attempts, consents, receipt_codes
from consent_service.config import Settings
from consent_service.models import Consent, Offer, StaffAccessLog, StaffSession
from consent_service.staff import auth, charts, exports, metrics
from consent_service.staff.masking import Count, share, shown, total
from consent_service.staff.tracker import (
    JST,
    Conversation,
    conversations,
    read_events,
    read_sender_events,
)

HERE = Path(__file__).resolve().parent
templates = Jinja2Templates(directory=str(HERE / "templates"))
templates.env.filters["n"] = shown
router = APIRouter(prefix="/staff", include_in_schema=False)
CHANNELS = ("LINE", "web", "REST")
LOGIN_CSRF = "staff_login_csrf"
LOGIN_ERRORS = ("invalid", "expired", "throttled")
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; style-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
_THROTTLE_LOCK = threading.Lock()


class LoginRequired(Exception):
    """Raised by the session dependencies; answered with a redirect (to the log-in page)."""

    def __init__(self, location: str = "/staff/login") -> None:
        super().__init__(location)
        self.location = location


def _db(request: Request) -> Any:
    return request.app.state.sessionmaker()


def _now(request: Request) -> dt.datetime:
    now: dt.datetime = request.app.state.clock()
    return now


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def current(request: Request) -> StaffSession:
    """The logged-in staff session (marked as used now), or LoginRequired."""
    idle = dt.timedelta(minutes=_settings(request).staff_idle_minutes)
    with _db(request) as session:
        with session.begin():  # an idle session is deleted, an active one touched
            found = auth.find_session(
                session, request.cookies.get(auth.COOKIE), _now(request), idle
            )
        if found is None:
            raise LoginRequired
        session.expunge(found)
        return found


AnyStaff = Annotated[StaffSession, Depends(current)]


def home(role: str) -> str:
    """The first page of a role: the counter for `counter`, the overview for the others."""
    return "/staff/counter" if role == "counter" else "/staff/"


def analyst(staff: AnyStaff) -> StaffSession:
    """Viewers and admins: counter staff see no conversations or counts (sent to the counter)."""
    if staff.user.role == "counter":
        raise LoginRequired(home(staff.user.role))
    return staff


Staff = Annotated[StaffSession, Depends(analyst)]


def admin(staff: AnyStaff) -> StaffSession:
    """Only admins: others are sent back to their first page."""
    if staff.user.role != "admin":
        raise LoginRequired(home(staff.user.role))
    return staff


def counter_staff(staff: AnyStaff) -> StaffSession:
    """Only counter (窓口) staff: others are sent back to their first page."""
    if staff.user.role != "counter":
        raise LoginRequired(home(staff.user.role))
    return staff


CounterStaff = Annotated[StaffSession, Depends(counter_staff)]


class Filters:
    """The date range and channel of the conversation list (Japan days; the last 30 by default).

    The list shows single conversations (each opened transcript is logged), not counts.
    """

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
        self.weekly = False

    def query(self) -> str:
        """The filters as a query string, for links."""
        return f"start={self.start}&end={self.end}&channel={self.channel}"


class WeekFilters(Filters):
    """The range of the aggregate views: whole completed weeks (Monday to Sunday, Japan time).

    The asked dates are widened to their weeks, limited to the STAFF_HISTORY_WEEKS newest
    published weeks (`metrics.last_published_week`); four weeks by default.
    """

    def __init__(
        self,
        request: Request,
        start: Annotated[dt.date | None, Query()] = None,
        end: Annotated[dt.date | None, Query()] = None,
        channel: Annotated[str, Query(max_length=8)] = "all",
    ) -> None:
        today = _now(request).astimezone(JST).date()
        last = metrics.last_published_week(today)
        first = last - dt.timedelta(weeks=_settings(request).staff_history_weeks - 1)
        end_week = min(max(metrics.week_of(end), first), last) if end else last
        start_week = metrics.week_of(start) if start else end_week - dt.timedelta(weeks=3)
        start_week = min(max(start_week, first), end_week)
        self.start, self.end = start_week, end_week + dt.timedelta(days=6)
        self.channel = channel if channel in CHANNELS else "all"
        self.weekly = True

    @property
    def mondays(self) -> list[dt.date]:
        """The weeks of the range."""
        return metrics.weeks(self.start, self.end)

    @property
    def channels(self) -> list[str]:
        """The channels the filter selects."""
        return [c for c in CHANNELS if self.channel in ("all", c)]


Filtered = Annotated[Filters, Depends()]
WeekFiltered = Annotated[WeekFilters, Depends()]


def load(request: Request, filters: Filters) -> list[Conversation]:
    """The conversations in the filters' range and channel (from the analytics tables)."""
    with _db(request) as session:
        events = read_events(session, filters.start, filters.end)
    convs = conversations(events, filters.start, filters.end)
    return [c for c in convs if filters.channel in ("all", c.channel)]


def page(request: Request, name: str, staff: StaffSession | None, **context: Any) -> Response:
    """Render a template with the common context and the security headers."""
    context.update(request=request, staff=staff, csrf=staff.csrf_token if staff else "")
    return templates.TemplateResponse(request, name, context, headers=SECURITY_HEADERS)


def week_label(monday: dt.date) -> str:
    """A week as `2026-11-16/2026-11-22`."""
    return f"{monday}/{monday + dt.timedelta(days=6)}"


# ---- log-in ------------------------------------------------------------------------------


def throttle(request: Request) -> auth.LoginThrottle:
    """The log-in throttle of this app (made on first use)."""
    state = request.app.state
    with _THROTTLE_LOCK:
        found = getattr(state, "staff_login_throttle", None)
        if found is None:
            settings = _settings(request)
            found = auth.LoginThrottle(
                settings.staff_login_ip_attempts,
                dt.timedelta(seconds=settings.staff_login_ip_window_seconds),
                settings.staff_login_ip_max_clients,
            )
            state.staff_login_throttle = found
    return found


@router.get("/login")
def login_form(request: Request, error: str = "") -> Response:
    """The log-in form (username, password, code from the authenticator app)."""
    token = secrets.token_urlsafe(24)
    shown_error = error if error in LOGIN_ERRORS else ""
    response = page(request, "login.html", None, login_csrf=token, error=shown_error)
    response.set_cookie(LOGIN_CSRF, token, httponly=True, samesite="strict", path="/staff",
                        secure=_settings(request).staff_cookie_secure)  # fmt: skip
    return response


@router.post("/login")
def login(
    request: Request,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=200)],
    code: Annotated[str, Form(max_length=10)],
    csrf: Annotated[str, Form(max_length=64)],
) -> Response:
    """Check the credentials; on success start a session.

    Every failure (unknown user, wrong password, wrong or replayed code, locked account) gets
    the same answer, and is written to the access log without the password or the code; an
    address over STAFF_LOGIN_IP_ATTEMPTS is refused before argon2 runs.
    """
    cookie = request.cookies.get(LOGIN_CSRF, "")
    if not cookie or not secrets.compare_digest(cookie, csrf):
        return RedirectResponse("/staff/login?error=expired", status_code=303)
    settings = _settings(request)
    now = _now(request)
    client = request.client.host if request.client else "unknown"
    allowed, first_refusal = throttle(request).check(client, now)
    if not allowed:
        if first_refusal:
            with _db(request) as session, session.begin():
                auth.log_access(session, "(unknown)", "login_throttled", f"ip={client}", now)
        return RedirectResponse("/staff/login?error=throttled", status_code=303)
    with _db(request) as session, session.begin():
        result = auth.authenticate(session, settings, username, password, code, now)
        if result.user is None:
            # A name that is no account is not logged: it may be a password typed in the wrong box.
            name = "(unknown)" if result.reason == "unknown_user" else username
            auth.log_access(session, name, "login_failed", f"{result.reason} ip={client}", now)
            if result.locked_now:
                auth.log_access(session, name, "lockout", f"ip={client}", now)
            return RedirectResponse("/staff/login?error=invalid", status_code=303)
        token = auth.open_session(session, result.user, settings, now)
        auth.log_access(session, result.user.username, "login", f"ip={client}", now)
        location = home(result.user.role)
    response = RedirectResponse(location, status_code=303)
    response.set_cookie(auth.COOKIE, token, httponly=True, samesite="strict", path="/staff",
                        secure=settings.staff_cookie_secure,
                        max_age=settings.staff_session_hours * 3600)  # fmt: skip
    response.delete_cookie(LOGIN_CSRF, path="/staff")
    return response


@router.post("/logout")
def logout(
    request: Request, staff: AnyStaff, csrf: Annotated[str, Form(max_length=64)]
) -> Response:
    """End the session (the form carries the CSRF token; without it nothing happens)."""
    if not auth.csrf_ok(staff, csrf):
        return RedirectResponse(home(staff.user.role), status_code=303)
    with _db(request) as session, session.begin():
        auth.close_session(session, request.cookies.get(auth.COOKIE))
    response = RedirectResponse("/staff/login", status_code=303)
    response.delete_cookie(auth.COOKIE, path="/staff")
    return response


# ---- the aggregate views -----------------------------------------------------------------


def _labels(filters: WeekFilters) -> list[str]:
    return [f"{d:%m/%d}〜" for d in filters.mondays]


def overview_data(convs: list[Conversation], filters: WeekFilters) -> dict[str, Any]:
    """Conversations and residents per week and channel (residents are counted per week)."""
    counts = metrics.per_week(convs)
    channels = filters.channels
    rows = [
        (
            monday,
            [tuple(Count.cell(v) for v in counts.get((monday, ch), (0, 0))) for ch in channels],
        )
        for monday in filters.mondays
    ]
    totals = {ch: total(cells[i][0] for _, cells in rows) for i, ch in enumerate(channels)}
    chart = charts.bars(
        "1週間あたりの会話数（チャネル別）",
        _labels(filters),
        {ch: [cells[i][0] for _, cells in rows] for i, ch in enumerate(channels)},
    )
    return {"rows": rows, "channels": channels, "chart": chart, "totals": totals,
            "conversations": total(totals.values())}  # fmt: skip


@router.get("/", response_class=HTMLResponse)
def overview(request: Request, staff: Staff, filters: WeekFiltered) -> Response:
    """Conversations and residents per week and channel."""
    data = overview_data(load(request, filters), filters)
    return page(request, "overview.html", staff, filters=filters, view="overview", **data)


def intent_counts(
    cells: Counter[tuple[str, dt.date, str]], filters: WeekFilters
) -> dict[str, Count]:
    """Intent → its count in the range and channels, a sum of (intent, week, channel) cells."""
    result: dict[str, Count] = {}
    for (intent, _monday, _channel), n in cells.items():
        result[intent] = result.get(intent, Count()) + Count.cell(n)
    return result


def ranked(counts: dict[str, Count]) -> list[tuple[str, Count]]:
    """Largest first by what is shown, then by name."""
    return sorted(counts.items(), key=lambda item: (item[1].sort_key(), item[0]))


def intents_data(convs: list[Conversation], filters: WeekFilters) -> dict[str, Any]:
    """Intent distribution, FAQ topics and their weekly trend."""
    cells = metrics.intent_cells(convs)
    counts = ranked(intent_counts(cells, filters))
    faq = [(name, count) for name, count in counts if name.startswith("ask_")]
    top = [name for name, _ in faq[:5]]
    chart = charts.bars(
        "よく聞かれる話題（上位5件）の推移",
        _labels(filters),
        {
            name: [
                total(Count.cell(cells[(name, monday, ch)]) for ch in filters.channels)
                for monday in filters.mondays
            ]
            for name in top
        },
    )
    return {"counts": counts, "faq": faq[:10], "chart": chart}


@router.get("/intents", response_class=HTMLResponse)
def intents(request: Request, staff: Staff, filters: WeekFiltered) -> Response:
    """What residents ask."""
    data = intents_data(load(request, filters), filters)
    return page(request, "intents.html", staff, filters=filters, view="intents", **data)


def fallbacks_data(convs: list[Conversation], filters: WeekFilters) -> dict[str, Any]:
    """Misunderstood messages per week and their share; the messages (masked at intake) grouped.

    The groups are listed by size without their sizes: a size is a number that the weekly
    cells would have to be consistent with, and the examples are single messages anyway.
    """
    cells = metrics.intent_cells(convs)
    weekly = [
        total(Count.cell(cells[(metrics.FALLBACK, monday, ch)]) for ch in filters.channels)
        for monday in filters.mondays
    ]
    chart = charts.bars(
        "理解できなかったメッセージの数（週別）", _labels(filters), {"理解できなかった": weekly}
    )
    messages = total(intent_counts(cells, filters).values())
    missed = total(weekly)
    groups = metrics.group_similar(metrics.unanswered(convs))
    return {"weekly": list(zip(filters.mondays, weekly, strict=True)), "chart": chart,
            "groups": groups[:30], "total": messages, "missed": missed,
            "rate": share(missed, messages)}  # fmt: skip


@router.get("/fallbacks", response_class=HTMLResponse)
def fallbacks(request: Request, staff: Staff, filters: WeekFiltered) -> Response:
    """Where the assistant fails."""
    data = fallbacks_data(load(request, filters), filters)
    return page(request, "fallbacks.html", staff, filters=filters, view="fallbacks", **data)


def funnel_rows(convs: list[Conversation]) -> list[tuple[tuple[int, str], dict[str, Count]]]:
    """(level, channel) → each funnel column as a sum of the same (outcome, week) cells."""
    rows: dict[tuple[int, str], dict[str, Count]] = {}
    for (level, channel, _monday, outcome), n in metrics.funnel_cells(convs).items():
        row = rows.setdefault((level, channel), {c: Count() for c in metrics.FUNNEL_COLUMNS})
        for column in metrics.FUNNEL_COLUMNS:
            if metrics.in_column(outcome, column):
                row[column] = row[column] + Count.cell(n)
    return sorted(rows.items())


def consent_records(
    session: Session, filters: WeekFilters
) -> list[tuple[tuple[int, str], list[Count]]]:
    """(level, channel) → [recorded, withdrawn] in the range, sums of (week) cells."""
    low = dt.datetime.combine(filters.start, dt.time.min, JST)
    high = dt.datetime.combine(filters.end + dt.timedelta(days=1), dt.time.min, JST)
    levels = {
        o.offer_id: max(i.item.level for i in o.items)
        for o in session.execute(select(Offer)).scalars()
    }
    names = {"line": "LINE", "web": "web", "rest": "REST"}
    cells: Counter[tuple[int, str, dt.date, int]] = Counter()
    in_range = or_(
        and_(Consent.created_at >= low, Consent.created_at < high),
        and_(Consent.withdrawn_at >= low, Consent.withdrawn_at < high),
    )
    for consent in session.execute(select(Consent).where(in_range)).scalars():
        level, channel = levels.get(consent.offer_id, 1), names.get(consent.channel, "REST")
        if filters.channel not in ("all", channel):
            continue
        for kind, at in enumerate((consent.created_at, consent.withdrawn_at)):
            if at is not None and low <= at < high:
                cells[(level, channel, metrics.week_of(at.astimezone(JST).date()), kind)] += 1
    rows: dict[tuple[int, str], list[Count]] = {}
    for (level, channel, _monday, kind), n in cells.items():
        row = rows.setdefault((level, channel), [Count(), Count()])
        row[kind] = row[kind] + Count.cell(n)
    return sorted(rows.items())


@router.get("/funnel", response_class=HTMLResponse)
def funnel(request: Request, staff: Staff, filters: WeekFiltered) -> Response:
    """The consent funnel by level and channel."""
    rows = funnel_rows(load(request, filters))
    with _db(request) as session:
        records = consent_records(session, filters)
    return page(request, "funnel.html", staff, filters=filters, view="funnel",
                rows=rows, records=records)  # fmt: skip


# ---- single conversations ----------------------------------------------------------------


@router.get("/conversations", response_class=HTMLResponse)
def conversation_list(request: Request, staff: Staff, filters: Filtered) -> Response:
    """The conversations in the range, newest first, to open for review."""
    convs = sorted(load(request, filters), key=lambda c: c.events[0].at, reverse=True)[:200]
    return page(request, "conversations.html", staff, filters=filters, view="conversations",
                convs=convs, fallback=metrics.FALLBACK)  # fmt: skip


@router.get("/conversations/{key}", response_class=HTMLResponse)
def transcript(request: Request, staff: Staff, key: str) -> Response:
    """One conversation with intents and actions (masked at intake); the view is logged."""
    sender, _, number = key.rpartition(":")
    today = _now(request).astimezone(JST).date()
    with _db(request) as session:
        events = read_sender_events(session, sender)
    recent = conversations(events, today - dt.timedelta(days=366), today)  # the last year only
    conv = next((c for c in recent if str(c.number) == number), None)
    if conv is None:
        return page(request, "transcript.html", staff, conv=None, lines=[], view="conversations")
    lines = []
    for event in conv.events:  # texts were masked at intake (consent_service.analytics)
        if event.kind == "user":
            text = event.text
            text = f"［ボタン］{text[1:].split('{')[0]}" if text.startswith("/") else text
            lines.append(("user", event.at, text, event.intent, event.confidence))
        elif event.kind == "bot":
            lines.append(("bot", event.at, event.text, event.utter_action, None))
        elif event.kind == "action" and event.action != "action_listen":
            lines.append(("action", event.at, "", event.action, None))
    with _db(request) as session, session.begin():
        auth.log_access(
            session, staff.user.username, "view_transcript", conv.key[:16] + "…", _now(request)
        )
    return page(request, "transcript.html", staff, conv=conv, lines=lines, view="conversations")


@router.get("/access-log", response_class=HTMLResponse)
def access_log(request: Request, staff: Annotated[StaffSession, Depends(admin)]) -> Response:
    """Who viewed what, and every log-in, failure and lockout (admins only)."""
    with _db(request) as session:
        entries = list(
            session.execute(
                select(StaffAccessLog).order_by(StaffAccessLog.id.desc()).limit(500)
            ).scalars()
        )
    return page(request, "access_log.html", staff, entries=entries, view="access-log")


# ---- the counter (窓口) --------------------------------------------------------------------

# Why a withdrawal was made at the counter. A fixed list, not free text: the reason goes into the
# audit chain, which can never be edited, and free text invites names and health details.
WITHDRAWAL_REASONS = {
    "in_person": "ご本人が窓口で申し出",
    "proxy": "代理人が窓口で申し出",
    "phone": "ご本人から電話で申し出",
    "letter": "書面（郵送）で申し出",
}
STAFF_CLIENT = "staff-console"  # the client of the wrong-code limit for counter look-ups


def _code_limits(settings: Settings) -> code_attempts.Limits:
    return code_attempts.Limits(
        window=dt.timedelta(seconds=settings.receipt_code_window_seconds),
        per_requester=settings.receipt_code_failures_per_requester,
        per_client=settings.receipt_code_failures_per_client,
    )


def _counter_page(request: Request, staff: StaffSession, **context: Any) -> Response:
    context.setdefault("match", None)
    context.setdefault("error", "")
    context.setdefault("done", None)
    return page(request, "counter.html", staff, view="counter", reasons=WITHDRAWAL_REASONS,
                **context)  # fmt: skip


def _find(
    request: Request, staff: StaffSession, typed: str
) -> tuple[consents.CodeMatch | None, str, str]:
    """Look a typed code up under the wrong-code limit: (match, normalised code, error)."""
    factory = request.app.state.sessionmaker
    now = _now(request)
    try:
        attempt = code_attempts.begin(
            factory,
            client=STAFF_CLIENT,
            requester=f"staff:{staff.user.username}",
            limits=_code_limits(_settings(request)),
            now=now,
        )
    except code_attempts.TooManyWrongCodes:
        return None, "", "throttled"
    try:
        code = receipt_codes.normalise(typed)
    except receipt_codes.InvalidCode:
        return None, "", "invalid"
    with factory() as session:
        match = consents.find_by_code(session, code)
    if match is None:
        return None, code, "unknown"
    code_attempts.succeeded(factory, attempt)
    return match, code, ""


@router.get("/counter", response_class=HTMLResponse)
def counter(request: Request, staff: CounterStaff) -> Response:
    """The counter: look a consent up by the receipt code the resident shows or reads out."""
    return _counter_page(request, staff)


@router.post("/counter/lookup", response_class=HTMLResponse)
def counter_lookup(
    request: Request,
    staff: CounterStaff,
    code: Annotated[str, Form(max_length=receipt_codes.MAX_INPUT)],
    csrf: Annotated[str, Form(max_length=64)],
) -> Response:
    """Show the offer's name and the consent's status for a code (nothing else); logged."""
    if not auth.csrf_ok(staff, csrf):
        return RedirectResponse("/staff/counter", status_code=303)
    match, normalised, error = _find(request, staff, code)
    with _db(request) as session, session.begin():
        target = normalised or "-"
        action = "counter_lookup" if match else f"counter_lookup_{error}"
        auth.log_access(session, staff.user.username, action, target, _now(request))
    return _counter_page(request, staff, match=match, error=error)


@router.post("/counter/withdraw", response_class=HTMLResponse)
def counter_withdraw(
    request: Request,
    staff: CounterStaff,
    code: Annotated[str, Form(max_length=receipt_codes.MAX_INPUT)],
    reason: Annotated[str, Form(max_length=32)],
    csrf: Annotated[str, Form(max_length=64)],
) -> Response:
    """Withdraw the consent of a code on the resident's behalf, with a reason from the list.

    The withdrawal is the consent's subject's, made by staff: the audit entry names the staff
    member and the reason, and so does the access log.
    """
    if not auth.csrf_ok(staff, csrf):
        return RedirectResponse("/staff/counter", status_code=303)
    match, normalised, error = _find(request, staff, code)
    if match is None:
        return _counter_page(request, staff, error=error)
    if reason not in WITHDRAWAL_REASONS:
        return _counter_page(request, staff, match=match, error="reason")
    now = _now(request)
    outcome = consents.withdraw_by_code(
        request.app.state.sessionmaker,
        normalised,
        made_by={"by": "staff", "staff_username": staff.user.username, "reason": reason},
        controller=request.app.state.controller,
        now=now,
    )
    with _db(request) as session, session.begin():
        auth.log_access(
            session, staff.user.username, "counter_withdraw", f"{normalised} reason={reason}", now
        )
        done = consents.find_by_code(session, outcome.body["receipt"]["receipt_code"])
    return _counter_page(request, staff, done=done)


# ---- exports -----------------------------------------------------------------------------


def export_rows(request: Request, name: str, filters: WeekFilters) -> list[list[Any]] | None:
    """The rows of one CSV export (the numbers exactly as the view shows them)."""
    convs = load(request, filters)
    if name == "overview":
        data = overview_data(convs, filters)
        rows: list[list[Any]] = [
            ["week", *[f"{c} conversations" for c in data["channels"]],
             *[f"{c} residents (of the week)" for c in data["channels"]]]
        ]  # fmt: skip
        for monday, cells in data["rows"]:
            rows.append([week_label(monday), *[c[0] for c in cells], *[c[1] for c in cells]])
        rows.append(["total", *data["totals"].values(), *["" for _ in data["channels"]]])
        return rows
    if name == "intents":
        return [["intent", "count"], *[[i, c] for i, c in intents_data(convs, filters)["counts"]]]
    if name == "fallbacks":
        groups = fallbacks_data(convs, filters)["groups"]
        return [["group (largest first)", "example (masked)"],
                *[[i, group[0]] for i, group in enumerate(groups, 1)]]  # fmt: skip
    return None


@router.get("/export/{name}.csv")
def export(request: Request, staff: Staff, filters: WeekFiltered, name: str) -> Response:
    """A view as CSV, with the same masking and counting rules as the page.

    Every cell is neutralised against formula injection (`exports.cell`).
    """
    rows = export_rows(request, name, filters)
    if rows is None:
        return Response(status_code=404)
    with _db(request) as session, session.begin():
        auth.log_access(session, staff.user.username, "export", name, _now(request))
    return Response(
        exports.to_csv([[shown(v) if isinstance(v, Count) else v for v in row] for row in rows]),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}.csv"', **SECURITY_HEADERS},
    )


@router.get("/static/staff.css")
def stylesheet() -> Response:
    """The console's stylesheet."""
    return Response((HERE / "templates" / "staff.css").read_text(encoding="utf-8"),
                    media_type="text/css")  # fmt: skip


# ---- labelling what the assistant did not understand (issue 15) ---------------------------
# At the end: label_views takes its dependencies and `page` from this module.
from consent_service.staff import label_views  # noqa: E402

router.include_router(label_views.router)

# ---- health notices (issue 17) and the counter's consultation memo (issue 18) -------------
from consent_service.staff import memo_views, notice_views  # noqa: E402

router.include_router(notice_views.router)
router.include_router(memo_views.router)
