"""The staff console: exact metrics on a generated tracker store, masking, and access control.

The generated store's events reach the console as in production: published by Rasa's event
broker, stored by the consent service's consumer (`tests.staff_tracker.feed`).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path

import pyotp
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from consent_service.config import Settings
from consent_service.db import make_engine, make_sessionmaker
from consent_service.main import create_app, prepare_database
from consent_service.models import StaffAccessLog
from consent_service.staff import auth, metrics
from consent_service.staff.masking import mask, suppress
from consent_service.staff.tracker import conversations, read_events
from tests.backend.conftest import Clock
from tests.staff_tracker import DAY1, DAY2, EXPECTED, UNANSWERED, build, feed

PASSWORD = "correct horse battery staple"
# Tuesday 24 November 2026, noon in Japan: the week of DAY1 and DAY2 (16-22 November) is published.
NOW = dt.datetime(2026, 11, 24, 3, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def tracker_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The generated tracker store (Rasa's `events` table): the events the consumer is fed."""
    path = build(tmp_path_factory.mktemp("tracker") / "rasa.db")
    return f"sqlite+pysqlite:///{path}"


def tracker_path(url: str) -> Path:
    return Path(url.removeprefix("sqlite+pysqlite:///"))


@pytest.fixture(scope="module")
def convs(tracker_url: str, tmp_path_factory: pytest.TempPathFactory) -> list:
    """The conversations as the console reads them: from its own tables, fed by the consumer."""
    folder = tmp_path_factory.mktemp("analytics")
    url = f"sqlite+pysqlite:///{folder / 'c.db'}"
    settings = Settings(_env_file=None, consent_database_url=url, consent_api_token="x" * 43)
    engine = make_engine(settings.database_url)
    try:
        prepare_database(engine, settings, NOW)
        feed(engine, tracker_path(tracker_url))
        with make_sessionmaker(engine)() as session:
            return conversations(read_events(session, DAY1, DAY2), DAY1, DAY2)
    finally:
        engine.dispose()


# ---- metrics on known data ---------------------------------------------------------------


def test_conversations_and_residents_per_day_and_channel(convs) -> None:
    assert metrics.per_day(convs) == EXPECTED["per_day"]


def test_intent_distribution(convs) -> None:
    assert dict(metrics.intents(convs)) == EXPECTED["intents"]


def test_fallback_rate_per_day(convs) -> None:
    per_day = metrics.fallbacks(convs)
    assert (per_day[DAY1].messages, per_day[DAY1].fallbacks) == EXPECTED["fallback_day1"]
    assert (per_day[DAY2].messages, per_day[DAY2].fallbacks) == EXPECTED["fallback_day2"]
    assert per_day[DAY2].rate == pytest.approx(2 / 7)


def test_unanswered_messages_are_grouped_by_similarity(convs) -> None:
    texts = metrics.unanswered(convs)
    assert sorted(texts) == sorted(mask(t) for t in UNANSWERED)  # masked once, at intake
    groups = metrics.group_similar(texts)
    assert [len(g) for g in groups] == [2, 1, 1]
    assert all("＊＊" in t for t in groups[0])  # the two blood-pressure questions, masked


def test_consent_funnel(convs) -> None:
    row = metrics.funnel(convs)[(2, "LINE")]
    assert {k: getattr(row, k) for k in EXPECTED["funnel_level2_line"]} == EXPECTED[
        "funnel_level2_line"
    ]


def test_the_broker_table_is_opened_read_only(tracker_url: str, tmp_path: Path) -> None:
    from consent_service.analytics.consumer import broker_engine
    from tests.staff_tracker import build_broker, published

    path = build_broker(tmp_path / "events.db", published(tracker_path(tracker_url)))
    engine = broker_engine(f"sqlite+pysqlite:///{path}")
    with pytest.raises(Exception, match="readonly"), engine.begin() as connection:
        connection.exec_driver_sql("DELETE FROM events")
    engine.dispose()


@pytest.mark.parametrize(("count", "shown"), [(0, "0"), (1, "<5"), (4, "<5"), (5, "5"), (12, "12")])
def test_small_counts_are_suppressed(count: int, shown: str) -> None:
    assert suppress(count) == shown


# ---- masking -----------------------------------------------------------------------------

