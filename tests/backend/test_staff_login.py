"""Staff log-in under attack: code replay, concurrent guessing, throttling, what failures reveal
and log, sessions after a lockout and when idle, TOTP secrets at rest."""

from __future__ import annotations

import datetime as dt
import re
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pyotp
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import Engine, select, text

from consent_service import migrations
from consent_service.config import InsecureSettings, Settings
from consent_service.main import create_app
from consent_service.models import StaffAccessLog, StaffUser
from consent_service.staff import auth
from tests.backend.conftest import Clock

PASSWORD = "correct horse battery staple"
NOW = dt.datetime(2026, 11, 24, 3, 0, tzinfo=dt.UTC)
TOTP_KEY = "staff-totp-key-for-tests-" + "t" * 32
PAGE = "/staff/access-log"  # a page that needs a session and no tracker store


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


def configure(settings: Settings, **changes: object) -> Settings:
    return settings.model_copy(
        update={"staff_mask_with_ginza": False, "staff_totp_key": SecretStr(TOTP_KEY), **changes}
    )


@pytest.fixture
def console(settings: Settings, engine: Engine, clock: Clock) -> Iterator[TestClient]:
    app = create_app(configure(settings), engine=engine, clock=clock)
    with TestClient(app, base_url="https://testserver") as client:
        yield client


def add_user(client: TestClient, name: str, role: str = "viewer") -> str:
    with client.app.state.sessionmaker() as session, session.begin():
        return auth.create_user(session, name, PASSWORD, role, NOW, client.app.state.settings)


def log_in(
    client: TestClient,
    name: str,
    secret: str | None,
    password: str = PASSWORD,
    at: dt.datetime | None = None,
    code: str | None = None,
):
    form = client.get("/staff/login").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', form).group(1)
    if code is None:
        code = pyotp.TOTP(secret).at(at or client.app.state.clock()) if secret else "123456"
    return client.post(
        "/staff/login",
        data={"username": name, "password": password, "code": code, "csrf": csrf},
        follow_redirects=False,
    )


def access_log(client: TestClient) -> list[StaffAccessLog]:
    with client.app.state.sessionmaker() as session:
        return list(session.execute(select(StaffAccessLog).order_by(StaffAccessLog.id)).scalars())


# ---- TOTP replay -------------------------------------------------------------------------


def test_a_code_is_accepted_once(console: TestClient, clock: Clock) -> None:
    secret = add_user(console, "kanri")
    code = pyotp.TOTP(secret).at(NOW)
    assert log_in(console, "kanri", secret, code=code).headers["location"] == "/staff/"
    console.cookies.clear()
    clock.advance(seconds=10)  # same 30-second step: an observer replays the code
    replay = log_in(console, "kanri", secret, code=code)
    assert replay.headers["location"] == "/staff/login?error=invalid"
    assert (
        "set-cookie" not in replay.headers or "staff_session=" not in replay.headers["set-cookie"]
    )


def test_a_code_older_than_the_last_accepted_one_is_refused(
    console: TestClient, clock: Clock
) -> None:
    secret = add_user(console, "kanri")
    totp = pyotp.TOTP(secret)
    earlier = totp.at(NOW - dt.timedelta(seconds=30))  # still inside the accepted window
    assert log_in(console, "kanri", secret, code=totp.at(NOW)).headers["location"] == "/staff/"
    console.cookies.clear()
    assert log_in(console, "kanri", secret, code=earlier).headers["location"].endswith("invalid")
    clock.advance(seconds=30)  # the next step's code works
    assert log_in(console, "kanri", secret).headers["location"] == "/staff/"


def test_two_concurrent_logins_with_one_code_open_one_session(
    console: TestClient, engine: Engine
) -> None:
    secret = add_user(console, "kanri")
    settings = console.app.state.settings
    factory = console.app.state.sessionmaker
    code = pyotp.TOTP(secret).at(NOW)

    def attempt(_: int) -> bool:
        with factory() as session, session.begin():
            return (
                auth.authenticate(session, settings, "kanri", PASSWORD, code, NOW).user is not None
            )

    with ThreadPoolExecutor(4) as pool:
        assert sum(pool.map(attempt, range(4))) == 1


# ---- failures counted atomically ---------------------------------------------------------


