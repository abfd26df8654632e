"""The notice before "はい" (issue 13), the questions around it, and the new answering actions.

The notice is checked with the shipped catalogue (backend/consent_service/catalog/catalog.yml)
served the way the consent service serves it, and with the wording of domain.yml filled in the way
Rasa fills it: every element a resident needs must be on the two screens before the yes, each
screen must fit a phone, and every offer must read as an example of the demonstration.
"""

from __future__ import annotations

import json
import re
from typing import Any, Dict, Iterator, List

import pytest
import requests
import responses
import yaml
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.consent import ActionConsentFlow, ActionShowTerms
from actions.consent_client import get_client
from actions.contact import ActionAnswerNoFamilyDoctor
from actions.notice import ActionAnswerWithRetention
from actions.yes_no import ActionHandleYesNo
from bot.settings import get_settings
from tests.actions.conftest import FAKE_API, run_action, user_event
from tests.actions.conftest import responses as sent
from tests.conftest import PROJECT_ROOT

API = FAKE_API
CATALOG = PROJECT_ROOT / "backend" / "consent_service" / "catalog" / "catalog.yml"
TERMS_TEXT = "# 利用約款（要旨）\n\n9. 同意はいつでも撤回できます。"
# A phone screen: about 20 full-width characters a line, about 20 lines.
PHONE_SCREEN = 400
C1 = "0b6f3c2a-5d1e-4f7a-9c8b-2e4d6f8a0c1e"


def catalogue() -> Dict[str, Any]:
    return dict(yaml.safe_load(CATALOG.read_text(encoding="utf-8")))


def served_offers() -> List[Dict[str, Any]]:
    """The catalogue's offers as `GET /v1/offers` serves them (approvals taken as in force)."""
    spec = catalogue()
    items = {i["item_id"]: i for i in spec["items"]}
    recipients = {r["id"]: r for r in spec["recipients"]}
    purposes = {p["id"]: p for p in spec["purposes"]}
    offers = []
    for offer in spec["offers"]:
        approval = offer.get("approval")
        offers.append(
            {
                "offer_id": offer["offer_id"],
                "title_ja": offer["title_ja"],
                "recipient": recipients[offer["recipient"]],
                "purpose": {"description_ja": "", **purposes[offer["purpose"]]},
                "description_ja": offer.get("description_ja", ""),
                "items": [
                    {"item_id": i, "level": items[i]["level"], "name_ja": items[i]["name_ja"]}
                    for i in offer["items"]
                ],
                "max_level": max(items[i]["level"] for i in offer["items"]),
                "benefits": offer["benefits"],
                "ethics_approval": approval,
                "consent_required": True,
                "consentable": True,
                "version": f"version-of-{offer['offer_id']}",
            }
        )
    return offers


OFFERS = [o for o in served_offers() if o["max_level"] >= 1]
LEVEL1 = next(o for o in OFFERS if o["max_level"] == 1)
LEVEL2 = next(o for o in OFFERS if o["max_level"] == 2 and o["ethics_approval"])


@pytest.fixture(autouse=True)
def consent_settings(monkeypatch: pytest.MonkeyPatch, consent_env: None) -> None:
    """The faked consent service, no offers cache, and the default retention and contacts."""
    monkeypatch.setenv("CONSENT_OFFERS_CACHE_SECONDS", "0")
    for name in ("RETENTION_DAYS", "CITY_HEALTH_CENTRE_NAME", "CITY_HEALTH_CENTRE_PHONE"):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    get_client.cache_clear()


@pytest.fixture
def api() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.get(f"{API}/v1/offers", json=OFFERS)
        for offer in OFFERS:
            mock.get(f"{API}/v1/offers/{offer['offer_id']}", json=offer)
        mock.get(
            f"{API}/v1/terms",
            json={"version": "2026-11-30", "sha256": "x", "text_ja": TERMS_TEXT},
        )
        mock.get(f"{API}/v1/catalog/items", json=[])
        yield mock


def tracker(
    intent: str, slots: Dict[str, Any] | None = None, text: str = "…", **entities: str
) -> Tracker:
    event = user_event(text, intent, list(entities.items()))
    return Tracker(
        "resident-7", slots or {}, event["parse_data"], [event], False, None, {}, "action_listen"
    )


def run(action: Any, t: Tracker, domain: Dict[str, Any]) -> tuple[list, CollectingDispatcher]:
    dispatcher = CollectingDispatcher()
    return run_action(action, dispatcher, t, domain), dispatcher