MASKING = [
    ("血圧が150でした", "血圧が＊＊でした"),
    ("上の血圧は 142/91 です", "上の血圧は ＊＊ です"),
    ("体重は72.5kgです", "体重は［伏せ字］です"),
    ("熱が38.2度あります", "熱が［伏せ字］あります"),
    ("HbA1cが6.8でした", "HbA1cが＊＊でした"),
    ("電話は047-123-4567です", "電話は［伏せ字］です"),
    ("090-1234-5678に電話して", "［伏せ字］に電話して"),
    ("マイナンバーは1234 5678 9012", "マイナンバーは＊＊"),
    ("番号は123456789012です", "番号は＊＊です"),
    ("〒273-8501 船橋市湊町2丁目10番25号", "［伏せ字］ 船橋市［伏せ字］"),
    ("taro.yamada@example.jp に連絡", "［伏せ字］ に連絡"),
    ("糖尿病と高血圧症の薬を飲んでいます", "［伏せ字］と［伏せ字］の薬を飲んでいます"),
    ("レベル2の情報って何？", "レベル2の情報って何?"),
    ("病院に行くべき？", "病院に行くべき?"),
    ("情報銀行って何？", "情報銀行って何?"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "masked"), MASKING)
def test_masking_patterns(text: str, masked: str) -> None:
    assert mask(text) == masked


@pytest.fixture(scope="module")
def ginza():
    spacy = pytest.importorskip("spacy")
    return spacy.load("ja_ginza")


@pytest.mark.parametrize(
    ("text", "hidden"),
    [
        ("山田太郎です", "山田太郎"),
        ("鈴木花子さんの血圧が150", "鈴木花子"),
        ("佐藤です、千葉県に住んでいます", "佐藤"),
    ],
)
def test_masking_names_with_ginza(ginza, text: str, hidden: str) -> None:
    masked = mask(text, ginza)
    assert hidden not in masked and "150" not in masked


# ---- access ------------------------------------------------------------------------------


@pytest.fixture
def console(settings: Settings, engine: Engine, tracker_url: str) -> Iterator[TestClient]:
    app = create_app(settings, engine=engine, clock=Clock(NOW))
    with TestClient(app, base_url="https://testserver") as client:
        feed(engine, tracker_path(tracker_url))  # after the app's start-up migrated the database
        yield client


def add_user(client: TestClient, name: str, role: str) -> str:
    with client.app.state.sessionmaker() as session, session.begin():
        return auth.create_user(session, name, PASSWORD, role, NOW, client.app.state.settings)


def log_in(client: TestClient, name: str, secret: str, password: str = PASSWORD):
    form = client.get("/staff/login").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', form).group(1)
    code = pyotp.TOTP(secret).at(NOW)
    return client.post(
        "/staff/login",
        data={"username": name, "password": password, "code": code, "csrf": csrf},
        follow_redirects=False,
    )


STAFF_PAGES = [
    "/staff/", "/staff/intents", "/staff/fallbacks", "/staff/funnel", "/staff/conversations",
    "/staff/conversations/line-0:0", "/staff/access-log", "/staff/export/overview.csv",
    "/staff/export/intents.csv", "/staff/export/fallbacks.csv",
]  # fmt: skip


@pytest.mark.parametrize("path", STAFF_PAGES)
def test_no_page_without_a_session(console: TestClient, path: str) -> None:
    response = console.get(path, follow_redirects=False)
    assert response.status_code == 302 and response.headers["location"] == "/staff/login"
    forged = console.get(path, cookies={"staff_session": "forged"}, follow_redirects=False)
    assert forged.status_code == 302


def test_login_with_password_and_totp_sets_a_secure_cookie(console: TestClient) -> None:
    secret = add_user(console, "admin", "admin")
    response = log_in(console, "admin", secret)
    assert response.status_code == 303 and response.headers["location"] == "/staff/"
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "Secure" in cookie and "SameSite=strict" in cookie
    for path in STAFF_PAGES:
        assert console.get(f"{path}?start={DAY1}&end={DAY2}").status_code == 200, path


def test_wrong_code_or_password_fails_and_five_failures_lock(console: TestClient) -> None:
    secret = add_user(console, "viewer1", "viewer")
    assert log_in(console, "viewer1", pyotp.random_base32()).headers["location"].endswith("invalid")
    for _ in range(4):
        failed = log_in(console, "viewer1", secret, password="wrong password!")
    assert failed.headers["location"].endswith("invalid")  # the same answer as any failure
    # even the right credentials do not open a locked account
    assert log_in(console, "viewer1", secret).headers["location"].endswith("invalid")
    with console.app.state.sessionmaker() as session:
        actions = [e.action for e in session.execute(select(StaffAccessLog)).scalars()]
    assert actions == ["login_failed"] * 5 + ["lockout", "login_failed"]


def test_login_without_the_forms_csrf_token_is_refused(console: TestClient) -> None:
    secret = add_user(console, "admin", "admin")
    response = console.post(
        "/staff/login",
        data={"username": "admin", "password": PASSWORD, "code": pyotp.TOTP(secret).at(NOW),
              "csrf": "guessed"},
        follow_redirects=False,
    )  # fmt: skip
    assert response.headers["location"].endswith("expired")


