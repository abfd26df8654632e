"""The `/staff/labels` page: label what the assistant did not understand (issue 15).

Everyone who sees the aggregate views sees the not-understood messages (masked at intake) and
the labels; editors and admins may label (an intent of the domain, or "new topic" with a note)
and ask the running assistant again (再確認). Every view of the page, label and check is in the
access log.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from consent_service.models import StaffSession
from consent_service.staff import auth, labels, metrics
from consent_service.staff.tracker import CHANNELS, JST
from consent_service.staff.views import (
    Filtered,
    LoginRequired,
    Staff,
    _db,
    _now,
    _settings,
    home,
    page,
)

# Included by `views.router` (prefix /staff), which this module's dependencies come from.
router: APIRouter = APIRouter(include_in_schema=False)
LABELLERS = ("editor", "admin")
NEW_TOPIC = "__new_topic__"
ERRORS = ("rasa", "message", "intent")  # the page's wording for each is in labels.html


def labeller(staff: Staff) -> StaffSession:
    """Editors and admins: viewers are sent back to the labels page without labelling."""
    if staff.user.role not in LABELLERS:
        raise LoginRequired("/staff/labels" if staff.user.role != "counter" else home("counter"))
    return staff


Labeller = Annotated[StaffSession, Depends(labeller)]


def groups_of(events: list[Any]) -> list[list[Any]]:
    """The messages grouped as the fallbacks page groups them (similar texts), largest first."""
    by_text: dict[str, list[Any]] = defaultdict(list)
    for event in events:
        by_text[event.text].append(event)
    grouped = metrics.group_similar([event.text for event in events])
    return [[by_text[text].pop(0) for text in group] for group in grouped]


@router.get("/labels", response_class=HTMLResponse)
def labels_page(
    request: Request, staff: Staff, filters: Filtered, error: str = "", done: str = ""
) -> Response:
    """The not-understood messages of the range (to label) and the labels so far (logged)."""
    low = dt.datetime.combine(filters.start, dt.time.min, JST).timestamp()
    high = dt.datetime.combine(filters.end + dt.timedelta(days=1), dt.time.min, JST).timestamp()
    settings = _settings(request)
    with _db(request) as session:
        events = [
            e
            for e in labels.not_understood(session, low, high)
            if filters.channel in ("all", CHANNELS.get(str(e.channel), "REST"))
        ]
        stored = labels.labels(session)
        session.expunge_all()
    with _db(request) as session, session.begin():  # who saw the messages, like a transcript
        target = f"{filters.start}..{filters.end} {filters.channel}"
        auth.log_access(session, staff.user.username, "view_labels", target, _now(request))
    labelled = {label.analytics_event_id: label for label in stored}
    rows = [(label, label.understood(settings.staff_label_min_confidence)) for label in stored]
    return page(request, "labels.html", staff, filters=filters, view="labels",
                groups=groups_of(events)[:50], labelled=labelled, rows=rows,
                intents=labels.label_intents(), new_topic=NEW_TOPIC,
                can_label=staff.user.role in LABELLERS,
                error=error if error in ERRORS else "", done=done in ("label", "check"),
                rasa_url=settings.staff_rasa_url, jst=JST)  # fmt: skip


@router.post("/labels")
def label(
    request: Request,
    staff: Labeller,
    event_id: Annotated[int, Form()],
    intent: Annotated[str, Form(max_length=255)],
    csrf: Annotated[str, Form(max_length=64)],
    note: Annotated[str, Form(max_length=1000)] = "",
    back: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """Label one not-understood message; written to the access log (without the text)."""
    back = back if back.startswith("start=") else ""
    if not auth.csrf_ok(staff, csrf):
        return RedirectResponse(f"/staff/labels?{back}", status_code=303)
    chosen = None if intent == NEW_TOPIC else intent
    now = _now(request)
    with _db(request) as session, session.begin():
        try:
            labels.record(session, event_id, chosen, note, staff.user.username, now,
                          labels.label_intents())  # fmt: skip
        except labels.LabelRefused as refused:
            return RedirectResponse(f"/staff/labels?{back}&error={refused.reason}", status_code=303)
        target = f"event={event_id} intent={chosen or 'new_topic'}"
        auth.log_access(session, staff.user.username, "label", target, now)
    return RedirectResponse(f"/staff/labels?{back}&done=label", status_code=303)


@router.post("/labels/check")
def check(
    request: Request,
    staff: Labeller,
    csrf: Annotated[str, Form(max_length=64)],
    back: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """再確認: ask the running assistant how it reads every labelled message now.

    The texts are read, Rasa is asked with no transaction open (the consumer keeps writing),
    and the answers are stored in one short transaction. Rasa down or refusing: nothing is
    stored (the page keeps the last answers and says so); the attempt is logged either way.
    """
    back = back if back.startswith("start=") else ""
    if not auth.csrf_ok(staff, csrf):
        return RedirectResponse(f"/staff/labels?{back}", status_code=303)
    now = _now(request)
    outcome = "done=check"
    with _db(request) as session:
        texts = labels.to_check(session)
    try:
        answers = labels.ask(_settings(request), texts)
    except labels.RasaUnavailable as failure:
        answers, outcome, target = {}, "error=rasa", f"rasa_unavailable {failure}"
    with _db(request) as session, session.begin():
        if outcome == "done=check":
            target = f"checked={labels.store_answers(session, answers, now)}"
        auth.log_access(session, staff.user.username, "label_check", target, now)
    return RedirectResponse(f"/staff/labels?{back}&{outcome}", status_code=303)
