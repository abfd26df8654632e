"""The staff console in a real headless Chromium: log in with password and TOTP, open each view,
save screenshots; nothing sensitive on any page."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import PROJECT_ROOT
from tests.e2e.conftest import (
    SCREENSHOTS,
    create_staff_user,
    staff_console,
    staff_log_in,
    staff_login_post,
    start_consumer,
    totp,
    wait_consumed,
)
from tests.staff_tracker import DAY1, DAY2, build, build_broker, published

pytestmark = pytest.mark.e2e
VIEWS = {
    "overview": "/staff/",
    "intents": "/staff/intents",
    "fallbacks": "/staff/fallbacks",
    "funnel": "/staff/funnel",
    "conversations": "/staff/conversations",
    "access-log": "/staff/access-log",
}


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
    }
    secret = create_staff_user(env, "kanri")
    consume(env, work)  # the consumer stores them in the service's tables (migrated above)
    with staff_console(env, work) as url:
        yield url, secret


def test_every_staff_url_needs_a_session(console: tuple[str, str]) -> None:
    url, _ = console
    for path in [*VIEWS.values(), "/staff/conversations/line-0:0", "/staff/export/intents.csv"]:
        response = requests.get(url + path, allow_redirects=False, timeout=10)
        assert response.status_code in (302, 401), path


def test_staff_member_logs_in_and_opens_each_view(console: tuple[str, str], browser: Any) -> None:
    url, secret = console
    page = browser.new_page(viewport={"width": 1280, "height": 900}, locale="ja-JP")
    staff_log_in(page, url, "kanri", secret, landing=f"{url}/staff/")
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
        answers.append(staff_login_post(url, "kanri", code).headers["location"])
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
    }
    secret = create_staff_user(env, "madoguchi", "counter")
    consume(env, work)  # the consumer stores them in the service's tables (migrated above)
    with staff_console(env, work) as url:
        yield {"url": url, "secret": secret, "token": token, "db": work / "consent.db"}


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
    staff_log_in(page, url, "madoguchi", counter_console["secret"], landing=f"{url}/staff/counter")
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
