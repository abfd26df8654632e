"""The `/staff/notices` pages: health notices drafted, previewed, approved and cancelled (issue 17).

Editors and admins draft a notice (topic, text, an optional link to an allow-listed city page,
send now or at a Japan date and time outside the quiet hours); the form refuses, storing
nothing, text that looks personal (anything the console's masking would change, and numbers
with units such as 120mmHg, 65kg, 3人). A draft is shown as the LINE bubble residents will see
(the stop line appended) with the number of residents it would reach now, 1 to 4 shown as
"5人未満". Another account, an approver or an admin, approves it (never the drafter: four eyes,
also a constraint of the table); the drafter, approvers and admins may cancel it while it is a
draft or approved. The sender (`python -m consent_service send-notices`) sends approved notices
when due. Drafting, approving and cancelling are written to the access log. The pages never
read a LINE user id: the recipients are counted, never listed.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
import uuid
from dataclasses import dataclass, field
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from consent_service.catalog.notice_topics import read_topics, topics_path
from consent_service.config import Settings
from consent_service.models import StaffSession
from consent_service.notices.quiet_hours import in_quiet_hours, next_allowed
from consent_service.notices.subscriptions import running
from consent_service.notices.tables import (
    Notice,
    NoticeRecipient,
    NoticeSubscription,
    NoticeTopic,
    NoticeWebDelivery,
)
from consent_service.staff import auth
from consent_service.staff.masking import MARK, NUMBER_MARK, SMALL, mask
from consent_service.staff.tracker import JST
from consent_service.staff.views import Staff, _db, _now, _settings, page

# Included by `views.router` (prefix /staff), which this module's dependencies come from.
router: APIRouter = APIRouter(include_in_schema=False)
DRAFTERS = ("editor", "admin")
APPROVERS = ("approver", "admin")
# LINE's text limit is 5,000 characters; the link and the stop line are appended to the text.
TEXT_MAX = 1000
LINK_MAX = 500
OPEN = ("draft", "approved")  # what may still be approved (draft) or cancelled (both)
# Numbers with a unit a notice has no reason to carry: measurements, doses, ages, counts of
# people (120mmHg, 65kg, 3人, 2錠). Calendar units (年, 月, 日, 時, 分, 回) are not in the list.
# Digits after NFKC, or a kanji numeral run (a lone 一 is left: 一人ひとり, 一名様 are idioms).
_UNIT_NUMBER = re.compile(
    r"(?:\d+(?:[.,]\d+)*|[二三四五六七八九十百千][〇一二三四五六七八九十百千]*|[〇一][〇一二三四五六七八九十百千]+)"
    r"\s*(?:mmHg|mmol|mg/dl|kcal|bpm|kg|mg|ml|cc|cm|mm|g|l|℃|°C|度|%|歳|才|人|名|錠|単位|歩|キロ|グラム|センチ|ミリ)"
    r"(?![a-z])",
    re.IGNORECASE,
)
# Dates and times a notice needs (12月10日（水）, 10時30分, 9:30, 令和8年度): a schedule, not a
# resident's detail, so taken out before the masking looks. A full date with a year (昭和30年
# 5月1日, 2026/12/10) stays refused: it reads as a date of birth.
_CALENDAR = re.compile(
    r"(?<![\d年./-])\d{1,2}\s*月\s*\d{1,2}\s*日(?:\s*[（(][月火水木金土日][）)])?"
    r"|(?:午前|午後)?\s*\d{1,2}\s*時(?:\s*\d{1,2}\s*分|半)?"
    r"|(?<![\d:])\d{1,2}:\d{2}(?![\d:])"
    r"|(?:令和|平成)\s*\d{1,2}\s*年度"
    r"|(?<![\d年./-])\d{1,2}\s*月(?!\s*\d)"
)
# Names with an honorific (山田太郎さん, 鈴木さんへ, 田中 花子 様, スミスさん): a
# notice addresses everyone, never a person. A kanji, katakana or hiragana run right
# before さん, 様, さま, 殿, 氏, くん or ちゃん, where the honorific ends the word (a
# particle, punctuation or the end follows: 様々, 様式, 氏名 are words). Hiragana runs
# only after a boundary (たくさん inside a sentence is a word). The console's masking
# finds names with GiNZA only in `consume` (the web app never loads the model), so this
# pattern is the form's name check.
_HONORIFIC = r"(?:さん|さま|様|殿|氏|くん|ちゃん)"
_BOUNDARY = r"\s、。,.!?！？「」『』（）()・…:："
_WORD_END = rf"(?=[{_BOUNDARY}のへにはがをともやでかよまねだ宛方宅]|$)"
_KANJI = r"[一-龥々〆ヵヶ]"
_NAME_HONORIFIC = re.compile(
    rf"(?<!{_KANJI})(?P<k>{_KANJI}{{1,8}}(?:[ 　]+{_KANJI}{{1,8}})?)[ 　]*"
    rf"{_HONORIFIC}{_WORD_END}"
    rf"|(?<![ァ-ヴー])(?P<c>[ァ-ヴー]{{2,12}}(?:[ 　・]+[ァ-ヴー]{{2,12}})?)[ 　]*"
    rf"{_HONORIFIC}{_WORD_END}"
    rf"|(?:^|(?<=[{_BOUNDARY}]))(?P<h>[ぁ-ゖー]{{1,8}}?){_HONORIFIC}{_WORD_END}"
)
# Who a notice may address with an honorific: everyone (皆さま, みなさん, お客様,
# 市民の皆さま), groups (保護者の皆様, 利用者様, 妊婦さん, 赤ちゃん, お子さん), and set
# phrases (おかげさまで, 同様に). The run before the honorific is allowed when it is one
# of these, or (kanji) ends with a suffix of a group of people (者, 民, 員, ...).
_COLLECTIVE_EXACT = frozenset(
    {
        "子", "家族", "本人", "母", "父", "奥", "兄", "姉", "弟", "妹", "祖父", "祖母",
        "孫", "娘", "息子", "嬢", "坊", "赤", "主人", "両親", "夫婦", "近所", "大家",
        "先生", "受験生", "妊婦", "乳児", "幼児", "乳幼児", "園児", "新生児", "神", "仏",
        "王", "苦労", "馳走", "世話", "陰", "愁傷", "ママ", "パパ", "プレママ", "プレパパ",
        "ユーザー", "ゲスト", "メンバー", "オーナー", "ファミリー", "サンタ", "みな",
        "みなみな", "たく", "おじい", "おばあ", "じい", "ばあ", "おかあ", "おとう", "かあ",
        "とう", "おにい", "おねえ", "にい", "ねえ", "あか", "おこ", "おまご", "おきゃく",
        "おかげ", "ごちそう", "ごくろう", "おつかれ", "おたがい", "おいしゃ", "おまわり",
    }
)  # fmt: skip
_COLLECTIVE_SUFFIX = (
    "皆", "皆々", "客", "者", "民", "員", "師", "士", "婦", "長", "学生", "同", "模", "仕",
    "多", "異", "一",
)  # fmt: skip
# Why the sender did not send a notice (notices.refusal), as the pages say it.
REFUSAL_JA = {
    "monthly_limit": "このテーマの月の上限に達したため",
    "too_late": "送信予定から時間がたちすぎたため",
    "line_rejected": "LINEが受け付けなかったため",
}
STATUS_JA = {
    "draft": "承認待ち",
    "approved": "承認済み（送信予定）",
    "sending": "送信中",
    "sent": "送信済み",
    "cancelled": "取り消し",
    "refused": "送信せず",
}


def _forbidden(request: Request, staff: StaffSession, reason: str) -> Response:
    """The 403 page: the action is not this account's to take (the page says why)."""
    response = page(request, "notice_denied.html", staff, view="notices", reason=reason)
    response.status_code = 403
    return response