def filled(domain: Dict[str, Any], message: Dict[str, Any]) -> str:
    """The text a resident reads: the response's template with the action's values."""
    template = str(domain["responses"][message["response"]][0]["text"])
    values = {k: v for k, v in message.items() if k not in ("response", "buttons")}
    return template.format(**values)


def slots_of(events: List[Dict[str, Any]]) -> Dict[str, Any]:
    return {e["name"]: e["value"] for e in events if e["event"] == "slot"}


def posts(api: responses.RequestsMock) -> list:
    return [c for c in api.calls if c.request.method == "POST"]


def notice(api, domain, offer: Dict[str, Any]) -> tuple[List[str], List[Dict[str, Any]]]:
    """Everything shown from choosing the offer to the read-back's question."""
    t = tracker("give_consent", offer_id=offer["offer_id"])
    events, dispatcher = run(ActionConsentFlow(), t, domain)
    messages = list(dispatcher.messages)
    if offer["max_level"] >= 2:
        state = slots_of(events)
        t = tracker("answer_family_doctor", state, family_doctor_answer="consulted")
        _, dispatcher = run(ActionConsentFlow(), t, domain)
        messages += dispatcher.messages
    assert messages[-1]["response"].startswith("utter_consent_readback")
    return [filled(domain, m) for m in messages], messages


# ---- the notice ---------------------------------------------------------------------------


@pytest.mark.parametrize("offer", OFFERS, ids=[o["offer_id"] for o in OFFERS])
def test_the_notice_names_everything_before_the_yes(api, domain, offer) -> None:
    texts, messages = notice(api, domain, offer)
    shown = "\n".join(texts)
    spec = catalogue()
    assert spec["controller"]["name_ja"] in shown  # who runs it
    assert "船橋市役所の担当窓口" in shown  # a contact point (none configured here)
    assert offer["recipient"]["name_ja"] in shown  # the recipient by name
    assert offer["description_ja"] and offer["description_ja"] in shown  # purpose, plain words
    for item in offer["items"]:
        assert f"{item['name_ja']}（レベル{item['level']}）" in shown  # items and levels
    assert "情報の出どころ：" in shown  # where the data comes from
    assert "取り消すまで" in shown  # how long
    assert "取り消した時刻から、この同意にもとづく新しい提供は行われません" in shown
    assert "提供先の責任" in shown  # what withdrawal does to data already given
    for benefit in offer["benefits"]:
        assert benefit["description_ja"] in shown  # the benefit
    assert "2026-11-30版" in shown  # the terms' version ...
    buttons = domain["responses"][messages[-1]["response"]][0]["buttons"]
    assert "/ask_terms" in [b["payload"] for b in buttons]  # ... readable in the chat
    assert "実証（デモ）の例" in texts[0] and "実証の例" in texts[-1]  # labelled, both screens
    assert not posts(api)


@pytest.mark.parametrize("offer", OFFERS, ids=[o["offer_id"] for o in OFFERS])
def test_the_notice_fits_two_phone_screens(api, domain, offer) -> None:
    texts, messages = notice(api, domain, offer)
    screens = [
        t
        for t, m in zip(texts, messages, strict=True)
        if m["response"].startswith(("utter_consent_offer_explanation", "utter_consent_readback"))
    ]
    assert len(screens) == 2
    assert [len(t) for t in screens if len(t) > PHONE_SCREEN] == []


def test_level2_notice_recommends_the_family_doctor_and_shows_the_example_approval(
    api, domain
) -> None:
    texts, messages = notice(api, domain, LEVEL2)
    pairs = zip(texts, messages, strict=True)
    [ask] = [t for t, m in pairs if m["response"] == "utter_ask_family_doctor"]
    assert "推奨" in ask and "条件ではありません" in ask
    assert LEVEL2["ethics_approval"]["approved_by"] in texts[0]
    assert "架空" in LEVEL2["ethics_approval"]["approved_by"]  # never an approval as a fact
    assert "かかりつけ医への相談：相談した" in texts[-1]


def test_a_configured_contact_is_the_notice_contact_point(api, domain, monkeypatch) -> None:
    monkeypatch.setenv("CITY_CONTACT_NAME", "健康づくり課")
    monkeypatch.setenv("CITY_CONTACT_PHONE", "000-0000-0000")
    monkeypatch.setenv("CITY_CONTACT_HOURS", "平日")
    get_settings.cache_clear()
    texts, _ = notice(api, domain, LEVEL1)
    assert "健康づくり課（電話：000-0000-0000、受付：平日）" in texts[0]


