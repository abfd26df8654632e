"""The staff pages of the health notices (issue 17): draft, preview, approve, cancel, list.

An editor drafts (the form refuses personal-looking text, links outside NOTICE_LINK_DOMAINS and
times inside the quiet hours, storing nothing), another account (an approver or an admin)
approves, never the drafter; every step is in the access log. The clock is the app's (`Clock`).
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Iterator

import pyotp
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from consent_service.catalog.notice_topics import read_topics, topics_path
from consent_service.config import Settings
from consent_service.main import create_app
from consent_service.models import StaffAccessLog
from consent_service.notices.tables import (
    Notice,
    NoticeRecipient,
    NoticeSubscription,
    NoticeWebDelivery,
)
from consent_service.staff import auth
from tests.backend.conftest import START, Clock, subject

PASSWORD = "correct horse battery staple"
NOW = START  # Monday 2026-11-30 12:00 in Japan
TEXT = "インフルエンザの予防接種の予約受付が始まりました。詳しくは市のページをご覧ください。"
LINK = "https://www.city.funabashi.lg.jp/kenkou/yobou/index.html"
JST = dt.timezone(dt.timedelta(hours=9))


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
def console(settings: Settings, engine: Engine, clock: Clock) -> Iterator[TestClient]:
    configured = settings.model_copy(
        update={
            "staff_mask_with_ginza": False,
            "notice_link_domains": "www.city.funabashi.lg.jp, kyoiku.example.lg.jp",
            "staff_login_ip_attempts": 100,
        }
    )
    app = create_app(configured, engine=engine, clock=clock)
    with TestClient(app, base_url="https://testserver") as client:
        yield client


def log_in(client: TestClient, name: str, role: str) -> str:
    """Log a new account of `role` in (replacing the client's session); its CSRF token."""
    now = client.app.state.clock()
    with client.app.state.sessionmaker() as session, session.begin():
        secret = auth.create_user(session, name, PASSWORD, role, now, client.app.state.settings)
    form = client.get("/staff/login").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', form).group(1)
    answer = client.post(
        "/staff/login",
        data={"username": name, "password": PASSWORD, "code": pyotp.TOTP(secret).at(now),
              "csrf": csrf},
        follow_redirects=False,
    )  # fmt: skip
    assert answer.status_code == 303 and not answer.headers["location"].startswith("/staff/login")
    page = client.get("/staff/notices")
    assert page.status_code == 200, page.text
    return re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)


def form(csrf: str, **fields: str) -> dict[str, str]:
    return {"csrf": csrf, "topic_id": "vaccination", "text": TEXT, "link": "", "when": "now",
            "send_at": "", "action": "save", **fields}  # fmt: skip


def draft(client: TestClient, csrf: str, **fields: str) -> str:
    """Draft a notice that passes; its id."""
    answer = client.post("/staff/notices/new", data=form(csrf, **fields), follow_redirects=False)
    assert answer.status_code == 303, answer.text
    found = re.fullmatch(
        r"/staff/notices/([0-9a-f-]{36})\?done=drafted", answer.headers["location"]
    )
    assert found is not None
    return found.group(1)


def notices(client: TestClient) -> list[Notice]:
    with client.app.state.sessionmaker() as session:
        found = list(session.scalars(select(Notice)))
        session.expunge_all()
        return found


def notice(client: TestClient, notice_id: str) -> Notice:
    [found] = [n for n in notices(client) if n.notice_id == notice_id]
    return found


def access(client: TestClient, action: str) -> list[StaffAccessLog]:
    with client.app.state.sessionmaker() as session:
        return list(session.scalars(select(StaffAccessLog).where(StaffAccessLog.action == action)))


def subscribe(client: TestClient, topic: str, channel: str, n: int, *, sealed: bool = True) -> None:
    """`n` residents with an active subscription (LINE ones with a sealed recipient row)."""
    with client.app.state.sessionmaker() as session, session.begin():
        for _ in range(n):
            who = subject(uuid.uuid4().hex)
            session.add(
                NoticeSubscription(
                    subscription_id=str(uuid.uuid4()), subject_id=who, topic_id=topic,
                    channel=channel, status="active", created_at=NOW, receipt_id="N-ABCDEFGHJK",
                )
            )  # fmt: skip
            if channel == "line" and sealed:
                session.add(
                    NoticeRecipient(subject_id=who, sealed_user_id="sealed", updated_at=NOW)
                )


