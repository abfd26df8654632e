"""Linking the web chat and LINE (issue #14, actions/linking.py) against a mocked consent service.

The code is found however it was typed; each refusal gets its own answer; a message without a
code asks for it without a call; ids never steer a call elsewhere.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from typing import Any, Dict

import pytest
import responses
from rasa_sdk.executor import CollectingDispatcher

from actions.consent_client import ConsentClient, ConsentRefused
from actions.linking import (
    ActionIssueLinkCode,
    ActionRedeemLinkCode,
    ActionUnlinkChannels,
    find_link_code,
)
from tests.actions.conftest import FAKE_API, FAKE_PSEUDONYM_KEY, run_action, tracker_for, user_event
from tests.actions.conftest import responses as sent

API = FAKE_API
KEY = FAKE_PSEUDONYM_KEY
SUBJECT = hmac.new(KEY.encode(), b"rest:test-sender", hashlib.sha256).hexdigest()
LINKS = f"{API}/v1/subjects/{SUBJECT}/links"
CODES = f"{API}/v1/subjects/{SUBJECT}/link-codes"


@pytest.fixture(autouse=True)
def consent_settings(consent_env: None) -> None:
    """Every test here talks to the faked consent service."""


@pytest.mark.parametrize(
    ("text", "digits"),
    [
        ("連携コード 4821-0937", "48210937"),
        ("連携コードは４８２１－０９３７です", "48210937"),
        ("コード 4821 0937", "48210937"),
        ("48210937", "48210937"),
        ("4821ー0937で連携", "48210937"),
    ],
)
def test_a_code_is_found_however_it_was_typed(text: str, digits: str) -> None:
    assert find_link_code(text) == digits


@pytest.mark.parametrize(
    "text", ["連携したい", "1234-567", "電話は 03-1234-5678 です", "123456789", "1234-5678-9"]
)
def test_anything_else_is_no_code(text: str) -> None:
    assert find_link_code(text) is None


@responses.activate
def test_issuing_shows_the_code_its_expiry_and_the_other_channel(
    dispatcher: CollectingDispatcher, domain: Dict[str, Any]
) -> None:
    expires = dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=10)
    responses.post(CODES, json={"code": "4821-0937", "expires_at": expires.isoformat()}, status=201)
    tracker = tracker_for(user_event("LINEとWebをつなげたい", "link_channels"))
    run_action(ActionIssueLinkCode(), dispatcher, tracker, domain)
    assert sent(dispatcher) == ["utter_link_code_issued"]
    message = dispatcher.messages[0]
    assert message["link_code"] == "4821-0937"
    assert message["minutes"] == 10
    assert message["until"] == expires.astimezone(dt.timezone(dt.timedelta(hours=9))).strftime(
        "%H:%M"
    )
    assert message["other_channel"] == "LINE"
    assert json.loads(responses.calls[0].request.body) == {"channel": "rest"}


@responses.activate
def test_issuing_while_linked_says_so(
    dispatcher: CollectingDispatcher, domain: Dict[str, Any]
) -> None:
    responses.post(CODES, json={"reason": "already_linked", "message": "x"}, status=409)
    run_action(
        ActionIssueLinkCode(), dispatcher, tracker_for(user_event("連携", "link_channels")), domain
    )
    assert sent(dispatcher) == ["utter_link_already_linked"]


@responses.activate
def test_a_typed_code_links(dispatcher: CollectingDispatcher, domain: Dict[str, Any]) -> None:
    responses.post(
        LINKS,
        json={"linked": True, "link_id": "l", "partner_channel": "web", "linked_at": None},
        status=201,
    )
    tracker = tracker_for(user_event("連携コードは ４８２１－０９３７ です", "inform_link_code"))
    run_action(ActionRedeemLinkCode(), dispatcher, tracker, domain)
    assert sent(dispatcher) == ["utter_link_done"]
    assert dispatcher.messages[0]["other_channel"] == "Webチャット"
    assert json.loads(responses.calls[0].request.body) == {"code": "48210937", "channel": "rest"}


@pytest.mark.parametrize(
    ("status", "reason", "answer"),
    [
        (404, "unknown_link_code", "utter_link_code_unknown"),
        (410, "link_code_expired", "utter_link_code_expired"),
        (409, "link_code_used", "utter_link_code_used"),
        (422, "same_channel", "utter_link_code_same_channel"),
        (422, "own_link_code", "utter_link_code_same_channel"),
        (409, "already_linked", "utter_link_already_linked"),
        (429, "too_many_wrong_codes", "utter_link_code_too_many"),
        (403, "something_else", "utter_link_code_unknown"),
    ],
)
@responses.activate
def test_each_refusal_gets_its_answer(
    dispatcher: CollectingDispatcher, domain: Dict[str, Any], status: int, reason: str, answer: str
) -> None:
    responses.post(LINKS, json={"reason": reason, "message": "x"}, status=status)
    tracker = tracker_for(user_event("連携コード 4821-0937", "inform_link_code"))
    run_action(ActionRedeemLinkCode(), dispatcher, tracker, domain)
    assert sent(dispatcher) == [answer]


@responses.activate
def test_without_a_code_it_asks_for_one_without_a_call(
    dispatcher: CollectingDispatcher, domain: Dict[str, Any]
) -> None:
    run_action(
        ActionRedeemLinkCode(),
        dispatcher,
        tracker_for(user_event("連携コードを入れます", "inform_link_code")),
        domain,
    )
    assert sent(dispatcher) == ["utter_link_ask_code"]
    assert len(responses.calls) == 0


@responses.activate
def test_unlinking(dispatcher: CollectingDispatcher, domain: Dict[str, Any]) -> None:
    responses.delete(LINKS, json={"linked": False}, status=200)
    responses.delete(LINKS, json={"reason": "not_linked", "message": "x"}, status=404)
    tracker = tracker_for(user_event("連携を解除", "unlink_channels"))
    run_action(ActionUnlinkChannels(), dispatcher, tracker, domain)
    run_action(ActionUnlinkChannels(), dispatcher, tracker, domain)
    assert sent(dispatcher) == ["utter_unlink_done", "utter_unlink_not_linked"]


def test_the_client_never_sends_a_code_of_the_wrong_shape() -> None:
    client = ConsentClient.from_settings()
    with pytest.raises(ConsentRefused) as refused:
        client.redeem_link_code(SUBJECT, "web", "../audit/verify")
    assert refused.value.reason == "invalid_link_code"
    with pytest.raises(ValueError):
        client.issue_link_code("../x", "web")
    with pytest.raises(ValueError):
        client.unlink("not-a-subject")


@pytest.mark.parametrize(
    ("action", "event"),
    [
        (ActionIssueLinkCode(), user_event("連携コードを発行して", "link_channels")),
        (ActionRedeemLinkCode(), user_event("連携コード 4821-0937", "inform_link_code")),
    ],
)
@responses.activate
def test_a_resumed_session_asks_who_is_at_the_screen_before_linking(
    dispatcher: CollectingDispatcher, action: Any, event: Dict[str, Any]
) -> None:
    domain = {"responses": {"utter_ask_same_person": [{"text": "同じ方ですか"}]}}
    tracker = tracker_for(event, slots={"session_resumed": True})
    run_action(action, dispatcher, tracker, domain)
    assert sent(dispatcher) == ["utter_ask_same_person"]
    assert len(responses.calls) == 0