# ---- the catalogue ----------------------------------------------


def stop_line(settings: Settings) -> str:
    """How to stop, appended by the sender to every notice (`stop_line_ja` of the topics file)."""
    return read_topics(topics_path(settings.consent_catalog_path)).stop_line_ja


# ---- checking a draft --------------------------------------------------------------------


def personal_parts(text: str) -> tuple[str | None, list[str]]:
    """What in `text` looks personal.

    Args:
        text: A notice's text as typed.

    Returns:
        (the text as the console's masking shows it when masking would change it, with the
        dates and times it may carry shown as 〔日時〕, else None; the numbers with units found).
    """
    normal = unicodedata.normalize("NFKC", text)
    # mask() normalises first (NFKC), so a marker in the output is always one it put there.
    masked = _mask_names(mask(_CALENDAR.sub("〔日時〕", normal)))
    changed = masked if MARK in masked or NUMBER_MARK in masked else None
    units = [m.group() for m in _UNIT_NUMBER.finditer(normal)]
    return changed, units


def _collective(run: str) -> bool:
    """Whether the run before an honorific addresses everyone or a group, not a person."""
    last = re.split(r"[ 　・]+", run.strip())[-1]
    if last in _COLLECTIVE_EXACT:
        return True
    return bool(re.fullmatch(f"{_KANJI}+", last)) and last.endswith(_COLLECTIVE_SUFFIX)


