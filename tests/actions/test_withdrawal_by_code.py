"""Withdrawal by receipt code (issue #14) against a mocked consent service: any sender holding a
code may withdraw after a confirmation naming only the offer and its status; typos, unknown codes
and too many wrong tries get their own polite answers; a code never steers a call elsewhere."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any, Dict, Iterator, List

import pytest
import requests
import responses
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.consent_client import ConsentClient, ConsentRefused
from actions.withdrawal import ActionWithdrawalFlow
from actions.yes_no import ActionHandleYesNo
from bot.settings import Settings
from tests.actions.conftest import FAKE_API, FAKE_PSEUDONYM_KEY, run_action
from tests.actions.conftest import responses as sent

API = FAKE_API
KEY = FAKE_PSEUDONYM_KEY
SENDER = "a-new-browser-session"
SUBJECT = hmac.new(KEY.encode(), f"rest:{SENDER}".encode(), hashlib.sha256).hexdigest()
LINE_SUBJECT = hmac.new(KEY.encode(), f"line:{SENDER}".encode(), hashlib.sha256).hexdigest()
CODE = "H42T-WD34-3"
WITHDRAWAL_CODE = "F57B-7RF1-A"
CONSENT_ID = "0b6f3c2a-5d1e-4f7a-9c8b-2e4d6f8a0c1e"
FOUND = {
    "receipt_code": CODE,
    "kind": "consent",
    "offer_id": "city_health_vitals",
    "offer_title_ja": "市の健康づくり（歩数・血圧）",
    "status": "active",
}
WITHDRAWN = {
    "consent_id": CONSENT_ID,
    "status": "withdrawn",
    "receipt": {"receipt_id": "rcpt-w", "kind": "withdrawal", "receipt_code": WITHDRAWAL_CODE},
}
LOOKUP = f"{API}/v1/receipt-codes/{CODE}"
WITHDRAW = f"{API}/v1/receipt-codes/{CODE}/withdraw"


@pytest.fixture(autouse=True)
def consent_settings(consent_env: None) -> None:
    """Every test here talks to the faked consent service."""


@pytest.fixture
def api() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def tracker(
    text: str,
    intent: str,
    slots: Dict[str, Any] | None = None,
    channel: str = "rest",
    entities: List[Dict[str, Any]] | None = None,
) -> Tracker:
    parse = {
        "text": text,
        "intent": {"name": intent, "confidence": 0.9},
        "entities": entities or [],
    }
    events = [{"event": "user", "text": text, "parse_data": parse, "input_channel": channel}]
    return Tracker(SENDER, slots or {}, parse, events, False, None, {}, "action_listen")


def run(action: Any, t: Tracker, domain: Dict[str, Any]) -> tuple[list, CollectingDispatcher]:
    dispatcher = CollectingDispatcher()
    return run_action(action, dispatcher, t, domain), dispatcher


def slots_of(events: List[Dict[str, Any]]) -> Dict[str, Any]:
    return {e["name"]: e["value"] for e in events if e["event"] == "slot"}


def posts(api: responses.RequestsMock) -> list:
    return [c for c in api.calls if c.request.method == "POST"]


# ---- the client -----------------------------------------------------------------------------


def _client() -> ConsentClient:
    return ConsentClient.from_settings(Settings(consent_api_url=API))


def test_lookup_calls_the_exact_path_with_the_requester(api) -> None:
    call = api.get(LOOKUP, json=FOUND)
    assert _client().receipt_code(CODE, SUBJECT) == FOUND
    assert call.calls[0].request.path_url == f"/v1/receipt-codes/{CODE}?requester={SUBJECT}"


def test_withdraw_by_code_posts_requester_channel_and_an_idempotency_key(api) -> None:
    call = api.post(WITHDRAW, json=WITHDRAWN)
    assert _client().withdraw_by_code(CODE, SUBJECT, "web", idempotency_key="k-1") == WITHDRAWN
    [made] = call.calls
    assert made.request.path_url == f"/v1/receipt-codes/{CODE}/withdraw"
    assert json.loads(made.request.body) == {"requester": SUBJECT, "channel": "web"}
    assert made.request.headers["Idempotency-Key"] == "k-1"


def test_withdraw_by_code_is_retried_with_the_same_key_after_a_timeout(api) -> None:
    api.post(WITHDRAW, body=requests.Timeout("slow"))
    api.post(WITHDRAW, json=WITHDRAWN)
    _client().withdraw_by_code(CODE, SUBJECT, "line", idempotency_key="k-2")
    assert [c.request.headers["Idempotency-Key"] for c in api.calls] == ["k-2", "k-2"]


@pytest.mark.parametrize(
    "code",
    ["../audit/verify", "h42t-wd34-3", "H42TWD343", "H42T-WD34-4", "H42T-WD34-3?x=1",
     "H42T-WD34-3/../..", "", "K7Q2-M9XD-3"],
)  # fmt: skip
def test_a_code_not_canonical_and_checked_never_reaches_a_url(code: str) -> None:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        for call in (
            lambda: _client().receipt_code(code, SUBJECT),
            lambda: _client().withdraw_by_code(code, SUBJECT, "web", idempotency_key="k"),
        ):
            with pytest.raises(ConsentRefused) as refused:
                call()
            assert (refused.value.status, refused.value.reason) == (422, "invalid_receipt_code")
        assert len(mock.calls) == 0


@pytest.mark.parametrize("requester", ["../offers", "B" * 64, "b" * 63])
def test_only_a_pseudonym_is_sent_as_the_requester(requester: str) -> None:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        with pytest.raises(ValueError):
            _client().receipt_code(CODE, requester)
        with pytest.raises(ValueError):
            _client().withdraw_by_code(CODE, requester, "web", idempotency_key="k")
        with pytest.raises(ValueError):
            _client().withdraw_by_code(CODE, SUBJECT, "socketio", idempotency_key="k")
        assert len(mock.calls) == 0


# ---- the conversation -----------------------------------------------------------------------


def test_a_new_session_withdraws_by_code_after_confirming_offer_and_status(api, domain) -> None:
    api.get(LOOKUP, json=FOUND)
    api.post(WITHDRAW, json=WITHDRAWN)
    events, dispatcher = run(
        ActionWithdrawalFlow(),
        tracker(f"受付番号 {CODE.lower()} の同意を取り消したい", "withdraw_consent"),
        domain,
    )
    [message] = dispatcher.messages
    assert message["response"] == "utter_withdraw_code_confirm"
    assert (message["receipt_code"], message["title"]) == (CODE, FOUND["offer_title_ja"])
    titles = [b["title"] for b in domain["responses"]["utter_withdraw_code_confirm"][0]["buttons"]]
    assert titles == ["取り消す", "やめる"]
    state = slots_of(events)
    assert state == {
        "consent_pending": "withdrawal",
        "withdraw_consent_id": None,
        "withdraw_receipt_code": CODE,
    }
    assert posts(api) == []

    events, dispatcher = run(ActionHandleYesNo(), tracker("取り消す", "affirm", state), domain)
    [message] = dispatcher.messages
    assert message["response"] == "utter_withdraw_done"
    assert (message["receipt_code"], message["receipt_id"]) == (WITHDRAWAL_CODE, "rcpt-w")
    [post] = posts(api)
    assert json.loads(post.request.body) == {"requester": SUBJECT, "channel": "rest"}
    assert post.request.headers["Idempotency-Key"]
    assert slots_of(events) == dict.fromkeys(state)


def test_on_line_the_requester_and_channel_are_lines(api, domain) -> None:
    api.get(LOOKUP, json=FOUND)
    api.post(WITHDRAW, json=WITHDRAWN)
    events, _ = run(
        ActionWithdrawalFlow(),
        tracker(f"{CODE} を取り消して", "withdraw_consent", channel="line"),
        domain,
    )
    state = slots_of(events)
    run(ActionWithdrawalFlow(), tracker("はい", "affirm", state, channel="line"), domain)
    assert api.calls[0].request.path_url.endswith(f"?requester={LINE_SUBJECT}")
    [post] = posts(api)
    assert json.loads(post.request.body) == {"requester": LINE_SUBJECT, "channel": "line"}


def test_no_at_the_confirmation_withdraws_nothing(api, domain) -> None:
    state = {"consent_pending": "withdrawal", "withdraw_receipt_code": CODE}
    events, dispatcher = run(ActionHandleYesNo(), tracker("やめる", "deny", state), domain)
    assert sent(dispatcher) == ["utter_withdraw_cancelled"]
    assert slots_of(events)["withdraw_receipt_code"] is None
    assert posts(api) == []


def test_without_consents_here_the_code_is_asked_for_then_taken_alone(api, domain) -> None:
    api.get(f"{API}/v1/subjects/{SUBJECT}/consents", json=[])
    api.get(LOOKUP, json=FOUND)
    _, dispatcher = run(ActionWithdrawalFlow(), tracker("取り消したい", "withdraw_consent"), domain)
    assert sent(dispatcher) == ["utter_withdraw_ask_code"]
    events, dispatcher = run(
        ActionWithdrawalFlow(), tracker("ｈ４２ｔ　ｗｄ３４　３", "inform_receipt_code"), domain
    )
    assert sent(dispatcher) == ["utter_withdraw_code_confirm"]
    assert slots_of(events)["withdraw_receipt_code"] == CODE


def test_the_entity_is_used_when_the_text_holds_no_code(api, domain) -> None:
    api.get(LOOKUP, json=FOUND)
    entity = {"entity": "receipt_code", "value": CODE, "start": 0, "end": 1}
    _, dispatcher = run(
        ActionWithdrawalFlow(),
        tracker("/inform_receipt_code", "inform_receipt_code", entities=[entity]),
        domain,
    )
    assert sent(dispatcher) == ["utter_withdraw_code_confirm"]


def test_a_typo_is_answered_without_asking_the_service(api, domain) -> None:
    for text in ("受付番号 H42T-WD34-4 の同意を取り消したい", "H42T-WD43-3", "H42T-WD34-O"):
        events, dispatcher = run(
            ActionWithdrawalFlow(), tracker(text, "inform_receipt_code"), domain
        )
        assert sent(dispatcher) == ["utter_withdraw_code_mistyped"]
        assert slots_of(events)["consent_pending"] is None
    assert len(api.calls) == 0


def test_a_code_intent_without_any_code_asks_for_it(api, domain) -> None:
    _, dispatcher = run(
        ActionWithdrawalFlow(), tracker("受付番号です", "inform_receipt_code"), domain
    )
    assert sent(dispatcher) == ["utter_withdraw_ask_code"]
    assert len(api.calls) == 0


@pytest.mark.parametrize(
    ("status", "reason", "response"),
    [
        (404, "unknown_receipt_code", "utter_withdraw_code_unknown"),
        (422, "invalid_receipt_code", "utter_withdraw_code_mistyped"),
        (429, "too_many_wrong_codes", "utter_withdraw_code_too_many"),
        (403, "something_else", "utter_withdraw_code_unknown"),
    ],
)
def test_refused_lookups_get_their_own_answer_and_nothing_else(
    api, domain, status: int, reason: str, response: str
) -> None:
    api.get(LOOKUP, status=status, json={"detail": {"reason": reason}})
    events, dispatcher = run(
        ActionWithdrawalFlow(),
        tracker(f"受付番号 {CODE} の同意を取り消したい", "withdraw_consent"),
        domain,
    )
    [message] = dispatcher.messages
    assert message == {**message, "response": response}
    assert set(message) & {"title", "receipt_code", "receipt_id"} == set()
    assert slots_of(events)["consent_pending"] is None


def test_an_already_withdrawn_consent_is_said_so_without_a_question(api, domain) -> None:
    api.get(LOOKUP, json={**FOUND, "status": "withdrawn"})
    events, dispatcher = run(ActionWithdrawalFlow(), tracker(CODE, "inform_receipt_code"), domain)
    assert sent(dispatcher) == ["utter_withdraw_code_already"]
    assert slots_of(events)["consent_pending"] is None


@pytest.mark.parametrize(
    ("status", "reason", "response"),
    [
        (409, "already_withdrawn", "utter_withdraw_code_already"),
        (429, "too_many_wrong_codes", "utter_withdraw_code_too_many"),
        (404, "unknown_receipt_code", "utter_withdraw_code_unknown"),
    ],
)
def test_refusals_at_the_final_yes_are_explained(api, domain, status, reason, response) -> None:
    api.post(WITHDRAW, status=status, json={"reason": reason})
    state = {"consent_pending": "withdrawal", "withdraw_receipt_code": CODE}
    events, dispatcher = run(ActionHandleYesNo(), tracker("はい", "affirm", state), domain)
    assert sent(dispatcher) == [response]
    assert slots_of(events)["consent_pending"] is None


def test_service_down_at_the_final_yes_keeps_the_question_open(api, domain) -> None:
    api.post(WITHDRAW, body=requests.ConnectionError("down"))
    state = {"consent_pending": "withdrawal", "withdraw_receipt_code": CODE}
    events, dispatcher = run(ActionHandleYesNo(), tracker("はい", "affirm", state), domain)
    assert sent(dispatcher) == ["utter_consent_service_down_generic"]
    assert events == []


def test_a_forged_code_slot_is_checked_before_any_call(api, domain) -> None:
    state = {"consent_pending": "withdrawal", "withdraw_receipt_code": "../../audit/verify"}
    _, dispatcher = run(ActionHandleYesNo(), tracker("はい", "affirm", state), domain)
    assert sent(dispatcher) == ["utter_withdraw_code_mistyped"]
    assert len(api.calls) == 0


def test_a_chosen_consent_id_still_wins_over_a_stale_code(api, domain) -> None:
    api.post(f"{API}/v1/consents/{CONSENT_ID}/withdraw", json=WITHDRAWN)
    state = {
        "consent_pending": "withdrawal",
        "withdraw_consent_id": CONSENT_ID,
        "withdraw_receipt_code": CODE,
    }
    run(ActionHandleYesNo(), tracker("はい", "affirm", state), domain)
    [post] = posts(api)
    assert post.request.path_url == f"/v1/consents/{CONSENT_ID}/withdraw"


def test_wording_recorded_and_receipts_show_the_code_to_write_down(domain) -> None:
    for name in ("utter_consent_recorded", "utter_withdraw_done"):
        text = domain["responses"][name][0]["text"]
        assert "受付番号：{receipt_code}" in text and "この番号を控えてください" in text


def test_typing_the_wish_again_at_the_open_confirmation_is_a_yes(api, domain) -> None:
    api.post(WITHDRAW, json=WITHDRAWN)
    state = {"consent_pending": "withdrawal", "withdraw_receipt_code": CODE}
    _, dispatcher = run(
        ActionWithdrawalFlow(), tracker("取り消します", "withdraw_consent", state), domain
    )
    assert sent(dispatcher) == ["utter_withdraw_done"]
    assert len(posts(api)) == 1


def test_without_an_open_confirmation_the_wish_lists_the_consents(api, domain) -> None:
    api.get(f"{API}/v1/subjects/{SUBJECT}/consents", json=[])
    _, dispatcher = run(ActionWithdrawalFlow(), tracker("取り消します", "withdraw_consent"), domain)
    assert sent(dispatcher) == ["utter_withdraw_ask_code"]
    assert posts(api) == []


def test_a_longer_wish_at_the_open_confirmation_lists_instead(api, domain) -> None:
    api.get(f"{API}/v1/subjects/{SUBJECT}/consents", json=[])
    state = {"consent_pending": "withdrawal", "withdraw_receipt_code": CODE}
    text = "ジムへの提供だけをやめたいです"
    _, dispatcher = run(ActionWithdrawalFlow(), tracker(text, "withdraw_consent", state), domain)
    assert sent(dispatcher) == ["utter_withdraw_ask_code"]
    assert posts(api) == []


def test_the_list_and_the_chosen_consent_are_named_by_their_codes(api, domain) -> None:
    from actions.withdrawal import ActionListConsents

    history = [
        {"consent_id": CONSENT_ID, "offer_id": "city_health_vitals", "status": "active",
         "receipt_id": "rcpt-1", "receipt_code": CODE},
    ]  # fmt: skip
    api.get(f"{API}/v1/subjects/{SUBJECT}/consents", json=history)
    api.get(f"{API}/v1/offers", json=[{"offer_id": "city_health_vitals", "title_ja": "T"}])
    _, dispatcher = run(ActionListConsents(), tracker("一覧", "list_consents"), domain)
    assert dispatcher.messages[0]["lines"] == f"・T：同意中（受付番号 {CODE}）"
    entity = {"entity": "consent_id", "value": CONSENT_ID, "start": 0, "end": 1}
    _, dispatcher = run(
        ActionWithdrawalFlow(),
        tracker("/withdraw_consent", "withdraw_consent", entities=[entity]),
        domain,
    )
    assert dispatcher.messages[0]["receipt_id"] == CODE


@pytest.mark.parametrize(
    "text", ["取り消しません", "取り消さない", "取り消すのはやめる", "とりけさないで"]
)
def test_a_refusal_read_as_withdraw_at_the_open_confirmation_withdraws_nothing(
    api, domain, text: str
) -> None:
    # 「取り消しません」 is read as withdraw_consent: only a plain 「取り消します」 is a yes.
    api.get(f"{API}/v1/subjects/{SUBJECT}/consents", json=[])
    state = {"consent_pending": "withdrawal", "withdraw_receipt_code": CODE}
    _, dispatcher = run(ActionWithdrawalFlow(), tracker(text, "withdraw_consent", state), domain)
    assert "utter_withdraw_done" not in sent(dispatcher)
    assert posts(api) == []


@pytest.mark.parametrize(
    "text", ["取り消します。", "とりけします", "はい、取り消します！", "取り消す"]
)
def test_plain_phrasings_of_the_wish_are_the_yes(api, domain, text: str) -> None:
    api.post(WITHDRAW, json=WITHDRAWN)
    state = {"consent_pending": "withdrawal", "withdraw_receipt_code": CODE}
    _, dispatcher = run(ActionWithdrawalFlow(), tracker(text, "withdraw_consent", state), domain)
    assert sent(dispatcher) == ["utter_withdraw_done"]
