"""Issue 18's done-when in a real headless Chromium: the consultation memo, printed.

"まだ相談していない" for a level-2 offer → the 「先生に見せるメモ」 button → the memo link in the
chat → its page printed by Chromium (`page.pdf()`, A4): the PDF's text holds every element the
issue lists (the offer's recipient, purpose, items with levels and what they contain, benefit;
yes / no / later and withdrawal; 3-5 questions; terms version; date; how to continue) word for
word as the consent service's catalogue and domain.yml say them, and nothing that identifies
the resident (session token, pseudonym, sender id). After `MEMO_TTL_SECONDS` (20 s in the e2e
stack, tests/e2e/conftest.py) the same link answers 410 with the page saying how to get a new
memo.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from typing import Any, Dict
from zoneinfo import ZoneInfo

import pytest
import requests
import yaml

from tests.conftest import PROJECT_ROOT
from tests.e2e.conftest import SCREENSHOTS, Assistant
from tests.e2e.memo_pdf import pdf_text

pytestmark = pytest.mark.e2e
WAIT_MS = 30_000
OFFER_ID = "city_health_checkup"  # a level-2 offer of the shipped catalogue
MEMO_TTL_SECONDS = 20.0
CATALOG = PROJECT_ROOT / "backend" / "consent_service" / "catalog" / "catalog.yml"


def squeeze(text: str) -> str:
    """Text as compared with a PDF's: no blanks or line breaks."""
    return re.sub(r"\s+", "", text)


def fragment(domain: Dict[str, Any], fragment_name: str, /, **values: Any) -> str:
    text = str(domain["responses"][f"utter_fragment_{fragment_name}"][0]["text"])
    return text.format(**values) if values else text


def click(page: Any, name: str) -> None:
    """Press an answer's button and wait for the next answer."""
    bot = page.locator("#messages li.bot")
    before = bot.count()
    page.locator("#quick-replies button", has_text=name).first.click(timeout=WAIT_MS)
    bot.nth(before).wait_for(timeout=WAIT_MS)


def test_not_yet_memo_link_printed_then_expired(assistant: Assistant, browser: Any) -> None:
    domain = yaml.safe_load((PROJECT_ROOT / "domain.yml").read_text(encoding="utf-8"))
    catalog = yaml.safe_load(CATALOG.read_text(encoding="utf-8"))
    offer = next(o for o in catalog["offers"] if o["offer_id"] == OFFER_ID)
    items = {i["item_id"]: i for i in catalog["items"]}
    recipient = next(r for r in catalog["recipients"] if r["id"] == offer["recipient"])

    context = browser.new_context(locale="ja-JP", viewport={"width": 390, "height": 844})
    page = context.new_page()
    page.goto(f"{assistant.url}/webhooks/socketio/chat")
    page.locator("#messages li.bot").first.wait_for(timeout=WAIT_MS)
    bot = page.locator("#messages li.bot")
    before = bot.count()
    page.fill("#input", "同意の手続きをしたいです")
    page.press("#input", "Enter")
    bot.nth(before).wait_for(timeout=WAIT_MS)
    click(page, offer["title_ja"])
    click(page, "まだ相談していない")
    page.locator("#quick-replies button", has_text="先生に見せるメモ").wait_for(timeout=WAIT_MS)
    page.locator("#quick-replies button", has_text="先生に見せるメモ").click()
    link = page.locator("#messages li.memo-link a")
    link.wait_for(timeout=WAIT_MS)
    made = time.monotonic()
    today = dt.datetime.now(ZoneInfo("Asia/Tokyo")).date()
    assert link.inner_text() == fragment(domain, "memo_link")
    href = str(link.get_attribute("href"))
    assert re.fullmatch(r"memo/[A-Za-z0-9_-]{43}", href)
    # The two choices are still offered after the memo.
    page.locator("#quick-replies button", has_text="このまま進める").wait_for(timeout=WAIT_MS)
    token = str(page.evaluate("() => sessionStorage.getItem('funabashi-infobank-session') || ''"))

    memo_page = context.new_page()
    answer = memo_page.goto(f"{assistant.url}/webhooks/socketio/{href}")
    assert answer is not None and answer.status == 200
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    memo_page.screenshot(path=str(SCREENSHOTS / "memo-phone.png"), full_page=True)
    pdf = memo_page.pdf(format="A4", print_background=True)
    (SCREENSHOTS / "memo.pdf").write_bytes(pdf)
    printed = squeeze(pdf_text(pdf))

    expected = [
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
    missing = [text for text in expected if squeeze(text) not in printed]
    assert missing == []
    assert "同意の続き" in printed and "レベル2" in printed
    # Nothing that identifies the resident: no session token or part of it, no sender id.
    for secret in re.findall(r"[A-Za-z0-9_-]{12,}", token):
        assert secret not in printed
    assert not re.search(r"[A-Za-z0-9_-]{20,}", printed)
    context.close()

    # After its time the link no longer serves the memo.
    time.sleep(max(0.0, MEMO_TTL_SECONDS + 1 - (time.monotonic() - made)))
    gone = requests.get(f"{assistant.url}/webhooks/socketio/{href}", timeout=10)
    assert gone.status_code == 410
    assert "新しいメモ" in gone.text and fragment(domain, "memo_title") not in gone.text