def name_spans(text: str) -> list[tuple[int, int]]:
    """The names in `text` given with an honorific (山田太郎さん, 田中 花子 様): their spans.

    Args:
        text: A notice's text (NFKC).

    Returns:
        (start, end) of each name, without its honorific; collective forms are left out.
    """
    spans = []
    for match in _NAME_HONORIFIC.finditer(text):
        group = next(g for g in ("k", "c", "h") if match.group(g) is not None)
        if not _collective(match.group(group)):
            spans.append(match.span(group))
    return spans


def _mask_names(text: str) -> str:
    out, last = [], 0
    for start, end in name_spans(text):
        out += [text[last:start], MARK]
        last = end
    return "".join(out) + text[last:]


def link_problem(link: str, domains: frozenset[str]) -> bool:
    """Whether a link may not be sent: not https, a host not allowed, credentials or a port."""
    if len(link) > LINK_MAX or any(c.isspace() or unicodedata.category(c)[0] == "C" for c in link):
        return True
    try:
        parts = urlsplit(link)
        port = parts.port
    except ValueError:
        return True
    host = (parts.hostname or "").rstrip(".")
    return (
        parts.scheme != "https"
        or host not in domains
        or parts.username is not None
        or parts.password is not None
        or port not in (None, 443)
    )


@dataclass
class Draft:
    """The form as typed, and what is wrong with it (error codes, worded in notice_new.html)."""

    topic_id: str = ""
    text: str = ""
    link: str = ""
    when: str = "now"
    send_at: str = ""
    errors: list[str] = field(default_factory=list)
    masked: str | None = None
    units: list[str] = field(default_factory=list)
    suggestion: dt.datetime | None = None
    scheduled_at: dt.datetime | None = None


def check(draft: Draft, topics: set[str], settings: Settings, now: dt.datetime) -> Draft:
    """Fill `draft.errors` (and what the form shows about them); set `draft.scheduled_at`."""
    if draft.topic_id not in topics:
        draft.errors.append("topic")
    if not draft.text.strip():
        draft.errors.append("text_empty")
    elif len(draft.text) > TEXT_MAX:
        draft.errors.append("text_long")
    else:
        draft.masked, draft.units = personal_parts(draft.text)
        if draft.masked is not None:
            draft.errors.append("personal")
        if draft.units:
            draft.errors.append("units")
    if draft.link and link_problem(draft.link, settings.notice_link_hosts()):
        draft.errors.append("link")
    if draft.when == "at":
        try:
            local = dt.datetime.fromisoformat(draft.send_at)
        except ValueError:
            draft.errors.append("time_format")
            return draft
        when = local.replace(tzinfo=JST) if local.tzinfo is None else local
        when = when.astimezone(dt.UTC)
        if when <= now:
            draft.errors.append("time_past")
        elif when > now + dt.timedelta(days=366):
            draft.errors.append("time_far")
        elif in_quiet_hours(when, settings.notice_quiet_hours):
            draft.errors.append("quiet")
            draft.suggestion = next_allowed(when, settings.notice_quiet_hours)
        else:
            draft.scheduled_at = when
    elif draft.when != "now":
        draft.errors.append("time_format")
    return draft