def stop_line(client: TestClient) -> str:
    return read_topics(topics_path(client.app.state.settings.consent_catalog_path)).stop_line_ja


# ---- drafting ----------------------------------------------------------------------------


def test_an_editor_drafts_a_notice_shown_as_the_line_bubble(console: TestClient) -> None:
    csrf = log_in(console, "henshu", "editor")
    blank = console.get("/staff/notices/new").text
    assert '<label for="notice-text">' in blank and 'id="notice-text"' in blank
    assert '<option value="vaccination"' in blank and "予防接種" in blank
    notice_id = draft(console, csrf, link=LINK)
    stored = notice(console, notice_id)
    assert (stored.status, stored.drafted_by, stored.topic_id) == ("draft", "henshu", "vaccination")
    assert stored.text_ja == TEXT and stored.link_url == LINK and stored.scheduled_at is None
    [logged] = access(console, "notice_drafted")
    assert (logged.username, logged.target) == ("henshu", notice_id)
    page = console.get(f"/staff/notices/{notice_id}").text
    bubble = re.search(r'<div class="line-bubble">(.*?)</div>', page, re.S).group(1)
    assert bubble == f"{TEXT}\n{LINK}\n\n{stop_line(console)}"
    assert "お知らせをやめる" in bubble
    # the drafter sees no approve button, only the note and the cancel button
    assert "/approve" not in page and f"/staff/notices/{notice_id}/cancel" in page


PERSONAL = [
    "山田さんの血圧は120mmHgでした。",  # a health value (masking)
    "体重65kgの方へ",  # masking
    "3人の方が申し込みました。",  # a count of people (units)
    "３人で来てください。",  # full-width
    "二人で来てください。",  # kanji numeral
    "2錠ずつ飲んでください。",  # a dose
    "電話は047-123-4567へ。",  # masking: a phone number
    "昭和30年5月1日生まれの方へ",  # a date of birth
    "佐藤花子と申します。",  # a name as residents give it
]


def test_personal_looking_text_is_refused_and_nothing_stored(console: TestClient) -> None:
    csrf = log_in(console, "henshu", "editor")
    for text in PERSONAL:
        answer = console.post("/staff/notices/new", data=form(csrf, text=text))
        assert answer.status_code == 200, text
        assert 'role="alert"' in answer.text and "何も保存していません" in answer.text, text
        assert "個人の情報に見える部分" in answer.text or "単位の付いた数" in answer.text, text
        assert 'aria-invalid="true"' in answer.text, text
    assert notices(console) == [] and access(console, "notice_drafted") == []


NAMES = [
    "山田太郎さん、12月10日に保健センターへお越しください。",
    "鈴木さんへ",
    "田中 花子 様",
    "佐藤花子様の予約を受け付けました。",
    "高橋氏が講演します。",
    "はなこちゃんの予防接種です。",
    "スミスさんへのお知らせです。",
    "伊藤殿",
    "けんたくん、健診の日です。",
]


@pytest.mark.parametrize("text", NAMES)
def test_a_name_with_an_honorific_is_refused(console: TestClient, text: str) -> None:
    csrf = log_in(console, "henshu", "editor")
    answer = console.post("/staff/notices/new", data=form(csrf, text=text))
    assert answer.status_code == 200
    assert "個人の情報に見える部分" in answer.text and "［伏せ字］" in answer.text
    assert notices(console) == []


COLLECTIVE = [
    "市民の皆さま、インフルエンザの予防接種が始まりました。",
    "皆さん、健診を受けましょう。",
    "みなさん、健診を受けましょう。",
    "皆様へのお知らせです。",
    "みなさまのご参加をお待ちしています。",
    "お客様へ",
    "保護者の皆様、お子さんの予防接種の時期です。",
    "赤ちゃんとお子さまの予防接種のご案内です。",
    "妊婦さんと高齢者の方へ。利用者様の声をご覧ください。",
    "おかげさまで、たくさんの方に受けていただきました。",
    "前回と同様に、様々な様式で申し込めます。氏名を書いてください。",
    "おばあちゃんやおじいさんと一緒に、ちゃんと手を洗いましょう。",
]


@pytest.mark.parametrize("text", COLLECTIVE)
def test_collective_forms_of_address_pass(console: TestClient, text: str) -> None:
    csrf = log_in(console, "henshu", "editor")
    draft(console, csrf, text=text)
    assert len(notices(console)) == 1


