"""Issue 18 at the city counter, in a real headless Chromium: the memo printed from /staff.

A counter staff member logs in to the staff console (password + TOTP) — a console on the
assistant's consent database that asks the running Rasa server (STAFF_RASA_URL, RASA_API_TOKEN),
as tests/e2e/test_staff_labels.py starts one — follows the counter page's link to the memo,
picks a level-2 offer and opens the memo. The page, printed by Chromium (`page.pdf()`, A4), holds
every element the issue lists, word for word as the catalogue and domain.yml say them (the same
list as the chat's memo, tests/e2e/test_memo.py), and nothing that identifies anyone. The
console served exactly the page the Rasa side makes (`bot/webchat/memo_counter.py`), which
refuses a call without the token; the print is in the access log; and no conversation or event
was added to Rasa's tracker store or event broker.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Dict, List
from zoneinfo import ZoneInfo

import pytest
import requests
import yaml

from tests.conftest import PROJECT_ROOT
from tests.e2e.conftest import (
    RASA_API_TOKEN,
    SCREENSHOTS,
    Assistant,
    create_staff_user,
    staff_console,
    staff_log_in,
)
from tests.e2e.memo_pdf import pdf_text
from tests.e2e.test_accessibility import serious_violations

pytestmark = pytest.mark.e2e
OFFER_ID = "city_health_checkup"  # a level-2 offer of the shipped catalogue
CATALOG = PROJECT_ROOT / "backend" / "consent_service" / "catalog" / "catalog.yml"
RASA_MEMO = "/webhooks/socketio/counter/memo/"
USER = "madoguchi"


def squeeze(text: str) -> str:
    """Text as compared with a PDF's: no blanks or line breaks."""
    return re.sub(r"\s+", "", text)


def fragment(domain: Dict[str, Any], fragment_name: str, /, **values: Any) -> str:
    text = str(domain["responses"][f"utter_fragment_{fragment_name}"][0]["text"])
    return text.format(**values) if values else text


def expected_elements(domain: Dict[str, Any], catalog: Dict[str, Any], today: dt.date) -> List[str]:
    """Every element of issue 18's memo for OFFER_ID, as the catalogue and domain.yml word it."""
    offer = next(o for o in catalog["offers"] if o["offer_id"] == OFFER_ID)
    items = {i["item_id"]: i for i in catalog["items"]}
    recipient = next(r for r in catalog["recipients"] if r["id"] == offer["recipient"])
    return [
        fragment(domain, "memo_title"),
        fragment(domain, "memo_recipient", recipient=recipient["name_ja"]),
        fragment(domain, "memo_purpose", description=offer["description_ja"]),
        *(
            fragment(
                domain,
                "memo_item",
                item=fragment(domain, "item", name=items[i]["name_ja"], level=items[i]["level"]),
                source=fragment(domain, f"source_level{items[i]['level']}"),
            )
            for i in offer["items"]
        ),
        *(b["description_ja"] for b in offer["benefits"]),
        *(fragment(domain, f"memo_decide_{d}") for d in ("yes", "no", "later", "withdraw")),
        *(fragment(domain, f"memo_question_{n}") for n in (1, 2, 3)),
        *(fragment(domain, f"memo_continue_{c}") for c in ("chat", "receipt")),
        fragment(domain, "memo_terms", terms_version=catalog["terms"]["version"]),
        fragment(domain, "memo_date", year=today.year, month=today.month, day=today.day),
        fragment(domain, "memo_no_identifier"),
    ]


def consent_db(assistant: Assistant) -> Path:
    return Path(assistant.consent.env["CONSENT_DATABASE_URL"].removeprefix("sqlite+pysqlite:///"))


def event_rows(database: Path) -> int:
    """The rows of the `events` table (Rasa's tracker store, or its SQL event broker)."""
    with contextlib.closing(sqlite3.connect(database)) as db:
        return int(db.execute("SELECT count(*) FROM events").fetchone()[0])