def send_time(now: dt.datetime, spec: str) -> dt.datetime:
    """When a notice to send "now" goes: now, or the end of the quiet hours it is in."""
    return next_allowed(now, spec) if in_quiet_hours(now, spec) else now


# ---- reading -----------------------------------------------------------------------------


def topic_rows(session: Session) -> list[NoticeTopic]:
    """The topics, in the catalogue's order."""
    query = select(NoticeTopic).order_by(NoticeTopic.sort_order, NoticeTopic.topic_id)
    return list(session.scalars(query))


def recipients_now(session: Session, topic_id: str, now: dt.datetime, web_days: int) -> int:
    """Residents a notice of the topic would reach now.

    LINE subscribers the sender can reach (an active LINE subscription and a sealed recipient
    row) plus web chat and REST subscribers (they see it at their next visit) whose
    subscription has not run out (NOTICE_WEB_SUBSCRIPTION_DAYS). A subject has at most one
    active subscription per topic, so subscriptions are residents.
    """
    active = (NoticeSubscription.topic_id == topic_id) & running(now, web_days)
    line = session.scalar(
        select(func.count())
        .select_from(NoticeSubscription)
        .join(NoticeRecipient, NoticeRecipient.subject_id == NoticeSubscription.subject_id)
        .where(active, NoticeSubscription.channel == "line")
    )
    web = session.scalar(
        select(func.count())
        .select_from(NoticeSubscription)
        .where(active, NoticeSubscription.channel.in_(("web", "rest")))
    )
    return int(line or 0) + int(web or 0)


def people(count: int | None) -> str:
    """A number of residents as staff see it: 1 to 4 as "5人未満" (no count: "—")."""
    if count is None:
        return "—"
    return f"{SMALL}人未満" if 0 < count < SMALL else f"{count}人"


def bubble(text: str, link: str | None, stop: str) -> str:
    """The text of the LINE message, as the sender composes it."""
    return text + (f"\n{link}" if link else "") + "\n\n" + stop


def jst(when: dt.datetime | None) -> str:
    """A time in Japan, for the pages ("—" for none)."""
    return "—" if when is None else when.astimezone(JST).strftime("%Y-%m-%d %H:%M")


def may_approve(staff: StaffSession, notice: Notice) -> bool:
    """Approvers and admins, not the notice's drafter, while it is a draft."""
    return (
        staff.user.role in APPROVERS
        and notice.drafted_by != staff.user.username
        and notice.status == "draft"
    )


def may_cancel(staff: StaffSession, notice: Notice) -> bool:
    """The drafter, approvers and admins, while it is a draft or approved."""
    allowed = staff.user.role in APPROVERS or notice.drafted_by == staff.user.username
    return allowed and notice.status in OPEN


# ---- the pages ---------------------------------------------------------------------------


@router.get("/notices", response_class=HTMLResponse)
def notices_page(request: Request, staff: Staff, done: str = "", error: str = "") -> Response:
    """Every notice, newest first, with its counts (viewers and up)."""
    with _db(request) as session:
        titles = {t.topic_id: t.title_ja for t in topic_rows(session)}
        rows = list(session.scalars(select(Notice).order_by(Notice.drafted_at.desc()).limit(200)))
        shown_on_web = session.execute(
            select(NoticeWebDelivery.notice_id, func.count())
            .where(NoticeWebDelivery.notice_id.in_([n.notice_id for n in rows]))
            .group_by(NoticeWebDelivery.notice_id)
        )
        web = {notice_id: int(count) for notice_id, count in shown_on_web}
        session.expunge_all()
    return page(request, "notices.html", staff, view="notices", notices=rows, titles=titles,
                web=web, people=people, jst=jst, status_ja=STATUS_JA, refusal_ja=REFUSAL_JA,
                can_draft=staff.user.role in DRAFTERS,
                quiet=_settings(request).notice_quiet_hours,
                done=done if done in ("approved", "cancelled") else "",
                error=error if error in ("state",) else "")  # fmt: skip