def test_the_units_and_the_masked_text_are_shown(console: TestClient) -> None:
    csrf = log_in(console, "henshu", "editor")
    units = console.post("/staff/notices/new", data=form(csrf, text="会場には3人まで入れます")).text
    assert "単位の付いた数（3人）" in units
    masked = console.post("/staff/notices/new", data=form(csrf, text="電話は047-123-4567へ")).text
    assert '<span class="masked">電話は［伏せ字］へ</span>' in masked


def test_text_without_personal_parts_passes(console: TestClient) -> None:
    csrf = log_in(console, "henshu", "editor")
    # one digit without a unit, a lone 一人ひとり, and 年1回 are not personal
    draft(console, csrf, text="年1回の健診で、一人ひとりの健康を守りましょう。")
    assert len(notices(console)) == 1


@pytest.mark.parametrize(
    "text",
    [
        "12月10日（水）10時30分から、保健センターで健診の相談会を開きます。",
        "受付は午前9時半から、9:30〜11:45です。",
        "令和8年度の予防接種のお知らせです。1月と2月に行います。",
    ],
)
def test_dates_and_times_of_a_schedule_pass(console: TestClient, text: str) -> None:
    csrf = log_in(console, "henshu", "editor")
    draft(console, csrf, text=text)
    assert len(notices(console)) == 1


def test_a_full_date_with_a_year_is_still_refused(console: TestClient) -> None:
    csrf = log_in(console, "henshu", "editor")
    answer = console.post("/staff/notices/new", data=form(csrf, text="2026年12月10日に開きます"))
    assert "個人の情報に見える部分" in answer.text
    assert notices(console) == []


def test_text_too_long_is_refused(console: TestClient) -> None:
    csrf = log_in(console, "henshu", "editor")
    answer = console.post("/staff/notices/new", data=form(csrf, text="あ" * 1001))
    assert "1000文字以内" in answer.text and notices(console) == []


LINKS = [
    (LINK, True),
    ("https://kyoiku.example.lg.jp/a", True),  # the second host of NOTICE_LINK_DOMAINS
    ("https://WWW.CITY.FUNABASHI.LG.JP/", True),
    ("http://www.city.funabashi.lg.jp/kenkou/", False),  # not https
    ("https://www.city.funabashi.lg.jp.evil.example/", False),
    ("https://evil.example/?u=www.city.funabashi.lg.jp", False),
    ("https://user:pw@www.city.funabashi.lg.jp/", False),
    ("https://www.city.funabashi.lg.jp:8443/", False),
    ("javascript:alert(1)", False),
    ("https://www.city.funabashi.lg.jp/a b", False),
]


def test_links_only_to_the_allowed_hosts_over_https(console: TestClient) -> None:
    csrf = log_in(console, "henshu", "editor")
    for link, allowed in LINKS:
        before = len(notices(console))
        answer = console.post(
            "/staff/notices/new", data=form(csrf, link=link), follow_redirects=False
        )
        if allowed:
            assert answer.status_code == 303, link
            assert len(notices(console)) == before + 1
        else:
            assert answer.status_code == 200 and "https で始まる" in answer.text, link
            assert 'role="alert"' in answer.text and len(notices(console)) == before, link
    assert sorted(n.link_url for n in notices(console)) == sorted(url for url, ok in LINKS if ok)


# ---- the time ----------------------------------------------------------------------------


def test_a_time_in_the_quiet_hours_is_refused_with_the_next_allowed_time(
    console: TestClient,
) -> None:
    csrf = log_in(console, "henshu", "editor")
    for local, suggested in [
        ("2026-11-30T22:30", "2026-12-01 08:00"),
        ("2026-12-01T07:59", "2026-12-01 08:00"),
        ("2026-12-01T21:00", "2026-12-02 08:00"),
    ]:
        answer = console.post("/staff/notices/new", data=form(csrf, when="at", send_at=local))
        assert answer.status_code == 200
        assert "夜間（21:00-08:00、日本時間）には送信できません" in answer.text, local
        assert f'<strong class="suggestion">{suggested}</strong>' in answer.text, local
    assert notices(console) == []


def test_a_time_outside_the_quiet_hours_is_stored_in_utc(console: TestClient) -> None:
    csrf = log_in(console, "henshu", "editor")
    notice_id = draft(console, csrf, when="at", send_at="2026-12-01T08:00")
    expected = dt.datetime(2026, 12, 1, 8, 0, tzinfo=JST)
    assert notice(console, notice_id).scheduled_at == expected