def test_concurrent_failures_are_all_counted(
    db_url: str, console: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Eight attempts read the account before any writes: each failure must still count."""
    if db_url.startswith("sqlite"):
        pytest.skip("SQLite serialises whole transactions (BEGIN IMMEDIATE): no interleaving")
    add_user(console, "target")
    settings = console.app.state.settings.model_copy(update={"staff_lockout_attempts": 100})
    factory = console.app.state.sessionmaker
    attempts = 8
    barrier = threading.Barrier(attempts, timeout=60)
    real = auth._hasher

    class SynchronisedHasher:
        """argon2 as usual, then wait until every attempt has read the account and checked."""

        def verify(self, hashed: str, password: str) -> bool:
            try:
                return real.verify(hashed, password)
            finally:
                barrier.wait()

    monkeypatch.setattr(auth, "_hasher", SynchronisedHasher())

    def attempt(_: int) -> None:
        with factory() as session, session.begin():
            auth.authenticate(session, settings, "target", "wrong password!!", "000000", NOW)

    with ThreadPoolExecutor(attempts) as pool:
        list(pool.map(attempt, range(attempts)))
    with factory() as session:
        user = session.execute(select(StaffUser).where(StaffUser.username == "target")).scalar_one()
    assert user.failed_attempts == attempts


def test_concurrent_guesses_cannot_exceed_the_lockout(
    db_url: str, console: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ten concurrent wrong guesses against a limit of five lock the account."""
    if db_url.startswith("sqlite"):
        pytest.skip("SQLite serialises whole transactions (BEGIN IMMEDIATE): no interleaving")
    add_user(console, "target")
    settings = console.app.state.settings
    factory = console.app.state.sessionmaker
    barrier = threading.Barrier(10, timeout=60)
    real = auth._hasher

    class SynchronisedHasher:
        def verify(self, hashed: str, password: str) -> bool:
            try:
                return real.verify(hashed, password)
            finally:
                barrier.wait()

    monkeypatch.setattr(auth, "_hasher", SynchronisedHasher())

    def attempt(_: int) -> None:
        with factory() as session, session.begin():
            auth.authenticate(session, settings, "target", "wrong password!!", "000000", NOW)

    with ThreadPoolExecutor(10) as pool:
        list(pool.map(attempt, range(10)))
    with factory() as session:
        user = session.execute(select(StaffUser).where(StaffUser.username == "target")).scalar_one()
    assert user.locked_until is not None and user.locked_until > NOW


# ---- one answer for every failure, and all of them logged ---------------------------------


def test_every_failure_gets_the_same_answer(console: TestClient) -> None:
    secret = add_user(console, "kanri")
    add_user(console, "locked-one")
    for _ in range(5):
        log_in(console, "locked-one", None, password="wrong password!!")
    answers = {
        "unknown user": log_in(console, "nobody", secret),
        "wrong password": log_in(console, "kanri", secret, password="wrong password!!"),
        "wrong code": log_in(console, "kanri", pyotp.random_base32()),
        "locked account": log_in(console, "locked-one", None),
    }
    locations = {name: r.headers["location"] for name, r in answers.items()}
    assert set(locations.values()) == {"/staff/login?error=invalid"}, locations
    pages = {console.get(location).text for location in locations.values()}
    assert len({re.sub(r'value="[^"]+"', "", page) for page in pages}) == 1
    assert "ロック" not in console.get("/staff/login?error=locked").text


def test_failures_and_lockouts_are_logged_without_password_or_code(console: TestClient) -> None:
    secret = add_user(console, "kanri")
    wrong_code = "000000" if pyotp.TOTP(secret).at(NOW) != "000000" else "111111"
    log_in(console, "nobody", secret, password="typed-a-password-here")
    for _ in range(5):
        log_in(console, "kanri", secret, password="secret-guess-1234", code=wrong_code)
    entries = access_log(console)
    assert [(e.username, e.action) for e in entries] == [
        ("(unknown)", "login_failed"),
        *[("kanri", "login_failed")] * 5,
        ("kanri", "lockout"),
    ]
    assert all("ip=testclient" in e.target for e in entries)
    for entry in entries:
        logged = f"{entry.username} {entry.action} {entry.target}"
        assert "typed-a-password-here" not in logged and "secret-guess" not in logged
        assert wrong_code not in logged and "nobody" not in logged


# ---- sessions ----------------------------------------------------------------------------


def test_a_lockout_ends_the_accounts_sessions(console: TestClient) -> None:
    secret = add_user(console, "kanri", "admin")
    assert log_in(console, "kanri", secret).headers["location"] == "/staff/"
    victims = {auth.COOKIE: console.cookies[auth.COOKIE]}
    console.cookies.clear()  # someone else, elsewhere, guesses until the account locks
    assert console.get(PAGE, cookies=victims, follow_redirects=False).status_code == 200
    for _ in range(5):
        log_in(console, "kanri", None, password="wrong password!!")
    console.cookies.clear()
    assert console.get(PAGE, cookies=victims, follow_redirects=False).status_code == 302


def test_an_idle_session_ends(console: TestClient, clock: Clock) -> None:
    secret = add_user(console, "kanri", "admin")
    log_in(console, "kanri", secret)
    for _ in range(4):  # used every 20 minutes: stays open past the idle limit in total
        clock.advance(minutes=20)
        assert console.get(PAGE, follow_redirects=False).status_code == 200
    clock.advance(minutes=31)
    assert console.get(PAGE, follow_redirects=False).status_code == 302
    clock.advance(minutes=1)  # and it is gone, not merely refused once
    assert console.get(PAGE, follow_redirects=False).status_code == 302


# ---- throttle in front of argon2 ---------------------------------------------------------


def test_an_address_is_throttled_before_argon2(
    settings: Settings, engine: Engine, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    configured = configure(settings, staff_login_ip_attempts=3, staff_login_ip_window_seconds=60)
    app = create_app(configured, engine=engine, clock=clock)
    with TestClient(app, base_url="https://testserver") as client:
        add_user(client, "kanri")
        calls: list[str] = []
        real = auth._hasher

        class CountingHasher:
            def verify(self, hashed: str, password: str) -> bool:
                calls.append(password)
                return real.verify(hashed, password)

        monkeypatch.setattr(auth, "_hasher", CountingHasher())
        answers = [log_in(client, "kanri", None, password=f"guess number {i}!") for i in range(6)]
        assert [a.headers["location"].rsplit("=", 1)[1] for a in answers] == (
            ["invalid"] * 3 + ["throttled"] * 3
        )
        assert len(calls) == 3  # no argon2 work for the refused ones
        throttled = [e for e in access_log(client) if e.action == "login_throttled"]
        assert len(throttled) == 1  # logged once per window, not once per attempt
        clock.advance(seconds=61)
        assert log_in(client, "kanri", None).headers["location"].endswith("invalid")


def test_the_throttle_remembers_a_bounded_number_of_addresses() -> None:
    throttle = auth.LoginThrottle(2, dt.timedelta(minutes=5), max_clients=100)
    for i in range(10_000):
        throttle.check(f"10.0.{i // 256}.{i % 256}", NOW)
    assert len(throttle) == 100
    assert throttle.check("192.0.2.1", NOW) == (True, False)
    assert throttle.check("192.0.2.1", NOW) == (True, False)
    assert throttle.check("192.0.2.1", NOW) == (False, True)
    assert throttle.check("192.0.2.1", NOW) == (False, False)


# ---- TOTP secrets at rest ----------------------------------------------------------------


def test_the_totp_secret_is_stored_encrypted(console: TestClient, engine: Engine) -> None:
    secret = add_user(console, "kanri")
    with engine.connect() as connection:
        stored = connection.execute(text("SELECT totp_secret FROM staff_users")).scalar_one()
    assert secret not in stored and stored.startswith("v1:")
    assert log_in(console, "kanri", secret).headers["location"] == "/staff/"


def test_a_secret_does_not_open_under_another_key_or_account(console: TestClient) -> None:
    settings = console.app.state.settings
    sealed = auth.seal_secret(settings, "kanri", "JBSWY3DPEHPK3PXP")
    assert auth.open_secret(settings, "kanri", sealed) == "JBSWY3DPEHPK3PXP"
    other_key = configure(settings, staff_totp_key=SecretStr("another-key-" + "x" * 40))
    assert auth.open_secret(other_key, "kanri", sealed) is None
    assert auth.open_secret(settings, "admin", sealed) is None  # copied to another row
    assert auth.open_secret(settings, "kanri", "JBSWY3DPEHPK3PXP") is None  # clear text


def test_secrets_stored_in_clear_are_encrypted_at_the_next_start(
    settings: Settings, engine: Engine, clock: Clock
) -> None:
    migrations.upgrade(engine, "0003")
    secret = pyotp.random_base32()
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO staff_users (username, password_hash, totp_secret, role, "
                "failed_attempts, created_at) VALUES ('old', :hash, :secret, 'admin', 0, :at)"
            ),
            {
                "hash": auth._hasher.hash(PASSWORD),
                "secret": secret,
                # as UTCDateTime stores it: naive UTC text on SQLite, aware on PostgreSQL
                "at": NOW if engine.dialect.name == "postgresql" else "2026-11-24 03:00:00.000000",
            },
        )
    app = create_app(configure(settings), engine=engine, clock=clock)
    with TestClient(app, base_url="https://testserver") as client:
        with engine.connect() as connection:
            stored = connection.execute(text("SELECT totp_secret FROM staff_users")).scalar_one()
        assert stored.startswith("v1:") and secret not in stored
        assert log_in(client, "old", secret).headers["location"] == "/staff/"


def test_secrets_under_the_development_key_move_to_the_real_key(
    settings: Settings, engine: Engine, clock: Clock
) -> None:
    development = settings.model_copy(update={"staff_mask_with_ginza": False})  # no key set
    with TestClient(create_app(development, engine=engine, clock=clock)) as client:
        secret = add_user(client, "kanri")
    with TestClient(
        create_app(configure(settings), engine=engine, clock=clock), base_url="https://testserver"
    ) as client:
        stored = client.app.state.sessionmaker().execute(select(StaffUser)).scalar_one()
        assert auth.open_secret(client.app.state.settings, "kanri", stored.totp_secret) == secret
        assert log_in(client, "kanri", secret).headers["location"] == "/staff/"


def test_production_needs_a_staff_totp_key(settings: Settings) -> None:
    production = settings.model_copy(update={"consent_env": "production"})
    with pytest.raises(InsecureSettings, match="STAFF_TOTP_KEY"):
        production.staff_totp_key_bytes()
    assert any("STAFF_TOTP_KEY" in p for p in production.serving_problems())
    weak = configure(settings, staff_totp_key=SecretStr("short"))
    assert any("STAFF_TOTP_KEY" in p for p in weak.serving_problems())
    assert not any("STAFF_TOTP_KEY" in p for p in configure(settings).serving_problems())