def test_every_catalogue_offer_reads_as_a_demonstration() -> None:
    spec = catalogue()
    assert "仮" in spec["controller"]["name_ja"]
    for offer in spec["offers"]:
        assert offer["description_ja"].endswith("例です。"), offer["offer_id"]
        if offer.get("approval"):
            assert "架空" in offer["approval"]["approved_by"], offer["offer_id"]
    businesses = [r for r in spec["recipients"] if r["kind"] == "business"]
    assert businesses and all("架空" in r["name_ja"] for r in businesses)
    assert all("未定" in r["name_ja"] for r in spec["recipients"] if r["kind"] == "city")


# ---- answers at the read-back and at "どうしますか？" ------------------------------------------


def not_yet_state() -> Dict[str, Any]:
    return {
        "consent_pending": "consent",
        "consent_stage": "doctor_not_yet",
        "consent_offer_id": LEVEL2["offer_id"],
        "consent_request_key": "abc123",
        "family_doctor_consulted": "not_yet",
    }


def test_a_typed_yes_after_not_yet_is_asked_again(api, domain) -> None:
    events, dispatcher = run(ActionHandleYesNo(), tracker("affirm", not_yet_state()), domain)
    assert sent(dispatcher) == ["utter_consent_choose_continue_or_pause"]
    assert events == []  # still at "どうしますか？"
    assert not posts(api)


def test_typed_consent_words_after_not_yet_are_asked_again(api, domain) -> None:
    _, dispatcher = run(ActionConsentFlow(), tracker("give_consent", not_yet_state()), domain)
    assert sent(dispatcher) == ["utter_consent_choose_continue_or_pause"]


def test_the_proceed_button_continues_and_a_no_stops(api, domain) -> None:
    t = tracker("affirm", not_yet_state(), consent_choice="proceed")
    events, dispatcher = run(ActionHandleYesNo(), t, domain)
    assert sent(dispatcher) == ["utter_consent_readback_level2"]
    assert slots_of(events)["consent_stage"] == "confirming"
    t = tracker("deny", not_yet_state(), consent_choice="pause")
    _, dispatcher = run(ActionHandleYesNo(), t, domain)
    assert sent(dispatcher) == ["utter_consent_paused"]


def test_the_choice_buttons_name_the_choice(domain) -> None:
    for name in ("utter_recommend_consult_first", "utter_consent_choose_continue_or_pause"):
        payloads = [b["payload"] for b in domain["responses"][name][0]["buttons"]]
        # After "not yet" a third button asks for the consultation memo (issue 18).
        memo = ["/request_doctor_memo"] if name == "utter_recommend_consult_first" else []
        assert payloads == [
            '/deny{{"consent_choice": "pause"}}',
            '/affirm{{"consent_choice": "proceed"}}',
            *memo,
        ]


def confirming_state() -> Dict[str, Any]:
    return {
        "consent_pending": "consent",
        "consent_stage": "confirming",
        "consent_offer_id": LEVEL1["offer_id"],
        "consent_request_key": "abc123",
        "consent_terms_version": "2026-11-30",
        "consent_offer_version": LEVEL1["version"],
        "consent_item_ids": [i["item_id"] for i in LEVEL1["items"]],
    }


def test_typing_douishimasu_at_the_read_back_is_the_yes(api, domain) -> None:
    api.post(
        f"{API}/v1/consents",
        json={"consent_id": C1, "status": "active", "receipt": {"receipt_id": "rcpt-1"}},
        status=201,
    )
    t = tracker("give_consent", confirming_state(), text="同意します。")
    events, dispatcher = run(ActionConsentFlow(), t, domain)
    assert sent(dispatcher) == ["utter_consent_recorded"]
    [post] = posts(api)
    assert json.loads(post.request.body)["offer_id"] == LEVEL1["offer_id"]
    assert slots_of(events)["consent_pending"] is None


def test_consent_words_naming_an_item_at_the_read_back_record_nothing(api, domain) -> None:
    t = tracker("give_consent", confirming_state(), data_item="genetic")
    _, dispatcher = run(ActionConsentFlow(), t, domain)
    assert "utter_consent_recorded" not in sent(dispatcher)
    assert not posts(api)


def test_consent_words_with_no_open_question_still_list_the_offers(api, domain) -> None:
    _, dispatcher = run(ActionConsentFlow(), tracker("give_consent"), domain)
    assert sent(dispatcher) == ["utter_consent_choose_offer"]


# ---- "もっと詳しく": the rest of the notice and the terms in chat ------------------------------