def test_a_past_time_is_refused(console: TestClient) -> None:
    csrf = log_in(console, "henshu", "editor")
    answer = console.post(
        "/staff/notices/new", data=form(csrf, when="at", send_at="2026-11-30T11:00")
    )
    assert "送信日時が過ぎています" in answer.text and notices(console) == []
    answer = console.post("/staff/notices/new", data=form(csrf, when="at", send_at="soon"))
    assert "送信日時を正しく入力してください" in answer.text and notices(console) == []


# ---- preview -----------------------------------------------------------------------------


def test_the_preview_shows_the_bubble_and_suppresses_small_counts(console: TestClient) -> None:
    subscribe(console, "vaccination", "line", 2)
    subscribe(console, "vaccination", "web", 1)
    subscribe(console, "vaccination", "line", 3, sealed=False)  # no recipient row: unreachable
    subscribe(console, "checkups", "line", 9)  # another topic
    csrf = log_in(console, "henshu", "editor")
    preview = console.post("/staff/notices/new", data=form(csrf, action="preview", link=LINK))
    assert preview.status_code == 200 and notices(console) == []  # nothing stored
    assert f"{TEXT}\n{LINK}\n\n{stop_line(console)}</div>" in preview.text
    assert "<strong>5人未満</strong>" in preview.text and "<strong>3人</strong>" not in preview.text
    subscribe(console, "vaccination", "rest", 1)
    subscribe(console, "vaccination", "line", 2)
    preview = console.post("/staff/notices/new", data=form(csrf, action="preview")).text
    assert "<strong>6人</strong>" in preview
    notice_id = draft(console, csrf)
    assert "<strong>6人</strong>" in console.get(f"/staff/notices/{notice_id}").text


def test_ended_subscriptions_are_not_counted(console: TestClient) -> None:
    subscribe(console, "disaster", "web", 7)
    with console.app.state.sessionmaker() as session, session.begin():
        for sub in list(session.scalars(select(NoticeSubscription)))[:2]:
            sub.status, sub.ended_at, sub.end_reason = "ended", NOW, "resident"
    csrf = log_in(console, "henshu", "editor")
    preview = console.post(
        "/staff/notices/new", data=form(csrf, topic_id="disaster", action="preview")
    )
    assert "<strong>5人</strong>" in preview.text


def test_web_subscriptions_past_their_days_are_not_counted(
    console: TestClient, clock: Clock
) -> None:
    # A web/rest subscription runs out after NOTICE_WEB_SUBSCRIPTION_DAYS (30), even before
    # `retention` ends it in the table; a LINE one does not.
    subscribe(console, "disaster", "web", 4)
    subscribe(console, "disaster", "rest", 3)
    subscribe(console, "disaster", "line", 6)
    clock.advance(days=30, hours=1)
    csrf = log_in(console, "henshu", "editor")
    preview = console.post(
        "/staff/notices/new", data=form(csrf, topic_id="disaster", action="preview")
    )
    assert "<strong>6人</strong>" in preview.text
    notice_id = draft(console, csrf, topic_id="disaster")
    assert "<strong>6人</strong>" in console.get(f"/staff/notices/{notice_id}").text


# ---- approval and cancellation -----------------------------------------------------------


def test_another_account_approves_and_the_drafter_cannot(console: TestClient) -> None:
    csrf = log_in(console, "kanri", "admin")  # an admin may draft and approve, not their own
    notice_id = draft(console, csrf)
    own = console.post(f"/staff/notices/{notice_id}/approve", data={"csrf": csrf})
    assert own.status_code == 403 and "自分で下書きしたお知らせは承認できません" in own.text
    assert notice(console, notice_id).status == "draft"
    csrf = log_in(console, "shonin", "approver")
    page = console.get(f"/staff/notices/{notice_id}").text
    assert f'action="/staff/notices/{notice_id}/approve"' in page
    forged = console.post(f"/staff/notices/{notice_id}/approve", data={"csrf": "guessed"})
    assert forged.status_code == 200 and notice(console, notice_id).status == "draft"
    answer = console.post(
        f"/staff/notices/{notice_id}/approve", data={"csrf": csrf}, follow_redirects=False
    )
    assert (
        answer.status_code == 303 and answer.headers["location"] == "/staff/notices?done=approved"
    )
    approved = notice(console, notice_id)
    assert (approved.status, approved.approved_by, approved.drafted_by) == (
        "approved", "shonin", "kanri",
    )  # fmt: skip
    assert approved.approved_at == NOW and approved.scheduled_at == NOW  # "now", by day
    [logged] = access(console, "notice_approved")
    assert (logged.username, logged.target) == ("shonin", notice_id)
    again = console.post(
        f"/staff/notices/{notice_id}/approve", data={"csrf": csrf}, follow_redirects=False
    )
    assert again.headers["location"] == "/staff/notices?error=state"
    assert len(access(console, "notice_approved")) == 1


