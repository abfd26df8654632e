"""Start the real action server and Rasa server for end-to-end tests.

Each run uses free ports and its own SQLite tracker store in a temporary folder, so it never
touches a running `make run` or its data.

Issue 17: the run has its own notice key pair. Rasa (the LINE channel) gets the public key and
seals each resident's LINE user id with it; only the notice sender (`python -m consent_service
send-notices`, `NoticeSender`) gets the private key. The sender multicasts to the fake LINE
platform outside the quiet hours of the run (`quiet_hours_away_from`) and can be killed and
started again by a test.

The staff console's accounts and log-ins (`create_staff_user`, `staff_log_in`, `staff_cookies`,
`staff_console`) are shared by every e2e module that logs staff in.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
import hmac
import os
import re
import secrets
import shutil
import signal
import struct
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, List, Mapping

import pytest
import requests

from scripts import harness
from scripts.harness import free_port
from tests.conftest import PROJECT_ROOT
from tests.e2e import log_check
from tests.line_fake import FakeLineApi

MODEL = PROJECT_ROOT / "models" / "assistant.tar.gz"
RASA = PROJECT_ROOT / ".venv" / "bin" / "rasa"
PYTHON = PROJECT_ROOT / ".venv" / "bin" / "python"
BACKEND_PYTHON = PROJECT_ROOT / ".venv-backend" / "bin" / "python"
# Strong tokens, as the servers require (bot/startup.py); fresh for every run.
CONSENT_TOKEN = secrets.token_urlsafe(32)
RASA_API_TOKEN = secrets.token_urlsafe(32)
ACTION_SERVER_TOKEN = secrets.token_urlsafe(32)
LINE_SECRET = "e2e-line-channel-secret"
LINE_TOKEN = "e2e-line-access-token"
EXPIRED_REPLY_TOKEN = "expired-reply-token"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
SCREENSHOTS = PROJECT_ROOT / "results" / "screenshots"
# At least 43 varied characters: the servers refuse weaker keys (bot/startup.py).
PSEUDONYM_KEY = "e2e-pseudonym-key-0123456789abcdefghijklmnopqrstuv"
START_TIMEOUT = 300.0
CITY_CONTACT = {
    "CITY_CONTACT_NAME": "テスト用の窓口",
    "CITY_CONTACT_PHONE": "0000-00-0000",
    "CITY_CONTACT_HOURS": "テスト用の受付時間",
}


# Issue 17: the sender looks for due notices this often in the e2e stack (seconds).
NOTICE_POLL_SECONDS = "0.5"


__all__ = ["free_port", "wait_until_up"]  # also used by e2e tests that start a server of their own


def wait_until_up(url: str, process: subprocess.Popen, log: Path) -> None:
    """Wait until `url` answers with a success (scripts/harness.py), failing if `process` ends."""
    spec = harness.Spec(url, [], log, ready=harness.HttpReady(url), timeout=START_TIMEOUT)
    harness.Process(spec, process).wait_ready()


class ConsentService:
    """The real consent service in its own environment; it can be stopped and started again
    (same port, same database) to test what the assistant does while it is down."""

    def __init__(self, work: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = work / "consent.log"
        self.env = {
            **os.environ,
            "PYTHONPATH": str(PROJECT_ROOT / "backend"),
            "CONSENT_DATABASE_URL": f"sqlite+pysqlite:///{work / 'consent.db'}",
            "CONSENT_API_TOKEN": CONSENT_TOKEN,
            # The console refuses schedules inside them and sends "now" outside (issue 17).
            "NOTICE_QUIET_HOURS": NOTICE_QUIET_HOURS,
        }
        self.env.pop("NOTICE_PRIVATE_KEY", None)  # only the sender holds it
        self.process: harness.Process | None = None

    def start(self) -> None:
        spec = harness.consent_spec(self.port, self.env, self.log, timeout=START_TIMEOUT)
        self.process = harness.run_ready(spec)

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
            self.process = None

    def history(self, sender: str, channel: str = "rest") -> List[Dict[str, Any]]:
        """The service's records for a sender of the assistant (found by its pseudonym)."""
        subject = hmac.new(
            PSEUDONYM_KEY.encode(), f"{channel}:{sender}".encode(), hashlib.sha256
        ).hexdigest()
        response = requests.get(
            f"{self.url}/v1/subjects/{subject}/consents",
            headers={"Authorization": f"Bearer {CONSENT_TOKEN}"},
            timeout=10,
        )
        response.raise_for_status()
        return list(response.json())


