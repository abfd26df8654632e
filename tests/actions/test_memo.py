"""The consultation memo (issue 18): one builder of an offer's facts for notice, read-back, memo.

Checked with the shipped catalogue served the way the consent service serves it (the helpers of
test_consent_notice.py) and the wording of domain.yml.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any, Dict, List

import pytest
from rasa_sdk.executor import CollectingDispatcher

from actions.consent import ActionConsentFlow
from actions.memo import ActionDoctorMemo, build_memo, memo_text
from actions.offer_facts import offer_facts
from tests.actions import test_consent_notice as notice_tests
from tests.actions.conftest import run_action
from tests.actions.test_consent_notice import (
    LEVEL1,
    LEVEL2,
    OFFERS,
    filled,
    notice,
    slots_of,
    tracker,
)

# The faked consent service and its settings, as the notice's tests use them.
api = notice_tests.api
consent_settings = notice_tests.consent_settings
TERMS = "2026-11-30"
LEVEL2_OFFERS = [o for o in OFFERS if o["max_level"] == 2]
TODAY = dt.date(2026, 12, 1)


def strings(value: Any) -> List[str]:
    """Every string in a JSON value."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in strings(v)]
    return []


def memo_for(api, domain, offer: Dict[str, Any], slots: Dict[str, Any] | None = None):
    t = tracker("request_doctor_memo", {"consent_offer_id": offer["offer_id"], **(slots or {})})
    dispatcher = CollectingDispatcher()
    events = run_action(ActionDoctorMemo(), dispatcher, t, domain)
    return events, dispatcher.messages


@pytest.mark.parametrize("offer", LEVEL2_OFFERS, ids=[o["offer_id"] for o in LEVEL2_OFFERS])
def test_memo_notice_and_readback_carry_the_same_facts(api, domain, offer) -> None:
    texts, _ = notice(api, domain, offer)
    shown = "\n".join(texts)
    _, messages = memo_for(api, domain, offer)
    [message] = [m for m in messages if m.get("custom")]
    memo = message["custom"]["doctor_memo"]
    written = memo_text(memo)
    facts = offer_facts(domain, offer, TERMS)
    for fact in (facts.recipient, facts.description, facts.benefits):
        assert fact in shown and fact in written
    assert facts.items_text in shown  # the memo lists the same items one a line:
    for item in facts.items:
        assert item.text in shown and item.text in written
    assert f"{TERMS}版" in texts[-1] and f"{TERMS}版" in written  # read-back and memo
    assert facts.purpose in texts[-1]  # the read-back's 使いみち
    assert facts.source and all(i.source in facts.source for i in facts.items)


def test_the_memo_holds_every_element_and_nothing_of_the_resident(api, domain) -> None:
    _, messages = memo_for(api, domain, LEVEL2)
    [message] = messages[:1]
    assert message["response"] == "utter_doctor_memo"
    memo = message["custom"]["doctor_memo"]
    text = memo_text(memo)
    for decision in ("同意する", "同意しない", "あとで決める", "いつでも取り消せます"):
        assert decision in text
    assert "同意の続き" in text and "受付番号" in text  # how to continue
    headings = [s["heading"] for s in memo["sections"]]
    [questions] = [s["lines"] for s in memo["sections"] if s["heading"].startswith("先生に")]
    assert 3 <= len(questions) <= 5 and len(headings) == 4
    assert "作成日：" in memo["date"] and re.search(r"\d{4}年\d{1,2}月\d{1,2}日", memo["date"])
    payload = json.dumps(memo, ensure_ascii=False)
    assert "resident-7" not in payload and LEVEL2["offer_id"] not in payload


def test_every_memo_string_is_domain_wording_filled_with_the_offer(api, domain) -> None:
    """Why actions/memo.py may send a custom payload (tests/test_domain.py): no literal text."""
    memo = build_memo(domain, offer_facts(domain, LEVEL2, TERMS), TODAY)
    templates = [
        str(v["text"])
        for name, variants in domain["responses"].items()
        if name.startswith("utter_fragment_memo_")
        for v in variants
    ]
    patterns = [
        re.compile("^" + re.sub(r"\\\{[a-z_]+\\\}", ".+", re.escape(t)) + "$", re.S)
        for t in templates
    ]
    for text in strings({k: v for k, v in memo.items() if k != "plain"}):
        assert any(p.match(text) for p in patterns), text


def test_plain_mode_uses_the_plain_variants(api, domain) -> None:
    _, messages = memo_for(api, domain, LEVEL2, {"plain_japanese": True})
    memo = messages[0]["custom"]["doctor_memo"]
    plain_intro = [
        v["text"] for v in domain["responses"]["utter_fragment_memo_intro"] if v.get("condition")
    ]
    assert memo["plain"] is True and memo["intro"] == plain_intro[0]


def test_after_not_yet_the_memo_keeps_the_two_buttons_open(api, domain) -> None:
    t = tracker("give_consent", offer_id=LEVEL2["offer_id"])
    events = run_action(ActionConsentFlow(), CollectingDispatcher(), t, domain)
    t = tracker("answer_family_doctor", slots_of(events), family_doctor_answer="not_yet")
    dispatcher = CollectingDispatcher()
    events2 = run_action(ActionConsentFlow(), dispatcher, t, domain)
    [recommend] = [
        m for m in dispatcher.messages if m["response"] == "utter_recommend_consult_first"
    ]
    buttons = domain["responses"]["utter_recommend_consult_first"]
    assert all("/request_doctor_memo" in [b["payload"] for b in v["buttons"]] for v in buttons)
    state = {**slots_of(events), **slots_of(events2)}
    _, messages = memo_for(api, domain, LEVEL2, state)
    assert [m["response"] for m in messages] == ["utter_doctor_memo", "utter_doctor_memo_choose"]
    assert recommend


@pytest.mark.parametrize("slots", [{}, {"consent_offer_id": LEVEL1["offer_id"]}])
def test_without_a_level2_offer_under_way_it_says_when_a_memo_can_be_made(
    api, domain, slots
) -> None:
    t = tracker("request_doctor_memo", slots)
    dispatcher = CollectingDispatcher()
    run_action(ActionDoctorMemo(), dispatcher, t, domain)
    assert [m["response"] for m in dispatcher.messages] == ["utter_doctor_memo_no_offer"]
    assert not any(m.get("custom") for m in dispatcher.messages)
    assert filled(domain, dispatcher.messages[0])


def test_in_plain_mode_every_memo_line_meets_the_plain_target(domain) -> None:
    """Issue 18: the memo's wording passes the readability check of plain mode (issue 16)."""
    from fugashi import Tagger
    from jreadability import compute_readability

    from scripts import readability
    from tests.test_readability import PLAIN_MIN_TARGET

    tagger = Tagger()
    for name, variants in domain["responses"].items():
        if not (name.startswith("utter_fragment_memo_") or name.startswith("utter_doctor_memo")):
            continue
        plain = [v for v in variants if v.get("condition")] or variants[:1]
        text = readability.readable_text(str(plain[0]["text"]))
        assert compute_readability(text, tagger) >= PLAIN_MIN_TARGET, name


def test_in_plain_mode_the_memo_carries_the_plain_notice_s_facts(api, domain) -> None:
    """The memo in plain mode states the items as the plain notice does (one builder)."""
    _, messages = memo_for(api, domain, LEVEL2, {"plain_japanese": True})
    written = memo_text(messages[0]["custom"]["doctor_memo"])
    facts = offer_facts(domain, LEVEL2, TERMS, plain=True)
    assert all(item.text in written and item.source in written for item in facts.items)
    assert facts.benefits in written