def _form(request: Request, staff: StaffSession, draft: Draft, **context: Any) -> Response:
    settings = _settings(request)
    with _db(request) as session:
        topics = topic_rows(session)
        session.expunge_all()
    context.setdefault("preview", None)
    return page(request, "notice_new.html", staff, view="notices", draft=draft, topics=topics,
                text_max=TEXT_MAX, domains=sorted(settings.notice_link_hosts()),
                quiet=settings.notice_quiet_hours, jst=jst, **context)  # fmt: skip


@router.get("/notices/new", response_class=HTMLResponse)
def new_notice(request: Request, staff: Staff) -> Response:
    """The drafting form (editors and admins)."""
    if staff.user.role not in DRAFTERS:
        return _forbidden(request, staff, "draft")
    return _form(request, staff, Draft())


@router.post("/notices/new", response_class=HTMLResponse)
def draft_notice(
    request: Request,
    staff: Staff,
    csrf: Annotated[str, Form(max_length=64)],
    topic_id: Annotated[str, Form(max_length=64)] = "",
    text: Annotated[str, Form(max_length=TEXT_MAX * 2)] = "",
    link: Annotated[str, Form(max_length=LINK_MAX * 2)] = "",
    when: Annotated[str, Form(max_length=8)] = "now",
    send_at: Annotated[str, Form(max_length=32)] = "",
    action: Annotated[str, Form(max_length=16)] = "save",
) -> Response:
    """Check a draft; preview it (nothing stored) or store it and show its page.

    A draft that looks personal, links outside NOTICE_LINK_DOMAINS or is timed inside the quiet
    hours comes back with the errors (and the next allowed time) and is not stored.
    """
    if staff.user.role not in DRAFTERS:
        return _forbidden(request, staff, "draft")
    if not auth.csrf_ok(staff, csrf):
        return RedirectResponse("/staff/notices/new", status_code=303)
    settings = _settings(request)
    now = _now(request)
    text = text.replace("\r\n", "\n").replace("\r", "\n").strip()
    draft = Draft(topic_id=topic_id, text=text, link=link.strip(), when=when, send_at=send_at)
    with _db(request) as session:
        topics = {t.topic_id for t in topic_rows(session)}
        check(draft, topics, settings, now)
        days = settings.notice_web_subscription_days
        count = recipients_now(session, topic_id, now, days) if not draft.errors else None
    if draft.errors or action == "preview":
        preview = None
        if not draft.errors:
            preview = {"bubble": bubble(draft.text, draft.link or None, stop_line(settings)),
                       "recipients": people(count)}  # fmt: skip
        return _form(request, staff, draft, preview=preview)
    notice_id = str(uuid.uuid4())
    with _db(request) as session, session.begin():
        session.add(
            Notice(
                notice_id=notice_id,
                topic_id=draft.topic_id,
                text_ja=draft.text,
                link_url=draft.link or None,
                status="draft",
                drafted_by=staff.user.username,
                drafted_at=now,
                scheduled_at=draft.scheduled_at,
                recipients_sent=0,
            )
        )
        auth.log_access(session, staff.user.username, "notice_drafted", notice_id, now)
    return RedirectResponse(f"/staff/notices/{notice_id}?done=drafted", status_code=303)


def _notice(request: Request, notice_id: str) -> Notice | None:
    with _db(request) as session:
        found: Notice | None = session.get(Notice, notice_id[:36])
        if found is not None:
            session.expunge(found)
        return found