def notice_keypair() -> tuple[str, str]:
    """A fresh X25519 key pair as the notices contract encodes it (docs/notices.md).

    Returns:
        (private, public): base64url without padding of the 32 raw bytes each.
    """
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    raw = serialization.Encoding.Raw
    key = X25519PrivateKey.generate()
    private = key.private_bytes(raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
    public = key.public_key().public_bytes(raw, serialization.PublicFormat.Raw)
    encode = lambda data: base64.urlsafe_b64encode(data).rstrip(b"=").decode()  # noqa: E731
    return encode(private), encode(public)


NOTICE_PRIVATE_KEY, NOTICE_PUBLIC_KEY = notice_keypair()
JST = dt.timezone(dt.timedelta(hours=9))


def quiet_hours_away_from(now: dt.datetime, hours_ahead: int = 8) -> str:
    """NOTICE_QUIET_HOURS (JST, "HH:MM-HH:MM") one hour long, `hours_ahead` after `now`.

    The run (a few minutes) is then outside the quiet hours, whenever it starts.
    """
    start = (now.astimezone(JST) + dt.timedelta(hours=hours_ahead)).replace(minute=0)
    end = start + dt.timedelta(hours=1)
    return f"{start:%H:%M}-{end:%H:%M}"


NOTICE_QUIET_HOURS = quiet_hours_away_from(dt.datetime.now(dt.timezone.utc))


class NoticeSender:
    """`python -m consent_service send-notices` on the consent service's database, multicasting
    to the fake LINE platform; a test may kill it (SIGKILL, mid-send) and start it again."""

    def __init__(self, work: Path, consent: ConsentService, line_url: str) -> None:
        self.log = work / "sender.log"
        self.env = {
            **consent.env,
            "NOTICE_PRIVATE_KEY": NOTICE_PRIVATE_KEY,
            "LINE_CHANNEL_ACCESS_TOKEN": LINE_TOKEN,
            "LINE_API_BASE_URL": line_url,
            "NOTICE_POLL_SECONDS": NOTICE_POLL_SECONDS,
            "NOTICE_QUIET_HOURS": NOTICE_QUIET_HOURS,
            "NOTICE_HTTP_TIMEOUT_SECONDS": "10",
        }
        self.process: harness.Process | None = None

    def start(self, **overrides: str) -> None:
        """Start it (again), with `overrides` of its environment (e.g. NOTICE_BATCH_SIZE)."""
        if self.process is not None and self.process.alive():
            raise RuntimeError("the sender is already running")
        self.process = harness.start(harness.sender_spec({**self.env, **overrides}, self.log))

    def alive(self) -> bool:
        """Whether it runs."""
        return self.process is not None and self.process.alive()

    def kill(self) -> None:
        """SIGKILL it: no goodbye, whatever it was doing (a crash or a power cut)."""
        if self.process is not None:
            self.process.kill(signal.SIGKILL)
            self.process = None

    def stop(self) -> None:
        """Stop it as at the end of the run (SIGTERM, then SIGKILL)."""
        if self.process is not None:
            self.process.stop()
            self.process = None


# The staff console's analytics (issue 20): the consumer of Rasa's SQL event broker (the
# `event_broker` of the assistant's endpoints, work/events.db) into the consent service's tables.
def consumer_spec(env: Dict[str, str], events_db: Path, log: Path) -> harness.Spec:
    """`python -m consent_service consume` on `events_db` with the service's `env`."""
    env = {**env, "ANALYTICS_SOURCE": "sql", "ANALYTICS_POLL_SECONDS": "0.2",
           "ANALYTICS_EVENTS_DATABASE_URL": f"sqlite+pysqlite:///{events_db}",
           "STAFF_MASK_WITH_GINZA": "false"}  # fmt: skip
    return harness.consumer_spec(env, log)


def start_consumer(env: Dict[str, str], events_db: Path, log: Path) -> subprocess.Popen:
    """Start the consumer (`consumer_spec`) through the harness; its process."""
    return harness.start(consumer_spec(env, events_db, log)).popen


def wait_consumed(events_db: Path, consent_db: Path, timeout: float = 60.0) -> None:
    """Wait until the consumer's stored offset reaches the broker table's last event."""
    import sqlite3

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.closing(sqlite3.connect(events_db)) as broker:
            last = broker.execute("SELECT coalesce(max(id), 0) FROM events").fetchone()[0]
        try:
            with contextlib.closing(sqlite3.connect(consent_db)) as consent:
                row = consent.execute("SELECT position FROM analytics_offsets").fetchone()
        except sqlite3.OperationalError:
            row = None
        if row is not None and row[0] >= last:
            return
        time.sleep(0.2)
    raise RuntimeError(f"the consumer did not read {events_db} within {timeout:.0f} s")


# The staff console (issues 14-20). Every account the e2e modules create has this password.
# The e2e stack's consent database is shared by the modules: each module creates accounts of
# names no other module uses there (today madoguchi: counter memo, henshu: labels,
# oshirase_henshu and oshirase_shonin: notices, privacy: privacy intake).
STAFF_PASSWORD = "correct horse battery staple"
TOTP_SECRET = re.compile(r"TOTP secret: ([A-Z2-7]+)")
LOGIN_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def totp(secret: str, at: float | None = None) -> str:
    """RFC 6238 (SHA-1, 30 s, 6 digits), as authenticator apps compute it."""
    counter = int((at or time.time()) // 30)
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    digest = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    return f"{(struct.unpack('>I', digest[offset : offset + 4])[0] & 0x7FFFFFFF) % 1_000_000:06d}"


def create_staff_user(env: Mapping[str, str], name: str, role: str | None = None) -> str:
    """Create the staff account `name` (password STAFF_PASSWORD) in the database of `env`.

    Args:
        env: The consent service's environment (its CONSENT_DATABASE_URL names the database).
        name: The user name; unique in that database (a second account of it is refused).
        role: Its role (`--role`); None: the command's default.

    Returns:
        Its TOTP secret, as `staff create-user` prints it.
    """
    command = [str(BACKEND_PYTHON), "-m", "consent_service", "staff", "create-user", name]
    if role is not None:
        command += ["--role", role]
    created = subprocess.run(
        command, env={**env, "STAFF_PASSWORD": STAFF_PASSWORD},
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert created.returncode == 0, (
        f"create-user {name} failed (the stack's consent database is shared: is the name used by"
        f" another e2e module?):\n{created.stdout[-1000:]}{created.stderr[-2000:]}"
    )
    found = TOTP_SECRET.search(created.stdout)
    assert found, f"create-user {name} printed no TOTP secret"
    return found.group(1)


def staff_log_in(
    page: Any, url: str, name: str, secret: str, landing: str | re.Pattern[str] | None = None
) -> None:
    """Log `name` in to the console at `url` in a browser page: password and TOTP code.

    Args:
        page: A Playwright page.
        url: The console's base URL.
        name: The staff account.
        secret: Its TOTP secret (`create_staff_user`).
        landing: Wait until the page has reached this URL (the role's start page); None: do not.
    """
    page.goto(f"{url}/staff/login")
    page.get_by_label("ユーザー名").fill(name)
    page.get_by_label("パスワード").fill(STAFF_PASSWORD)
    page.get_by_label("確認コード（認証アプリの6桁）").fill(totp(secret))
    page.get_by_role("button", name="ログイン").click()
    if landing is not None:
        page.wait_for_url(landing)


def staff_login_post(url: str, name: str, code: str) -> requests.Response:
    """Fill in the console's log-in form over HTTP (its CSRF token and cookie) and post it.

    Returns:
        The console's answer, not followed: its `location` says where the log-in led.
    """
    form = requests.get(f"{url}/staff/login", timeout=10)
    csrf = LOGIN_CSRF.search(form.text)
    assert csrf, "the log-in form has no CSRF token"
    return requests.post(
        f"{url}/staff/login",
        data={"username": name, "password": STAFF_PASSWORD, "code": code, "csrf": csrf[1]},
        cookies=dict(form.cookies),
        allow_redirects=False,
        timeout=30,
    )


def staff_cookies(url: str, name: str, secret: str) -> Dict[str, str]:
    """Log `name` in over HTTP; the session's cookies.

    They are Secure cookies, which `requests` keeps from plain http: pass them by hand
    (`cookies=`) to each request.
    """
    answer = staff_login_post(url, name, totp(secret))
    assert answer.headers.get("location") == "/staff/", answer.headers
    return dict(answer.cookies)


@contextlib.contextmanager
def staff_console(env: Mapping[str, str], work: Path) -> Iterator[str]:
    """A consent service and its staff console with `env` on a free port, logging to
    `work/console.log`, until the block ends; its URL."""
    port = free_port()
    spec = harness.consent_spec(
        port, env, work / "console.log", name="console", timeout=START_TIMEOUT
    )
    process = harness.run_ready(spec)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.stop()


@dataclass
class Assistant:
    """The running assistant, reached over HTTP."""

    url: str
    tracker_db: Path
    consent: ConsentService
    logs: List[Path]
    # Issue 17: the notice sender (None in stacks that do not run it).
    sender: NoticeSender | None = None

    def say(self, sender: str, message: str) -> List[Dict[str, Any]]:
        """Send one message through the REST channel and return the answers."""
        response = requests.post(
            f"{self.url}/webhooks/rest/webhook",
            json={"sender": sender, "message": message},
            timeout=60,
        )
        response.raise_for_status()
        return list(response.json())

    def tracker(self, sender: str) -> Dict[str, Any]:
        """A conversation through Rasa's HTTP API, which answers only with its token."""
        response = requests.get(
            f"{self.url}/conversations/{sender}/tracker",
            params={"token": RASA_API_TOKEN},
            timeout=30,
        )
        response.raise_for_status()
        return dict(response.json())


@pytest.fixture(scope="session")
def fake_line() -> Iterator[FakeLineApi]:
    """The LINE platform, checking every call against LINE's OpenAPI description."""
    with FakeLineApi(LINE_TOKEN, frozenset({EXPIRED_REPLY_TOKEN})) as fake:
        yield fake


@pytest.fixture(scope="session")
def assistant(
    tmp_path_factory: pytest.TempPathFactory, fake_line: FakeLineApi
) -> Iterator[Assistant]:
    if not MODEL.exists():
        pytest.fail("No trained model: run `make model` (make test does it before the e2e tests).")
    work = tmp_path_factory.mktemp("e2e")
    rasa_port, actions_port = free_port(), free_port()
    endpoints = work / "endpoints.yml"
    endpoints.write_text(
        "tracker_store:\n  type: SQL\n  dialect: sqlite\n"
        f"  db: {work / 'rasa.db'}\n"
        "event_broker:\n  type: SQL\n  dialect: sqlite\n"
        f"  db: {work / 'events.db'}\n"
        f"action_endpoint:\n  url: http://127.0.0.1:{actions_port}/webhook\n"
        "  headers:\n    Authorization: Bearer ${ACTION_SERVER_TOKEN}\n",
        encoding="utf-8",
    )
    consent = ConsentService(work)
    consent.start()
    consumer = harness.start(consumer_spec(consent.env, work / "events.db", work / "consumer.log"))
    sender = NoticeSender(work, consent, fake_line.url)
    sender.start()
    log_check.forbid("notice private key", [NOTICE_PRIVATE_KEY])
    env = {
        **os.environ,
        **CITY_CONTACT,
        "CONSENT_API_URL": consent.url,
        "CONSENT_API_TOKEN": CONSENT_TOKEN,
        "RASA_API_TOKEN": RASA_API_TOKEN,
        "ACTION_SERVER_TOKEN": ACTION_SERVER_TOKEN,
        "SUBJECT_PSEUDONYM_KEY": PSEUDONYM_KEY,
        "CONSENT_API_READ_TIMEOUT": "3",
        "LINE_CHANNEL_SECRET": LINE_SECRET,
        "LINE_CHANNEL_ACCESS_TOKEN": LINE_TOKEN,
        "LINE_API_BASE_URL": fake_line.url,
        "WEBCHAT_ALLOWED_ORIGINS": f"http://127.0.0.1:{rasa_port}",
        # Issue 18: the consultation memo's link expires within the test (tests/e2e/test_memo.py).
        "MEMO_TTL_SECONDS": "20",
        # Every browser test opens web chat sessions from 127.0.0.1: the suite as a whole needs
        # more than a resident's 30 an hour (the budget itself: tests/bot/test_webchat_channel.py).
        "WEBCHAT_SESSIONS_PER_CLIENT": "1000",
        "PYTHONPATH": str(PROJECT_ROOT),
        "SQLALCHEMY_SILENCE_UBER_WARNING": "1",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        # Issue 17: the LINE channel seals user ids to the sender's key; it cannot open them.
        "NOTICE_PUBLIC_KEY": NOTICE_PUBLIC_KEY,
    }
    env.pop("NOTICE_PRIVATE_KEY", None)
    logs = {name: work / f"{name}.log" for name in ("actions", "rasa")}
    group = harness.Group()
    group.start(
        harness.actions_spec(
            actions_port,
            env,
            logs["actions"],
            timeout=START_TIMEOUT,
            command=[str(PYTHON), "-m", "bot.action_server"],
        )
    )
    group.start(harness.rasa_spec(
        rasa_port, env, logs["rasa"], model=MODEL, endpoints=endpoints,
        credentials=PROJECT_ROOT / "credentials.yml", timeout=START_TIMEOUT,
        command=[str(PYTHON), "-m", "bot.server"],
    ))  # fmt: skip
    canary = None
    try:
        group.wait_ready("actions")
        group.wait_ready("rasa")
        running = Assistant(
            url=f"http://127.0.0.1:{rasa_port}",
            tracker_db=work / "rasa.db",
            consent=consent,
            logs=[*logs.values(), consent.log, work / "consumer.log", sender.log],
            sender=sender,
        )
        yield running
        # The whole session has run, in any order: the logs' check (tests/e2e/log_check.py).
        canary = log_check.send_canaries(running.url, LINE_SECRET, fake_line)
    finally:
        fake_line.release_all()
        sender.stop()
        consent.stop()
        consumer.stop()
        group.stop()
    if canary is not None:  # the servers started and the session ran: fail it on any leak
        assert log_check.leaks(running.logs, canary) == [], "the e2e run's logs hold resident data"


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is missing: `make browser-deps` installs it (Debian package).")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()
