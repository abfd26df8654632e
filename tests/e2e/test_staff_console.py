"""The staff console in a real headless Chromium: log in with password and TOTP, open each view,
save screenshots; nothing sensitive on any page."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import sqlite3
import struct
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import PROJECT_ROOT
from tests.e2e.conftest import (
    BACKEND_PYTHON,
    SCREENSHOTS,
    free_port,
    start_consumer,
    wait_consumed,
    wait_until_up,
)
from tests.staff_tracker import DAY1, DAY2, build, build_broker, published

pytestmark = pytest.mark.e2e
PASSWORD = "correct horse battery staple"
VIEWS = {
    "overview": "/staff/",
    "intents": "/staff/intents",
    "fallbacks": "/staff/fallbacks",
    "funnel": "/staff/funnel",
    "conversations": "/staff/conversations",
    "access-log": "/staff/access-log",
}


def totp(secret: str, at: float | None = None) -> str:
    """RFC 6238 (SHA-1, 30 s, 6 digits), as authenticator apps compute it."""
    counter = int((at or time.time()) // 30)
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    digest = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    return f"{(struct.unpack('>I', digest[offset : offset + 4])[0] & 0x7FFFFFFF) % 1_000_000:06d}"


def generated_events(work: Path) -> Path:
    """The generated tracker store's events in a SQL event broker table."""
    return build_broker(work / "events.db", published(build(work / "rasa.db")))


def consume(env: dict[str, str], work: Path) -> None:
    """Run the analytics consumer until it has stored every generated event."""
    consumer = start_consumer(env, work / "events.db", work / "consumer.log")
    try:
        wait_consumed(work / "events.db", work / "consent.db")
    finally:
        consumer.terminate()
        consumer.wait(timeout=30)


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    work = tmp_path_factory.mktemp("staff")
    env = {
        **os.environ,
        "PYTHONPATH": str(PROJECT_ROOT / "backend"),
        "CONSENT_DATABASE_URL": f"sqlite+pysqlite:///{work / 'consent.db'}",
        "CONSENT_API_TOKEN": "e2e-staff-token-" + "0" * 32,  # 32 bytes, as the service demands
        # the generated conversations as Rasa's SQL event broker publishes them (issue 20)
        "ANALYTICS_EVENTS_DATABASE_URL": f"sqlite+pysqlite:///{generated_events(work)}",
        "STAFF_PASSWORD": PASSWORD,
    }
    created = subprocess.run(
        [str(BACKEND_PYTHON), "-m", "consent_service", "staff", "create-user", "kanri"],
        env=env, capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    secret = re.search(r"TOTP secret: ([A-Z2-7]+)", created.stdout).group(1)
    consume(env, work)  # the consumer stores them in the service's tables (migrated above)
    port = free_port()
    log = work / "console.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(BACKEND_PYTHON), "-m", "consent_service", "serve", "--port", str(port)],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        wait_until_up(f"http://127.0.0.1:{port}/health", process, log)
        yield f"http://127.0.0.1:{port}", secret
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_every_staff_url_needs_a_session(console: tuple[str, str]) -> None:
    url, _ = console
    for path in [*VIEWS.values(), "/staff/conversations/line-0:0", "/staff/export/intents.csv"]:
        response = requests.get(url + path, allow_redirects=False, timeout=10)
        assert response.status_code in (302, 401), path


def test_staff_member_logs_in_and_opens_each_view(console: tuple[str, str], browser: Any) -> None:
    url, secret = console
    page = browser.new_page(viewport={"width": 1280, "height": 900}, locale="ja-JP")
    page.goto(f"{url}/staff/login")
    page.get_by_label("ユーザー名").fill("kanri")
    page.get_by_label("パスワード").fill(PASSWORD)
    page.get_by_label("確認コード（認証アプリの6桁）").fill(totp(secret))
    page.get_by_role("button", name="ログイン").click()
    page.wait_for_url(f"{url}/staff/")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for name, path in VIEWS.items():
        page.goto(f"{url}{path}?start={DAY1}&end={DAY2}")
        assert page.locator("h1").count() == 1, name
        page.screenshot(path=str(SCREENSHOTS / f"staff-{name}.png"), full_page=True)
        html = page.content()
        assert "血圧が150" not in html and "047-123-4567" not in html, name
    page.goto(f"{url}/staff/conversations?start={DAY1}&end={DAY2}")
    page.get_by_role("link", name="開く").first.click()
    page.locator("ol.transcript").wait_for()
    page.screenshot(path=str(SCREENSHOTS / "staff-transcript.png"), full_page=True)
    assert "血圧が150" not in page.content()
    page.goto(f"{url}/staff/access-log")
    assert "view_transcript" in page.content()
    page.close()


def test_a_code_opens_one_session_only(console: tuple[str, str]) -> None:
    """The second log-in with the same code gets the same answer as any failure."""
    url, secret = console
    time.sleep(30 - time.time() % 30 + 1)  # a step whose code the other test has not used
    code = totp(secret)
    answers = []
    for _ in range(2):
        form = requests.get(f"{url}/staff/login", timeout=10)
        csrf = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)
        answer = requests.post(
            f"{url}/staff/login",
            data={"username": "kanri", "password": PASSWORD, "code": code, "csrf": csrf},
            cookies={"staff_login_csrf": form.cookies["staff_login_csrf"]},
            allow_redirects=False,
            timeout=30,
        )
        answers.append(answer.headers["location"])
    assert answers == ["/staff/", "/staff/login?error=invalid"]