@router.get("/notices/{notice_id}", response_class=HTMLResponse)
def notice_page(request: Request, staff: Staff, notice_id: str, done: str = "") -> Response:
    """One notice as the LINE bubble, the residents it would reach now, approve and cancel."""
    notice = _notice(request, notice_id)
    if notice is None:
        response = page(request, "notice_detail.html", staff, view="notices", notice=None)
        response.status_code = 404
        return response
    with _db(request) as session:
        topic = session.get(NoticeTopic, notice.topic_id)
        title = topic.title_ja if topic else notice.topic_id
        days = _settings(request).notice_web_subscription_days
        count = recipients_now(session, notice.topic_id, _now(request), days)
        web = session.scalar(
            select(func.count())
            .select_from(NoticeWebDelivery)
            .where(NoticeWebDelivery.notice_id == notice.notice_id)
        )
    preview = {"bubble": bubble(notice.text_ja, notice.link_url, stop_line(_settings(request))),
               "recipients": people(count)}  # fmt: skip
    return page(request, "notice_detail.html", staff, view="notices", notice=notice,
                title=title, preview=preview, web=people(int(web or 0)), people=people, jst=jst,
                status_ja=STATUS_JA, refusal_ja=REFUSAL_JA, can_approve=may_approve(staff, notice),
                can_cancel=may_cancel(staff, notice),
                done=done if done in ("drafted",) else "")  # fmt: skip


@router.post("/notices/{notice_id}/approve")
def approve(
    request: Request, staff: Staff, notice_id: str, csrf: Annotated[str, Form(max_length=64)]
) -> Response:
    """Approve a draft (approvers and admins; never its drafter: the 403 page).

    One conditional UPDATE (still a draft, not drafted by this account), so two approvals, or an
    approval and a cancellation, cannot both happen. A notice to send "now" is scheduled now, or
    at the end of the quiet hours when they have begun.
    """
    notice = _notice(request, notice_id)
    if notice is None:
        return RedirectResponse("/staff/notices", status_code=303)
    if staff.user.role not in APPROVERS:
        return _forbidden(request, staff, "approve_role")
    if notice.drafted_by == staff.user.username:
        return _forbidden(request, staff, "approve_own")
    if not auth.csrf_ok(staff, csrf):
        return RedirectResponse(f"/staff/notices/{notice.notice_id}", status_code=303)
    now = _now(request)
    spec = _settings(request).notice_quiet_hours
    earliest = send_time(now, spec)
    scheduled = earliest if notice.scheduled_at is None else max(notice.scheduled_at, earliest)
    with _db(request) as session, session.begin():
        changed = session.execute(
            update(Notice)
            .where(
                Notice.notice_id == notice.notice_id,
                Notice.status == "draft",
                Notice.drafted_by != staff.user.username,
            )
            .values(
                status="approved",
                approved_by=staff.user.username,
                approved_at=now,
                scheduled_at=scheduled,
            )
            .execution_options(synchronize_session=False)
        )
        if changed.rowcount != 1:
            return RedirectResponse("/staff/notices?error=state", status_code=303)
        auth.log_access(session, staff.user.username, "notice_approved", notice.notice_id, now)
    return RedirectResponse("/staff/notices?done=approved", status_code=303)


@router.post("/notices/{notice_id}/cancel")
def cancel(
    request: Request, staff: Staff, notice_id: str, csrf: Annotated[str, Form(max_length=64)]
) -> Response:
    """Cancel a draft or an approved notice not yet being sent (its drafter, approvers, admins).

    A conditional UPDATE: once the sender has begun (status sending), nothing changes.
    """
    notice = _notice(request, notice_id)
    if notice is None:
        return RedirectResponse("/staff/notices", status_code=303)
    if staff.user.role not in APPROVERS and notice.drafted_by != staff.user.username:
        return _forbidden(request, staff, "cancel")
    if not auth.csrf_ok(staff, csrf):
        return RedirectResponse(f"/staff/notices/{notice.notice_id}", status_code=303)
    now = _now(request)
    with _db(request) as session, session.begin():
        changed = session.execute(
            update(Notice)
            .where(Notice.notice_id == notice.notice_id, Notice.status.in_(OPEN))
            .values(status="cancelled")
            .execution_options(synchronize_session=False)
        )
        if changed.rowcount != 1:
            return RedirectResponse("/staff/notices?error=state", status_code=303)
        auth.log_access(session, staff.user.username, "notice_cancelled", notice.notice_id, now)
    return RedirectResponse("/staff/notices?done=cancelled", status_code=303)
