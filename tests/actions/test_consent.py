"""The consent, withdrawal and listing actions against a mocked consent service (HTTP)."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any, Dict, Iterator, List

import pytest
import requests
import responses
from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.consent import ActionConsentFlow
from actions.consent_client import subject_id
from actions.withdrawal import ActionListConsents, ActionWithdrawalFlow
from actions.yes_no import ActionHandleYesNo
from bot.settings import get_settings
from tests.actions.conftest import FAKE_API, FAKE_PSEUDONYM_KEY, run_action, user_event
from tests.actions.conftest import responses as sent

API = FAKE_API
KEY = FAKE_PSEUDONYM_KEY
SENDER = "resident-42"
SUBJECT = hmac.new(KEY.encode(), f"rest:{SENDER}".encode(), hashlib.sha256).hexdigest()

LEVEL1 = {
    "offer_id": "city_health_vitals",
    "title_ja": "市の健康づくり（歩数・血圧）",
    "recipient": {"id": "city_health", "name_ja": "船橋市 健康づくり担当部署", "kind": "city"},
    "purpose": {"id": "health_support", "name_ja": "健康支援・保健指導", "description_ja": ""},
    "description_ja": "",
    "items": [
        {"item_id": "steps", "level": 1, "name_ja": "歩数（歩行）"},
        {"item_id": "blood_pressure", "level": 1, "name_ja": "血圧"},
    ],
    "max_level": 1,
    "benefits": [
        {"kind": "economic", "description_ja": "ポイント"},
        {"kind": "health", "description_ja": "健康づくり教室のご案内"},
    ],
    "ethics_approval": None,
    "consent_required": True,
    "consentable": True,
    "version": "a1" * 32,
}
LEVEL2 = {
    **LEVEL1,
    "offer_id": "city_health_checkup",
    "version": "b2" * 32,
    "title_ja": "市の保健指導（健診結果）",
    "items": [{"item_id": "health_checkup", "level": 2, "name_ja": "健診等情報"}],
    "max_level": 2,
    "benefits": [{"kind": "health", "description_ja": "保健指導のご案内"}],
    "ethics_approval": {
        "approved_by": "データ倫理審査会",
        "medical_advisors": "医師",
        "approved_at": "2026-10-15T01:00:00Z",
        "valid_until": "2028-03-31T14:59:59Z",
        "scope_item_ids": ["health_checkup"],
    },
}
CLOSED = {**LEVEL1, "offer_id": "restaurants_allergy", "consentable": False}
RECEIPT = {"receipt_id": "rcpt-0001", "kind": "consent"}
# Consent ids are the service's UUIDs.
C1 = "0b6f3c2a-5d1e-4f7a-9c8b-2e4d6f8a0c1e"
C2 = "7a1d9e3b-2c4f-4b6a-8d0e-5f7a9c1b3d5e"
C9 = "e9c7a5b3-1d2f-4e6a-9b8c-0d1e2f3a4b5c"
C999 = "99999999-9999-4999-8999-999999999999"


@pytest.fixture(autouse=True)
def consent_settings(consent_env: None) -> None:
    """Every test here talks to the faked consent service."""


@pytest.fixture
def api() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.get(f"{API}/v1/offers", json=[LEVEL1, LEVEL2, CLOSED])
        for offer in (LEVEL1, LEVEL2, CLOSED):
            mock.get(f"{API}/v1/offers/{offer['offer_id']}", json=offer)
        mock.get(f"{API}/v1/terms", json={"version": "2026-11-01", "sha256": "x", "text_ja": ""})
        mock.get(
            f"{API}/v1/catalog/items",
            json=[
                {"item_id": "steps", "name_ja": "歩数", "level": 1},
                {"item_id": "genetic", "name_ja": "遺伝子情報", "level": 3},
            ],
        )
        yield mock


def tracker(intent: str, slots: Dict[str, Any] | None = None, **entities: str) -> Tracker:
    event = user_event("…", intent, list(entities.items()))
    return Tracker(
        SENDER, slots or {}, event["parse_data"], [event], False, None, {}, "action_listen"
    )


def slots_of(events: List[Dict[str, Any]]) -> Dict[str, Any]:
    result: Dict[str, Any] = {}
    for event in events:
        if event["event"] == "slot":
            result[event["name"]] = event["value"]
    return result


def confirming(offer: Dict[str, Any], doctor: str | None = None) -> Dict[str, Any]:
    return {
        "consent_pending": "consent",
        "consent_stage": "confirming",
        "consent_offer_id": offer["offer_id"],
        "consent_request_key": "abc123",
        "consent_terms_version": "2026-11-01",
        "consent_offer_version": offer["version"],
        "consent_item_ids": [i["item_id"] for i in offer["items"]],
        "family_doctor_consulted": doctor,
    }


def run(action: Any, t: Tracker, domain: Dict[str, Any]) -> tuple[list, CollectingDispatcher]:
    dispatcher = CollectingDispatcher()
    return run_action(action, dispatcher, t, domain), dispatcher


# ---- giving consent ----------------------------------------------------------------------


def test_give_consent_lists_only_consentable_offers_as_buttons(api, domain) -> None:
    _, dispatcher = run(ActionConsentFlow(), tracker("give_consent"), domain)
    [message] = dispatcher.messages
    assert message["response"] == "utter_consent_choose_offer"
    assert [b["payload"] for b in message["buttons"]] == [
        '/give_consent{"offer_id": "city_health_vitals"}',
        '/give_consent{"offer_id": "city_health_checkup"}',
    ]
    assert all(len(b["title"]) <= 20 for b in message["buttons"])


def test_level1_offer_is_explained_and_read_back(api, domain) -> None:
    events, dispatcher = run(
        ActionConsentFlow(), tracker("give_consent", offer_id="city_health_vitals"), domain
    )
    assert sent(dispatcher) == ["utter_consent_offer_explanation", "utter_consent_readback"]
    explanation, readback = dispatcher.messages
    assert explanation["items"] == "歩数（歩行）（レベル1）、血圧（レベル1）"
    assert explanation["benefits"] == "健康づくり教室のご案内、ポイント（健康のメリットとセット）"
    assert readback["terms_version"] == "2026-11-01"
    state = slots_of(events)
    assert state["consent_pending"] == "consent" and state["consent_stage"] == "confirming"
    assert state["consent_offer_id"] == "city_health_vitals" and state["consent_request_key"]
    assert not [c for c in api.calls if c.request.method == "POST"]


def test_level2_offer_asks_about_the_family_doctor(api, domain) -> None:
    events, dispatcher = run(
        ActionConsentFlow(), tracker("give_consent", offer_id="city_health_checkup"), domain
    )
    assert sent(dispatcher) == ["utter_consent_offer_explanation_level2", "utter_ask_family_doctor"]
    assert dispatcher.messages[0]["approved_by"] == "データ倫理審査会"
    assert slots_of(events)["consent_stage"] == "doctor_asked"


@pytest.mark.parametrize("answer", ["consulted", "will_not"])
def test_doctor_answer_is_set_then_read_back(api, domain, answer: str) -> None:
    slots = {**confirming(LEVEL2), "consent_stage": "doctor_asked"}
    t = tracker("answer_family_doctor", slots, family_doctor_answer=answer)
    events, dispatcher = run(ActionConsentFlow(), t, domain)
    assert events[0] == SlotSet("family_doctor_consulted", answer)
    assert sent(dispatcher) == ["utter_consent_readback_level2"]
    assert (
        dispatcher.messages[0]["family_doctor"]
        == domain["responses"][f"utter_fragment_doctor_{answer}"][0]["text"]
    )


def test_yes_to_the_doctor_question_means_consulted(api, domain) -> None:
    slots = {**confirming(LEVEL2), "consent_stage": "doctor_asked"}
    events, _ = run(ActionConsentFlow(), tracker("affirm", slots), domain)
    assert slots_of(events)["family_doctor_consulted"] == "consulted"


def test_not_yet_recommends_consulting_and_can_pause(api, domain) -> None:
    slots = {**confirming(LEVEL2), "consent_stage": "doctor_asked"}
    events, dispatcher = run(ActionConsentFlow(), tracker("deny", slots), domain)
    assert sent(dispatcher) == ["utter_recommend_consult_first"]
    state = {**slots, **slots_of(events)}
    assert state["family_doctor_consulted"] == "not_yet"
    assert state["consent_stage"] == "doctor_not_yet"

    events, dispatcher = run(ActionConsentFlow(), tracker("deny", state), domain)
    assert sent(dispatcher) == ["utter_consent_paused"]
    state = {**state, **slots_of(events)}
    assert state["consent_pending"] is None and state["consent_stage"] == "paused"
    assert state["consent_offer_id"] == "city_health_checkup"

    # days later: "同意の続き" resumes the same offer and asks again
    events, dispatcher = run(ActionConsentFlow(), tracker("give_consent", state), domain)
    assert sent(dispatcher) == ["utter_consent_resume", "utter_ask_family_doctor"]
    assert slots_of(events)["consent_pending"] == "consent"
    assert not [c for c in api.calls if c.request.method == "POST"]


def test_not_yet_then_explicit_continue_reads_back(api, domain) -> None:
    slots = {**confirming(LEVEL2, "not_yet"), "consent_stage": "doctor_not_yet"}
    t = tracker("affirm", slots, consent_choice="proceed")  # the "このまま進める" button
    events, dispatcher = run(ActionConsentFlow(), t, domain)
    assert sent(dispatcher) == ["utter_consent_readback_level2"]
    assert slots_of(events)["consent_stage"] == "confirming"


def test_unclear_doctor_answer_is_asked_again(api, domain) -> None:
    slots = {**confirming(LEVEL2), "consent_stage": "doctor_asked"}
    t = tracker("answer_family_doctor", slots, family_doctor_answer="たぶん")
    events, dispatcher = run(ActionConsentFlow(), t, domain)
    assert sent(dispatcher) == ["utter_ask_family_doctor"]
    assert "family_doctor_consulted" not in slots_of(events)


def _doctor_answers(slots: Dict[str, Any], *values: str) -> Tracker:
    event = user_event("…", "answer_family_doctor", [("family_doctor_answer", v) for v in values])
    return Tracker(SENDER, slots, event["parse_data"], [event], False, None, {}, "action_listen")


def test_a_stray_unrecognised_value_beside_the_answer_is_ignored(api, domain) -> None:
    # 「はい、かかりつけ医に相談しました」: DIET may tag 「はい」 too; the synonym mapper knows only
    # the real answer.
    slots = {**confirming(LEVEL2), "consent_stage": "doctor_asked"}
    events, dispatcher = run(
        ActionConsentFlow(), _doctor_answers(slots, "はい", "consulted"), domain
    )
    assert events[0] == SlotSet("family_doctor_consulted", "consulted")
    assert sent(dispatcher) == ["utter_consent_readback_level2"]


def test_two_different_answers_in_one_message_are_asked_again(api, domain) -> None:
    slots = {**confirming(LEVEL2), "consent_stage": "doctor_asked"}
    t = _doctor_answers(slots, "consulted", "not_yet")
    events, dispatcher = run(ActionConsentFlow(), t, domain)
    assert sent(dispatcher) == ["utter_ask_family_doctor"]
    assert "family_doctor_consulted" not in slots_of(events)


def test_yes_at_the_read_back_records_with_a_pseudonym(api, domain) -> None:
    api.post(
        f"{API}/v1/consents",
        json={"consent_id": C1, "status": "active", "receipt": RECEIPT},
        status=201,
    )
    events, dispatcher = run(
        ActionConsentFlow(), tracker("affirm", confirming(LEVEL2, "consulted")), domain
    )
    assert sent(dispatcher) == ["utter_consent_recorded"]
    assert dispatcher.messages[0]["receipt_id"] == "rcpt-0001"
    [post] = [c for c in api.calls if c.request.method == "POST"]
    body = json.loads(post.request.body)
    assert body == {
        "subject_id": SUBJECT,
        "offer_id": "city_health_checkup",
        "item_ids": ["health_checkup"],
        "channel": "rest",
        "family_doctor_consulted": "consulted",
        "terms_version": "2026-11-01",
        "offer_version": "b2" * 32,
    }
    assert SENDER not in post.request.body.decode()
    assert post.request.headers["Idempotency-Key"] == "abc123-consulted"
    assert post.request.headers["Authorization"] == "Bearer client-token"
    assert slots_of(events)["consent_pending"] is None


@pytest.mark.parametrize(
    "slots",
    [
        {},  # a forged "/affirm" with nothing open
        {**confirming(LEVEL1), "consent_pending": None},  # read-back done, question closed
        {**confirming(LEVEL1), "consent_stage": "paused"},
    ],
    ids=["nothing open", "question closed", "paused"],
)
def test_a_yes_out_of_turn_records_nothing(api, domain, slots) -> None:
    _, dispatcher = run(ActionConsentFlow(), tracker("affirm", slots), domain)
    assert sent(dispatcher) == ["utter_consent_nothing_pending"]
    assert not [c for c in api.calls if c.request.method == "POST"]


def test_level2_without_a_doctor_answer_is_never_submitted(api, domain) -> None:
    _, dispatcher = run(ActionConsentFlow(), tracker("affirm", confirming(LEVEL2)), domain)
    assert sent(dispatcher) == ["utter_ask_family_doctor"]
    assert not [c for c in api.calls if c.request.method == "POST"]


def test_no_read_back_in_this_conversation_means_read_back_first(api, domain) -> None:
    slots = {**confirming(LEVEL1), "consent_terms_version": None}
    _, dispatcher = run(ActionConsentFlow(), tracker("affirm", slots), domain)
    assert sent(dispatcher) == ["utter_consent_readback"]
    assert not [c for c in api.calls if c.request.method == "POST"]


def test_service_down_keeps_the_state_and_retries_with_the_same_key(api, domain) -> None:
    api.post(f"{API}/v1/consents", body=requests.ConnectionError("down"))
    events, dispatcher = run(ActionConsentFlow(), tracker("affirm", confirming(LEVEL1)), domain)
    assert sent(dispatcher) == ["utter_consent_service_down"]
    assert events == []
    posts = [c for c in api.calls if c.request.method == "POST"]
    assert len(posts) == get_settings().consent_api_attempts == 3
    assert {p.request.headers["Idempotency-Key"] for p in posts} == {"abc123-none"}


def test_timeout_then_success_records_once(api, domain) -> None:
    api.post(f"{API}/v1/consents", body=requests.ReadTimeout("slow"))
    api.post(f"{API}/v1/consents", status=503, json={"reason": "database_unavailable"})
    api.post(
        f"{API}/v1/consents",
        json={"consent_id": C1, "status": "active", "receipt": RECEIPT},
        status=201,
    )
    _, dispatcher = run(ActionConsentFlow(), tracker("affirm", confirming(LEVEL1)), domain)
    assert sent(dispatcher) == ["utter_consent_recorded"]
    posts = [c for c in api.calls if c.request.method == "POST"]
    assert len(posts) == 3
    assert {p.request.headers["Idempotency-Key"] for p in posts} == {"abc123-none"}


@pytest.mark.parametrize(
    ("reason", "response"),
    [
        ("no_ethics_approval", "utter_consent_refused_no_ethics_approval"),
        ("terms_outdated", "utter_consent_refused_terms_outdated"),
        ("item_not_in_offer", "utter_consent_refused_generic"),
    ],
)
def test_refusals_are_explained_never_shown_raw(api, domain, reason, response) -> None:
    api.post(f"{API}/v1/consents", status=422, json={"reason": reason, "message": "raw"})
    events, dispatcher = run(ActionConsentFlow(), tracker("affirm", confirming(LEVEL1)), domain)
    assert sent(dispatcher) == [response]
    assert "raw" not in json.dumps(dispatcher.messages)
    assert len([c for c in api.calls if c.request.method == "POST"]) == 1  # 4xx: no retry
    assert slots_of(events)["consent_pending"] is None


def test_refusal_inside_detail_is_understood(api, domain) -> None:
    api.post(f"{API}/v1/consents", status=422, json={"detail": {"reason": "terms_outdated"}})
    _, dispatcher = run(ActionConsentFlow(), tracker("affirm", confirming(LEVEL1)), domain)
    assert sent(dispatcher) == ["utter_consent_refused_terms_outdated"]


def test_an_existing_consent_is_named_by_its_receipt(api, domain) -> None:
    api.post(
        f"{API}/v1/consents", status=409, json={"reason": "already_consented", "consent_id": C9}
    )
    api.get(
        f"{API}/v1/subjects/{SUBJECT}/consents",
        json=[{"consent_id": C9, "offer_id": "city_health_vitals", "status": "active",
               "receipt_id": "rcpt-9"}],
    )  # fmt: skip
    _, dispatcher = run(ActionConsentFlow(), tracker("affirm", confirming(LEVEL1)), domain)
    assert sent(dispatcher) == ["utter_consent_already_recorded"]
    assert dispatcher.messages[0]["receipt_id"] == "rcpt-9"


def test_no_at_the_read_back_cancels(api, domain) -> None:
    events, dispatcher = run(ActionConsentFlow(), tracker("deny", confirming(LEVEL1)), domain)
    assert sent(dispatcher) == ["utter_consent_cancelled"]
    assert slots_of(events)["consent_offer_id"] is None


def test_level3_items_asked_for_are_explained_not_offered(api, domain) -> None:
    _, dispatcher = run(ActionConsentFlow(), tracker("give_consent", data_item="genetic"), domain)
    assert sent(dispatcher) == ["utter_consent_level3_not_handled", "utter_consent_choose_offer"]
    assert dispatcher.messages[0]["items"] == "遺伝子情報"


def test_a_closed_or_unknown_offer_is_not_explained(api, domain) -> None:
    api.get(f"{API}/v1/offers/nope", status=404, json={"reason": "unknown_offer"})
    for offer_id in ("restaurants_allergy", "nope"):
        dispatcher = CollectingDispatcher()
        run_action(
            ActionConsentFlow(), dispatcher, tracker("give_consent", offer_id=offer_id), domain
        )
        assert sent(dispatcher) == ["utter_consent_offer_unavailable"]


def test_listing_offers_while_the_service_is_down_apologises(domain) -> None:
    with responses.RequestsMock() as mock:
        mock.get(f"{API}/v1/offers", body=requests.ConnectionError("down"))
        _, dispatcher = run(ActionConsentFlow(), tracker("give_consent"), domain)
    assert sent(dispatcher) == ["utter_consent_service_down_generic"]


# ---- withdrawal and listing --------------------------------------------------------------

HISTORY = [
    {"consent_id": C1, "offer_id": "city_health_vitals", "status": "active",
     "receipt_id": "rcpt-1"},
    {"consent_id": C2, "offer_id": "city_health_checkup", "status": "withdrawn",
     "receipt_id": "rcpt-2"},
]  # fmt: skip


def test_withdraw_lists_active_consents_as_buttons(api, domain) -> None:
    api.get(f"{API}/v1/subjects/{SUBJECT}/consents", json=HISTORY)
    _, dispatcher = run(ActionWithdrawalFlow(), tracker("withdraw_consent"), domain)
    [message] = dispatcher.messages
    assert message["response"] == "utter_withdraw_choose"
    assert [b["payload"] for b in message["buttons"]] == [
        f'/withdraw_consent{{"consent_id": "{C1}"}}'
    ]


def test_withdraw_confirms_then_withdraws_with_the_subject(api, domain) -> None:
    api.get(f"{API}/v1/subjects/{SUBJECT}/consents", json=HISTORY)
    api.post(
        f"{API}/v1/consents/{C1}/withdraw",
        json={"consent_id": C1, "status": "withdrawn", "receipt": {"receipt_id": "rcpt-w"}},
    )
    events, dispatcher = run(
        ActionWithdrawalFlow(), tracker("withdraw_consent", consent_id=C1), domain
    )
    assert sent(dispatcher) == ["utter_withdraw_confirm"]
    state = slots_of(events)
    assert state == {"consent_pending": "withdrawal", "withdraw_consent_id": C1}
    events, dispatcher = run(ActionWithdrawalFlow(), tracker("affirm", state), domain)
    assert sent(dispatcher) == ["utter_withdraw_done"]
    assert dispatcher.messages[0]["receipt_id"] == "rcpt-w"
    [post] = [c for c in api.calls if c.request.method == "POST"]
    assert json.loads(post.request.body) == {"subject_id": SUBJECT}


def test_someone_elses_or_withdrawn_consent_cannot_be_chosen(api, domain) -> None:
    api.get(f"{API}/v1/subjects/{SUBJECT}/consents", json=HISTORY)
    for consent_id in (C2, C999):
        dispatcher = CollectingDispatcher()
        run_action(
            ActionWithdrawalFlow(),
            dispatcher,
            tracker("withdraw_consent", consent_id=consent_id),
            domain,
        )
        assert sent(dispatcher) == ["utter_withdraw_unknown"]
    assert not [c for c in api.calls if c.request.method == "POST"]


def test_no_to_the_withdrawal_keeps_the_consent(api, domain) -> None:
    state = {"consent_pending": "withdrawal", "withdraw_consent_id": C1}
    _, dispatcher = run(ActionWithdrawalFlow(), tracker("deny", state), domain)
    assert sent(dispatcher) == ["utter_withdraw_cancelled"]
    assert not [c for c in api.calls if c.request.method == "POST"]


def test_list_consents_shows_status_and_receipt(api, domain) -> None:
    api.get(f"{API}/v1/subjects/{SUBJECT}/consents", json=HISTORY)
    _, dispatcher = run(ActionListConsents(), tracker("list_consents"), domain)
    [message] = dispatcher.messages
    assert message["response"] == "utter_consents_list"
    assert message["lines"].splitlines() == [
        "・市の健康づくり（歩数・血圧）：同意中（受付番号 rcpt-1）",
        "・市の保健指導（健診結果）：取り消し済み（受付番号 rcpt-2）",
    ]


def test_list_consents_when_there_are_none(api, domain) -> None:
    api.get(f"{API}/v1/subjects/{SUBJECT}/consents", json=[])
    _, dispatcher = run(ActionListConsents(), tracker("list_consents"), domain)
    assert sent(dispatcher) == ["utter_consents_none"]


def test_subject_id_is_the_contract_hmac() -> None:
    assert (
        subject_id(get_settings(), "line", "U123")
        == hmac.new(KEY.encode(), b"line:U123", hashlib.sha256).hexdigest()
    )


# ---- yes and no --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("intent", "response"), [("affirm", "utter_affirm"), ("deny", "utter_deny")]
)
def test_yes_or_no_with_no_open_question_is_small_talk(api, domain, intent, response) -> None:
    _, dispatcher = run(ActionHandleYesNo(), tracker(intent), domain)
    assert sent(dispatcher) == [response]


def test_yes_goes_to_the_open_consent_question(api, domain) -> None:
    api.post(
        f"{API}/v1/consents",
        json={"consent_id": C1, "status": "active", "receipt": RECEIPT},
        status=201,
    )
    _, dispatcher = run(ActionHandleYesNo(), tracker("affirm", confirming(LEVEL1)), domain)
    assert sent(dispatcher) == ["utter_consent_recorded"]


def test_no_goes_to_the_open_withdrawal_question(api, domain) -> None:
    state = {"consent_pending": "withdrawal", "withdraw_consent_id": C1}
    _, dispatcher = run(ActionHandleYesNo(), tracker("deny", state), domain)
    assert sent(dispatcher) == ["utter_withdraw_cancelled"]


def test_service_down_at_the_final_yes_keeps_the_question_open(domain) -> None:
    with responses.RequestsMock() as mock:  # even the offer cannot be fetched
        mock.get(f"{API}/v1/offers/city_health_vitals", body=requests.ConnectionError("down"))
        events, dispatcher = run(ActionHandleYesNo(), tracker("affirm", confirming(LEVEL1)), domain)
    assert sent(dispatcher) == ["utter_consent_service_down"]
    assert events == []


@pytest.mark.parametrize(
    ("intent", "stage"),
    [("affirm", "doctor_not_yet"), ("affirm", "confirming"), ("give_consent", "paused"),
     ("answer_family_doctor", "doctor_asked")],
)  # fmt: skip
def test_an_offer_closed_meanwhile_ends_the_flow_politely(api, domain, intent, stage) -> None:
    slots = {**confirming(CLOSED, "consulted"), "consent_stage": stage}
    t = tracker(intent, slots, family_doctor_answer="consulted", consent_choice="proceed")
    events, dispatcher = run(ActionHandleYesNo() if intent == "affirm" else ActionConsentFlow(),
                             t, domain)  # fmt: skip
    assert sent(dispatcher) == ["utter_consent_offer_unavailable"]
    assert slots_of(events)["consent_pending"] is None
    assert not [c for c in api.calls if c.request.method == "POST"]


# ---- ids typed into a conversation (security issue #12) -----------------------------------

HOSTILE = ["../audit/verify", "../../v1/audit/verify", "city_health_vitals/../x", "%2e%2e/x"]


@pytest.mark.parametrize("offer_id", HOSTILE)
def test_a_typed_offer_id_cannot_reach_another_endpoint(api, domain, offer_id) -> None:
    # "\n/give_consent{"offer_id": "../audit/verify"}" once made the action server call
    # GET /v1/audit/verify with the service token.
    events, dispatcher = run(
        ActionConsentFlow(), tracker("give_consent", offer_id=offer_id), domain
    )
    assert sent(dispatcher) == ["utter_consent_offer_unavailable"]
    assert len(api.calls) == 0
    assert slots_of(events)["consent_offer_id"] is None


@pytest.mark.parametrize("consent_id", [*HOSTILE, "c-1", C1.upper()])
def test_a_typed_consent_id_of_the_wrong_shape_is_unknown(api, domain, consent_id) -> None:
    _, dispatcher = run(
        ActionWithdrawalFlow(), tracker("withdraw_consent", consent_id=consent_id), domain
    )
    assert sent(dispatcher) == ["utter_withdraw_unknown"]
    assert len(api.calls) == 0


def test_a_forged_withdrawal_slot_withdraws_nothing(api, domain) -> None:
    state = {"consent_pending": "withdrawal", "withdraw_consent_id": "../audit/verify"}
    _, dispatcher = run(ActionWithdrawalFlow(), tracker("affirm", state), domain)
    assert sent(dispatcher) == ["utter_withdraw_unknown"]
    assert len(api.calls) == 0


def test_the_service_refusing_another_subjects_consent_is_answered_politely(api, domain) -> None:
    # The service answers 404 when the consent is not the named subject's.
    api.post(f"{API}/v1/consents/{C1}/withdraw", status=404, json={"reason": "consent_not_found"})
    state = {"consent_pending": "withdrawal", "withdraw_consent_id": C1}
    _, dispatcher = run(ActionWithdrawalFlow(), tracker("affirm", state), domain)
    assert sent(dispatcher) == ["utter_withdraw_unknown"]
    [post] = [c for c in api.calls if c.request.method == "POST"]
    assert json.loads(post.request.body) == {"subject_id": SUBJECT}


# ---- what is read back is what is submitted (issue #13) ------------------------------------

CHANGED = {
    **LEVEL1,
    "version": "c3" * 32,
    "items": [*LEVEL1["items"], {"item_id": "pulse", "level": 1, "name_ja": "脈拍"}],
}


def test_the_read_back_keeps_the_offers_version_and_items(api, domain) -> None:
    events, _ = run(
        ActionConsentFlow(), tracker("give_consent", offer_id="city_health_vitals"), domain
    )
    state = slots_of(events)
    assert state["consent_offer_version"] == LEVEL1["version"]
    assert state["consent_item_ids"] == ["steps", "blood_pressure"]


def test_the_yes_submits_the_read_back_not_the_offer_as_it_is_now(api, domain) -> None:
    api.replace(responses.GET, f"{API}/v1/offers/city_health_vitals", json=CHANGED)
    api.post(f"{API}/v1/consents", status=422, json={"reason": "offer_changed", "message": "x"})
    events, dispatcher = run(ActionConsentFlow(), tracker("affirm", confirming(LEVEL1)), domain)
    [post] = [c for c in api.calls if c.request.method == "POST"]
    body = json.loads(post.request.body)
    assert body["item_ids"] == ["steps", "blood_pressure"]
    assert body["offer_version"] == LEVEL1["version"]
    # Nothing recorded: told so, then the notice again with the new content and a new question.
    assert sent(dispatcher) == [
        "utter_consent_offer_changed",
        "utter_consent_offer_explanation",
        "utter_consent_readback",
    ]
    assert "脈拍（レベル1）" in dispatcher.messages[2]["items"]
    state = slots_of(events)
    assert state["consent_offer_version"] == CHANGED["version"]
    assert state["consent_item_ids"] == ["steps", "blood_pressure", "pulse"]
    assert state["consent_pending"] == "consent" and state["consent_stage"] == "confirming"
    assert state["consent_request_key"] not in (None, "abc123")


def test_a_level1_read_back_is_submitted_even_if_the_offer_gained_level2_data(api, domain) -> None:
    now_level2 = {**LEVEL2, "offer_id": "city_health_vitals", "version": "d4" * 32}
    api.replace(responses.GET, f"{API}/v1/offers/city_health_vitals", json=now_level2)
    api.post(f"{API}/v1/consents", status=422, json={"reason": "offer_changed"})
    _, dispatcher = run(ActionConsentFlow(), tracker("affirm", confirming(LEVEL1)), domain)
    [post] = [c for c in api.calls if c.request.method == "POST"]
    assert json.loads(post.request.body)["item_ids"] == ["steps", "blood_pressure"]
    assert sent(dispatcher)[0] == "utter_consent_offer_changed"
    assert sent(dispatcher)[-1] == "utter_ask_family_doctor"  # the new notice asks it first


def test_a_read_back_without_kept_items_is_read_back_again(api, domain) -> None:
    """A conversation read back before the items were kept (e.g. across an upgrade)."""
    slots = {**confirming(LEVEL1), "consent_item_ids": None, "consent_offer_version": None}
    events, dispatcher = run(ActionConsentFlow(), tracker("affirm", slots), domain)
    assert sent(dispatcher) == ["utter_consent_readback"]
    assert slots_of(events)["consent_item_ids"] == ["steps", "blood_pressure"]
    assert not [c for c in api.calls if c.request.method == "POST"]


def test_ending_the_flow_forgets_the_read_back(api, domain) -> None:
    events, _ = run(ActionConsentFlow(), tracker("deny", confirming(LEVEL1)), domain)
    state = slots_of(events)
    assert state["consent_offer_version"] is None and state["consent_item_ids"] is None