@pytest.fixture(scope="module")
def counter_console(
    assistant: Assistant, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, str]]:
    """A console on the assistant's consent database that asks the running Rasa; a counter user."""
    work = tmp_path_factory.mktemp("counter-memo")
    env = {
        **assistant.consent.env,
        "STAFF_RASA_URL": assistant.url,
        "RASA_API_TOKEN": RASA_API_TOKEN,
        "STAFF_RASA_TIMEOUT_SECONDS": "30",
    }
    secret = create_staff_user(env, USER, "counter")
    with staff_console(env, work) as url:
        yield {"url": url, "secret": secret}


def test_the_rasa_side_refuses_the_counter_memo_without_the_token(assistant: Assistant) -> None:
    url = assistant.url + RASA_MEMO + OFFER_ID
    assert requests.get(url, timeout=30).status_code == 401
    wrong = {"Authorization": "Bearer " + "x" * 43}
    assert requests.get(url, headers=wrong, timeout=30).status_code == 401
    right = {"Authorization": f"Bearer {RASA_API_TOKEN}"}
    unknown = requests.get(assistant.url + RASA_MEMO + "no_such_offer", headers=right, timeout=30)
    assert unknown.status_code == 404


def test_counter_staff_print_the_memo_of_a_level2_offer(
    assistant: Assistant, counter_console: dict[str, str], browser: Any
) -> None:
    domain = yaml.safe_load((PROJECT_ROOT / "domain.yml").read_text(encoding="utf-8"))
    catalog = yaml.safe_load(CATALOG.read_text(encoding="utf-8"))
    title = next(o for o in catalog["offers"] if o["offer_id"] == OFFER_ID)["title_ja"]
    events_db = assistant.tracker_db.parent / "events.db"
    tracked, published = event_rows(assistant.tracker_db), event_rows(events_db)

    url = counter_console["url"]
    context = browser.new_context(locale="ja-JP", viewport={"width": 1280, "height": 900})
    page = context.new_page()
    staff_log_in(page, url, USER, counter_console["secret"], landing=f"{url}/staff/counter")
    page.get_by_role("link", name=re.compile("相談メモ")).click()
    page.wait_for_url(f"{url}/staff/counter/memo")
    assert serious_violations(page) == []  # axe-core, as on the other staff views
    choice = page.locator(f'input[name="offer"][value="{OFFER_ID}"]')
    assert title in page.locator("label", has=choice).inner_text()
    choice.check()
    page.get_by_role("button", name="相談メモを開く").click()
    page.wait_for_url(f"{url}/staff/counter/memo/print?offer={OFFER_ID}")
    today = dt.datetime.now(ZoneInfo("Asia/Tokyo")).date()
    # The stylesheet came through the console too (print CSS: A4, large type).
    assert page.evaluate("() => document.styleSheets.length") == 1
    assert page.evaluate("() => document.styleSheets[0].cssRules.length") > 0

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "counter-memo.png"), full_page=True)
    pdf = page.pdf(format="A4", print_background=True)
    (SCREENSHOTS / "counter-memo.pdf").write_bytes(pdf)
    printed = squeeze(pdf_text(pdf))
    missing = [text for text in expected_elements(domain, catalog, today)
               if squeeze(text) not in printed]  # fmt: skip
    assert missing == []
    assert "同意の続き" in printed and "レベル2" in printed
    # Nothing that identifies anyone: no token, pseudonym or id of any kind, no staff name.
    assert not re.search(r"[A-Za-z0-9_-]{20,}", printed)
    assert USER not in printed and OFFER_ID not in printed

    # The console served the Rasa side's page as it is (the chat's builder and template).
    again = page.goto(f"{url}/staff/counter/memo/print?offer={OFFER_ID}")  # a second print
    assert again is not None and again.status == 200
    served = again.text()
    made = requests.get(
        assistant.url + RASA_MEMO + OFFER_ID,
        headers={"Authorization": f"Bearer {RASA_API_TOKEN}"},
        timeout=30,
    )
    assert made.status_code == 200 and served == made.text
    context.close()

    # Each print is in the access log; no conversation, no event on the Rasa side.
    with contextlib.closing(sqlite3.connect(consent_db(assistant))) as db:
        logged = db.execute(
            "SELECT username, target FROM staff_access_log WHERE action = 'counter_memo_printed'"
        ).fetchall()
    assert logged == [(USER, OFFER_ID), (USER, OFFER_ID)]
    assert event_rows(assistant.tracker_db) == tracked
    assert event_rows(events_db) == published