@pytest.fixture(scope="module")
def counter_console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A service with a counter (窓口) account, and a consent recorded through the API."""
    work = tmp_path_factory.mktemp("counter")
    token = "e2e-counter-token-" + "1" * 32
    env = {
        **os.environ,
        "PYTHONPATH": str(PROJECT_ROOT / "backend"),
        "CONSENT_DATABASE_URL": f"sqlite+pysqlite:///{work / 'consent.db'}",
        "CONSENT_API_TOKEN": token,
        # the generated conversations as Rasa's SQL event broker publishes them (issue 20)
        "ANALYTICS_EVENTS_DATABASE_URL": f"sqlite+pysqlite:///{generated_events(work)}",
        "STAFF_PASSWORD": PASSWORD,
    }
    created = subprocess.run(
        [str(BACKEND_PYTHON), "-m", "consent_service", "staff", "create-user", "madoguchi",
         "--role", "counter"],
        env=env, capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    secret = re.search(r"TOTP secret: ([A-Z2-7]+)", created.stdout).group(1)
    consume(env, work)  # the consumer stores them in the service's tables (migrated above)
    port = free_port()
    log = work / "console.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(BACKEND_PYTHON), "-m", "consent_service", "serve", "--port", str(port)],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_up(f"{url}/health", process, log)
        yield {"url": url, "secret": secret, "token": token, "db": work / "consent.db"}
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_the_counter_withdraws_a_consent_by_its_receipt_code(
    counter_console: dict[str, Any], browser: Any
) -> None:
    """Issue 14: a resident without their phone reads the code at the city counter."""
    url, auth = counter_console["url"], {"Authorization": f"Bearer {counter_console['token']}"}
    resident = hashlib.sha256(b"resident who lost the phone").hexdigest()
    terms = requests.get(f"{url}/v1/terms", headers=auth, timeout=10).json()["version"]
    recorded = requests.post(
        f"{url}/v1/consents",
        json={"subject_id": resident, "offer_id": "city_health_vitals",
              "item_ids": ["steps", "weight"], "channel": "web", "terms_version": terms},
        headers={**auth, "Idempotency-Key": "e2e-counter-1"},
        timeout=10,
    )  # fmt: skip
    assert recorded.status_code == 201, recorded.text
    code = recorded.json()["receipt"]["receipt_code"]
    offers = requests.get(f"{url}/v1/offers", headers=auth, timeout=10).json()
    title = next(o["title_ja"] for o in offers if o["offer_id"] == "city_health_vitals")

    page = browser.new_page(viewport={"width": 1280, "height": 900}, locale="ja-JP")
    page.goto(f"{url}/staff/login")
    page.get_by_label("ユーザー名").fill("madoguchi")
    page.get_by_label("パスワード").fill(PASSWORD)
    page.get_by_label("確認コード（認証アプリの6桁）").fill(totp(counter_console["secret"]))
    page.get_by_role("button", name="ログイン").click()
    page.wait_for_url(f"{url}/staff/counter")
    # Read out as a resident might write it: lower case, without hyphens.
    page.get_by_label("受付番号").fill(code.lower().replace("-", ""))
    page.get_by_role("button", name="確認する").click()
    result = page.locator("section.counter-result")
    result.wait_for()
    assert title in result.inner_text() and "同意中" in result.inner_text()
    assert resident not in page.content()
    page.get_by_label("取り消しの理由（必須）").select_option("in_person")
    page.get_by_role("button", name="ご本人に代わって取り消す").click()
    done = page.locator("section.counter-done")
    done.wait_for()
    withdrawal_code = page.locator(".withdrawal-code").inner_text()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "staff-counter.png"), full_page=True)
    page.close()

    listed = requests.get(f"{url}/v1/subjects/{resident}/consents", headers=auth, timeout=10)
    (consent,) = listed.json()
    assert consent["status"] == "withdrawn"
    assert consent["withdrawal_receipt_code"] == withdrawal_code != code
    receipt = requests.get(
        f"{url}/v1/receipts/{consent['withdrawal_receipt_id']}",
        params={"subject_id": resident},
        headers=auth,
        timeout=10,
    ).json()
    assert (receipt["kind"], receipt["receipt_code"]) == ("withdrawal", withdrawal_code)
    with sqlite3.connect(counter_console["db"]) as db:
        rows = db.execute(
            "SELECT username, action, target FROM staff_access_log WHERE action LIKE 'counter%'"
        ).fetchall()
    assert rows == [
        ("madoguchi", "counter_lookup", code),
        ("madoguchi", "counter_withdraw", f"{code} reason=in_person"),
    ]