def test_viewers_cannot_read_the_access_log(console: TestClient) -> None:
    log_in(console, "viewer2", add_user(console, "viewer2", "viewer"))
    assert console.get("/staff/", follow_redirects=False).status_code == 200
    assert console.get("/staff/access-log", follow_redirects=False).status_code == 302


def test_every_transcript_view_is_logged_and_masked(
    settings: Settings, engine: Engine, tracker_url: str, ginza
) -> None:
    # As deployed: the consumer masks GiNZA's names too (STAFF_MASK_WITH_GINZA defaults to true).
    assert settings.staff_mask_with_ginza
    app = create_app(settings, engine=engine, clock=Clock(NOW))
    with TestClient(app, base_url="https://testserver") as console:
        feed(engine, tracker_path(tracker_url), lambda text: mask(text, ginza))
        log_in(console, "admin", add_user(console, "admin", "admin"))
        page = console.get("/staff/conversations/line-9:0").text
        with console.app.state.sessionmaker() as session:
            actions = [e.action for e in session.execute(select(StaffAccessLog)).scalars()]
    # The resident wrote 「山田太郎の電話番号は047-123-4567」: no part of the name or the number
    # is shown, and each one is masked where it stood. (The parts of the number are looked for in
    # the transcript alone: the page's random CSRF token may hold any digits.)
    assert "山田太郎の電話番号は047-123-4567" in UNANSWERED
    transcript = page[page.index('<ol class="transcript">') : page.index("</ol>")]
    for detail in ("山田太郎", "山田", "太郎", "047-123-4567"):
        assert detail not in page, detail
    for detail in ("047", "123", "4567"):
        assert detail not in transcript, detail
    assert "［伏せ字］の電話番号は［伏せ字］" in transcript
    assert actions == ["login", "view_transcript"]


def test_pages_and_csv_show_small_counts_as_less_than_five(console: TestClient) -> None:
    log_in(console, "admin", add_user(console, "admin", "admin"))
    overview = console.get(f"/staff/?start={DAY1}&end={DAY2}").text
    # one week (16-22 November): LINE 9 conversations of 7 residents; web and REST below 5
    assert "&lt;5 / &lt;5" in overview and "9 / 7" in overview
    # the total includes two hidden cells (web, REST), so it is shown as the range it lies in
    assert "期間中の会話 11〜17 件" in overview
    csv_text = console.get(f"/staff/export/intents.csv?start={DAY1}&end={DAY2}").text
    assert "ask_info_bank,8" in csv_text and "goodbye,<5" in csv_text
    fallbacks = console.get(f"/staff/fallbacks?start={DAY1}&end={DAY2}").text
    assert "150" not in fallbacks and "＊＊" in fallbacks
    # 4 misunderstood messages in three channels: three hidden cells; the rate is a range too
    assert "のうち 3〜12 件（" in fallbacks


def test_logout_needs_the_csrf_token(console: TestClient) -> None:
    log_in(console, "admin", add_user(console, "admin", "admin"))
    console.post("/staff/logout", data={"csrf": "wrong"})
    page = console.get("/staff/", follow_redirects=False)
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    console.post("/staff/logout", data={"csrf": csrf})
    assert console.get("/staff/", follow_redirects=False).status_code == 302


def test_cli_creates_a_user_with_a_totp_secret(settings: Settings, monkeypatch, capsys) -> None:
    from consent_service.__main__ import main as cli
    from consent_service.config import get_settings

    monkeypatch.setenv("CONSENT_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("CONSENT_API_TOKEN", "x")
    monkeypatch.setenv("STAFF_PASSWORD", PASSWORD)
    get_settings.cache_clear()
    try:
        assert cli(["staff", "create-user", "first-admin", "--role", "admin"]) == 0
    finally:
        get_settings.cache_clear()
    out = capsys.readouterr().out
    assert "otpauth://totp/" in out and re.search(r"TOTP secret: [A-Z2-7]{32}", out)


def test_short_passwords_are_refused(console: TestClient) -> None:
    with pytest.raises(ValueError, match="12 characters"), console.app.state.sessionmaker() as s:
        auth.create_user(s, "x", "short", "viewer", NOW, console.app.state.settings)


def test_the_counter_needs_a_counter_session(console: TestClient) -> None:
    for method, path in [("get", "/staff/counter"), ("post", "/staff/counter/lookup"),
                         ("post", "/staff/counter/withdraw")]:  # fmt: skip
        response = console.request(method, path, follow_redirects=False)
        assert (response.status_code, response.headers["location"]) == (302, "/staff/login")
    log_in(console, "viewer3", add_user(console, "viewer3", "viewer"))
    page = console.get("/staff/")
    assert "/staff/counter" not in page.text  # no link either
    response = console.get("/staff/counter", follow_redirects=False)
    assert (response.status_code, response.headers["location"]) == (302, "/staff/")