def test_approving_now_in_the_quiet_hours_schedules_the_morning(
    console: TestClient, clock: Clock
) -> None:
    csrf = log_in(console, "henshu", "editor")
    notice_id = draft(console, csrf)
    clock.advance(hours=10)  # 22:00 in Japan
    csrf = log_in(console, "shonin", "approver")
    console.post(f"/staff/notices/{notice_id}/approve", data={"csrf": csrf})
    assert notice(console, notice_id).scheduled_at == dt.datetime(2026, 12, 1, 8, 0, tzinfo=JST)


@pytest.mark.parametrize("role", ["editor", "viewer"])
def test_only_approvers_and_admins_approve(console: TestClient, role: str) -> None:
    notice_id = draft(console, log_in(console, "henshu", "editor"))
    csrf = log_in(console, "other", role)
    assert "/approve" not in console.get(f"/staff/notices/{notice_id}").text
    answer = console.post(f"/staff/notices/{notice_id}/approve", data={"csrf": csrf})
    assert answer.status_code == 403 and "承認できるのは承認者と管理者です" in answer.text
    assert notice(console, notice_id).status == "draft" and access(console, "notice_approved") == []


@pytest.mark.parametrize("role", ["viewer", "approver"])
def test_viewers_and_approvers_cannot_draft(console: TestClient, role: str) -> None:
    csrf = log_in(console, "etsuran", role)
    assert "/staff/notices/new" not in console.get("/staff/notices").text
    assert console.get("/staff/notices/new").status_code == 403
    answer = console.post("/staff/notices/new", data=form(csrf))
    assert answer.status_code == 403 and "下書きできるのは編集者と管理者です" in answer.text
    assert notices(console) == [] and access(console, "notice_drafted") == []


def test_counter_staff_see_no_notices(console: TestClient) -> None:
    with console.app.state.sessionmaker() as session, session.begin():
        secret = auth.create_user(session, "madoguchi", PASSWORD, "counter", NOW,
                                  console.app.state.settings)  # fmt: skip
    login = console.get("/staff/login").text
    console.post(
        "/staff/login",
        data={"username": "madoguchi", "password": PASSWORD, "code": pyotp.TOTP(secret).at(NOW),
              "csrf": re.search(r'name="csrf" value="([^"]+)"', login).group(1)},
    )  # fmt: skip
    answer = console.get("/staff/notices", follow_redirects=False)
    assert answer.status_code == 302 and answer.headers["location"] == "/staff/counter"


def test_no_notice_page_without_a_session(console: TestClient) -> None:
    for path in ("/staff/notices", "/staff/notices/new"):
        answer = console.get(path, follow_redirects=False)
        assert answer.status_code == 302 and answer.headers["location"] == "/staff/login"


def test_the_drafter_cancels_and_a_cancelled_notice_is_not_approved(console: TestClient) -> None:
    csrf = log_in(console, "henshu", "editor")
    notice_id = draft(console, csrf)
    answer = console.post(
        f"/staff/notices/{notice_id}/cancel", data={"csrf": csrf}, follow_redirects=False
    )
    assert answer.headers["location"] == "/staff/notices?done=cancelled"
    assert notice(console, notice_id).status == "cancelled"
    [logged] = access(console, "notice_cancelled")
    assert (logged.username, logged.target) == ("henshu", notice_id)
    csrf = log_in(console, "shonin", "approver")
    answer = console.post(
        f"/staff/notices/{notice_id}/approve", data={"csrf": csrf}, follow_redirects=False
    )
    assert answer.headers["location"] == "/staff/notices?error=state"
    assert notice(console, notice_id).status == "cancelled"