def test_more_details_show_the_terms_and_put_the_question_again(api, domain) -> None:
    _, dispatcher = run(ActionShowTerms(), tracker("ask_terms", confirming_state()), domain)
    assert sent(dispatcher) == [
        "utter_terms_intro",
        "utter_terms_text",
        "utter_terms_back_to_question",
    ]
    intro, terms, _ = (filled(domain, m) for m in dispatcher.messages)
    assert "90日" in intro and catalogue()["controller"]["name_ja"] in intro
    assert terms.startswith("利用約款（2026-11-30版）\n利用約款（要旨）")  # no Markdown marks
    assert "撤回" in terms
    assert not posts(api)


def test_terms_outside_a_consent_put_no_question(api, domain) -> None:
    _, dispatcher = run(ActionShowTerms(), tracker("ask_terms"), domain)
    assert sent(dispatcher) == ["utter_terms_intro", "utter_terms_text"]


def test_terms_while_the_service_is_down_apologise(domain) -> None:
    with responses.RequestsMock() as mock:
        mock.get(f"{API}/v1/terms", body=requests.ConnectionError("down"))
        _, dispatcher = run(ActionShowTerms(), tracker("ask_terms"), domain)
    assert sent(dispatcher) == ["utter_consent_service_down_generic"]


def test_the_shipped_terms_say_what_withdrawal_does() -> None:
    spec = catalogue()
    text = (CATALOG.parent / spec["terms"]["file"]).read_text(encoding="utf-8")
    assert "撤回した時刻より後に、その同意にもとづく新たな提供は行いません" in text
    assert "提供先が責任を負います" in text
    assert "ただちに提供が止ま" not in text
    assert "推奨であり、条件ではありません" in text


# ---- the retention period and the family-doctor alternatives -----------------------------


@pytest.mark.parametrize(
    ("intent", "response"),
    [("greet", "utter_greet"), ("ask_retention", "utter_retention"),
     ("ask_delete_data", "utter_delete_data")],
)  # fmt: skip
def test_retention_answers_name_the_configured_days(domain, monkeypatch, intent, response) -> None:
    _, dispatcher = run(ActionAnswerWithRetention(), tracker(intent), domain)
    assert sent(dispatcher) == [response]
    assert "90日" in filled(domain, dispatcher.messages[0])
    monkeypatch.setenv("RETENTION_DAYS", "30")
    get_settings.cache_clear()
    _, dispatcher = run(ActionAnswerWithRetention(), tracker(intent), domain)
    assert "30日" in filled(domain, dispatcher.messages[0])


def test_the_greeting_says_what_this_is(domain) -> None:
    _, dispatcher = run(ActionAnswerWithRetention(), tracker("greet"), domain)
    text = filled(domain, dispatcher.messages[0])
    assert "調査報告書" in text and "実証（デモ）" in text and "案" in text
    assert "伏せ字" in text
    assert "船橋市の「情報銀行」" not in text


def test_no_family_doctor_names_the_professionals_and_no_unconfigured_centre(domain) -> None:
    _, dispatcher = run(ActionAnswerNoFamilyDoctor(), tracker("ask_no_family_doctor"), domain)
    assert sent(dispatcher) == ["utter_no_family_doctor"]
    text = filled(domain, dispatcher.messages[0])
    assert all(p in text for p in ("医師", "歯科医師", "薬剤師", "保健師"))
    assert "推奨" in text
    assert not re.search(r"保健センター|\d{2,4}-\d{2,4}-\d{3,4}", text)


def test_no_family_doctor_offers_a_configured_health_centre(domain, monkeypatch) -> None:
    monkeypatch.setenv("CITY_HEALTH_CENTRE_NAME", "テスト保健センター")
    monkeypatch.setenv("CITY_HEALTH_CENTRE_PHONE", "000-1111-2222")
    get_settings.cache_clear()
    _, dispatcher = run(ActionAnswerNoFamilyDoctor(), tracker("ask_no_family_doctor"), domain)
    assert sent(dispatcher) == ["utter_no_family_doctor", "utter_health_centre"]
    assert dispatcher.messages[1]["centre_name"] == "テスト保健センター"
    assert dispatcher.messages[1]["centre_phone"] == "000-1111-2222"


@pytest.mark.parametrize(
    "typed", ["同意しません", "同意しない", "同意したくないです", "やっぱり別の提供先に同意したい"]
)
def test_a_refusal_read_as_give_consent_at_the_read_back_records_nothing(
    api, domain, typed: str
) -> None:
    # The classifier reads 「同意しません」 as give_consent; only a plain 「同意します」 is a yes.
    t = tracker("give_consent", confirming_state(), text=typed)
    events, dispatcher = run(ActionConsentFlow(), t, domain)
    assert posts(api) == []
    assert "utter_consent_recorded" not in sent(dispatcher)
    assert sent(dispatcher)[0] == "utter_consent_resume"
    assert slots_of(events)["consent_pending"] == "consent"