def test_an_approver_cancels_an_approved_notice_but_not_one_being_sent(console: TestClient) -> None:
    first = draft(console, log_in(console, "henshu", "editor"))
    second = draft(console, log_in(console, "henshu2", "editor"))
    csrf = log_in(console, "shonin", "approver")
    for notice_id in (first, second):
        console.post(f"/staff/notices/{notice_id}/approve", data={"csrf": csrf})
    console.post(f"/staff/notices/{first}/cancel", data={"csrf": csrf})
    assert notice(console, first).status == "cancelled"
    with console.app.state.sessionmaker() as session, session.begin():
        session.get(Notice, second).status = "sending"  # the sender has begun
    answer = console.post(f"/staff/notices/{second}/cancel", data={"csrf": csrf},
                          follow_redirects=False)  # fmt: skip
    assert answer.headers["location"] == "/staff/notices?error=state"
    assert notice(console, second).status == "sending"
    assert [e.target for e in access(console, "notice_cancelled")] == [first]


def test_another_editor_or_a_viewer_cannot_cancel(console: TestClient) -> None:
    notice_id = draft(console, log_in(console, "henshu", "editor"))
    for name, role in (("henshu2", "editor"), ("etsuran", "viewer")):
        csrf = log_in(console, name, role)
        answer = console.post(f"/staff/notices/{notice_id}/cancel", data={"csrf": csrf})
        assert answer.status_code == 403
    assert (
        notice(console, notice_id).status == "draft" and access(console, "notice_cancelled") == []
    )


# ---- the list ----------------------------------------------------------------------------


def test_the_list_shows_notices_with_their_counts(console: TestClient) -> None:
    def sent(text: str, planned: int, web: int) -> str:
        notice_id = str(uuid.uuid4())
        with console.app.state.sessionmaker() as session, session.begin():
            session.add(
                Notice(notice_id=notice_id, topic_id="checkups", text_ja=text, status="sent",
                       drafted_by="henshu", drafted_at=NOW - dt.timedelta(days=2),
                       approved_by="shonin", approved_at=NOW - dt.timedelta(days=2),
                       scheduled_at=NOW - dt.timedelta(days=1), sent_at=NOW - dt.timedelta(days=1),
                       recipients_planned=planned, recipients_sent=planned)
            )  # fmt: skip
            session.flush()
            for _ in range(web):
                session.add(NoticeWebDelivery(notice_id=notice_id, subject_id=uuid.uuid4().hex,
                                              shown_at=NOW))  # fmt: skip
        return notice_id

    big = sent("健診の受付期間のお知らせです。", 120, 7)
    small = sent("保健指導の日程のお知らせです。", 3, 2)
    pending = draft(console, log_in(console, "henshu", "editor"))
    log_in(console, "etsuran", "viewer")
    page = console.get("/staff/notices").text
    assert 'aria-current="page">お知らせ</a>' in page

    def row(notice_id: str) -> str:
        return re.search(rf'<tr data-notice="{notice_id}">(.*?)</tr>', page, re.S).group(1)

    assert "健診・保健指導" in row(big) and "送信済み" in row(big)
    assert '<td class="planned">120人</td>' in row(big)
    assert '<td class="sent">120人</td>' in row(big)
    assert '<td class="web">7人</td>' in row(big) and "2026-11-29 12:00" in row(big)
    assert '<td class="planned">5人未満</td>' in row(small)
    assert '<td class="web">5人未満</td>' in row(small)
    assert "承認待ち" in row(pending) and "承認後すぐ" in row(pending)
    assert page.index(pending) < page.index(big)  # newest first


@pytest.mark.parametrize(
    ("refusal", "said"),
    [
        ("monthly_limit", "月の上限"),
        ("too_late", "時間がたちすぎた"),
        ("line_rejected", "LINEが受け付けなかった"),
    ],
)
def test_why_a_notice_was_not_sent_is_said_in_japanese(
    console: TestClient, refusal: str, said: str
) -> None:
    notice_id = str(uuid.uuid4())
    with console.app.state.sessionmaker() as session, session.begin():
        session.add(
            Notice(notice_id=notice_id, topic_id="checkups", text_ja="健診のお知らせです。",
                   status="refused", refusal=refusal, drafted_by="henshu",
                   drafted_at=NOW - dt.timedelta(days=2), approved_by="shonin",
                   approved_at=NOW - dt.timedelta(days=2))
        )  # fmt: skip
    log_in(console, "etsuran", "viewer")
    for page in (
        console.get("/staff/notices").text,
        console.get(f"/staff/notices/{notice_id}").text,
    ):
        assert said in page and refusal not in page.replace(f'data-notice="{notice_id}"', "")
