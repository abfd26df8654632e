"""The consent flow's transition table: the same in the code and in the docs, and every row walked.

Each row of `TRANSITIONS` (actions/consent_states.py) is run through the real dispatchers
(`action_consent_flow`, `action_handle_yes_no`) against the faked consent service of the other
action tests: the conversation is put in the row's state, the row's event is sent, and the step's
answer and the state that follows are checked against the row.
"""

from __future__ import annotations

import re
from typing import Any, Dict, FrozenSet, Iterator, List, Tuple

import pytest
import responses
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.consent import ActionConsentFlow
from actions.consent_states import (
    TRANSITIONS,
    Event,
    Pending,
    Stage,
    State,
    Step,
    event_of,
    state_of,
    table_rows,
)
from actions.yes_no import ActionHandleYesNo, last_question
from tests.actions.conftest import FAKE_API, run_action, user_event
from tests.actions.test_consent import C1, LEVEL1, LEVEL2, RECEIPT, confirming
from tests.conftest import PROJECT_ROOT

DOC = PROJECT_ROOT / "docs" / "consent-in-chat.md"
ROW = re.compile(r"^\| *([a-z_]+) *\| *([a-z_]+) *\| *([a-z_]+) *\| *([a-z_, ]+?) *\|$")

# The answer each step gives (one of these is among the responses sent).
ANSWERS: Dict[Step, FrozenSet[str]] = {
    Step.SMALL_TALK: frozenset({"utter_affirm", "utter_deny"}),
    Step.LIST_OFFERS: frozenset({"utter_consent_choose_offer"}),
    Step.CHOOSE: frozenset({"utter_consent_offer_explanation_level2"}),
    Step.RESUME: frozenset({"utter_consent_resume"}),
    Step.RESUME_OR_LIST: frozenset({"utter_consent_resume", "utter_consent_choose_offer"}),
    Step.ANSWER_CONSULTED: frozenset({"utter_consent_readback_level2"}),
    Step.ANSWER_NOT_YET: frozenset({"utter_recommend_consult_first"}),
    Step.ANSWER_WILL_NOT: frozenset({"utter_consent_readback_level2"}),
    Step.ASK_DOCTOR_AGAIN: frozenset({"utter_ask_family_doctor"}),
    Step.ASK_CONTINUE_OR_PAUSE: frozenset({"utter_consent_choose_continue_or_pause"}),
    Step.READ_BACK: frozenset({"utter_consent_readback_level2"}),
    Step.PAUSE: frozenset({"utter_consent_paused"}),
    Step.SUBMIT: frozenset({"utter_consent_recorded"}),
    Step.CANCEL: frozenset({"utter_consent_cancelled"}),
    Step.NOTHING_PENDING: frozenset({"utter_consent_nothing_pending"}),
    Step.WITHDRAWAL: frozenset({"utter_withdraw_done", "utter_withdraw_cancelled"}),
    Step.ASK_SAME_PERSON: frozenset({"utter_ask_same_person"}),
    Step.CONFIRM_SAME_PERSON: frozenset({"utter_same_person_confirmed"}),
    Step.NOT_SAME_PERSON: frozenset({"utter_not_same_person"}),
}

LEVEL2_CHOSEN = {
    "consent_offer_id": LEVEL2["offer_id"],
    "consent_request_key": "abc123",
}
SLOTS: Dict[State, Dict[str, Any]] = {
    State.IDLE: {},
    State.RESUMABLE: {**LEVEL2_CHOSEN, "consent_stage": "paused"},
    State.DOCTOR_ASKED: {
        **LEVEL2_CHOSEN,
        "consent_pending": "consent",
        "consent_stage": "doctor_asked",
    },
    State.DOCTOR_NOT_YET: {
        **LEVEL2_CHOSEN,
        "consent_pending": "consent",
        "consent_stage": "doctor_not_yet",
        "family_doctor_consulted": "not_yet",
    },
    State.CONFIRMING: confirming(LEVEL1),
    State.WITHDRAWAL_ASKED: {"consent_pending": "withdrawal", "withdraw_consent_id": C1},
    State.RESUMED_SCREEN: {"session_resumed": True},
    State.SAME_PERSON_ASKED: {"session_resumed": True},
}
MESSAGES: Dict[Event, Tuple[str, str, List[Tuple[str, str]]]] = {
    Event.YES: ("はい", "affirm", []),
    Event.NO: ("いいえ", "deny", []),
    Event.PROCEED: (
        '/affirm{"consent_choice": "proceed"}',
        "affirm",
        [("consent_choice", "proceed")],
    ),
    Event.GIVE_CONSENT: ("同意したい", "give_consent", []),
    Event.TYPED_CONSENT_YES: ("同意します", "give_consent", []),
    Event.CHOOSE_OFFER: ("/give_consent", "give_consent", [("offer_id", LEVEL2["offer_id"])]),
    Event.DOCTOR_CONSULTED: (
        "相談した",
        "answer_family_doctor",
        [("family_doctor_answer", "consulted")],
    ),
    Event.DOCTOR_NOT_YET: ("まだ", "answer_family_doctor", [("family_doctor_answer", "not_yet")]),
    Event.DOCTOR_WILL_NOT: (
        "しない",
        "answer_family_doctor",
        [("family_doctor_answer", "will_not")],
    ),
    Event.DOCTOR_UNCLEAR: ("うーん", "answer_family_doctor", []),
}
YES_NO_EVENTS = (Event.YES, Event.NO, Event.PROCEED)


@pytest.fixture(autouse=True)
def consent_settings(consent_env: None) -> None:
    """Every test here talks to the faked consent service."""


@pytest.fixture
def service() -> Iterator[responses.RequestsMock]:
    subject = r"/v1/subjects/[0-9a-f]{64}/consents"
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.get(f"{FAKE_API}/v1/offers", json=[LEVEL1, LEVEL2])
        for offer in (LEVEL1, LEVEL2):
            mock.get(f"{FAKE_API}/v1/offers/{offer['offer_id']}", json=offer)
        mock.get(
            f"{FAKE_API}/v1/terms", json={"version": "2026-11-01", "sha256": "x", "text_ja": ""}
        )
        mock.get(f"{FAKE_API}/v1/catalog/items", json=[])
        mock.post(
            f"{FAKE_API}/v1/consents",
            json={"consent_id": C1, "status": "active", "receipt": RECEIPT},
            status=201,
        )
        mock.get(
            re.compile(re.escape(FAKE_API) + subject),
            json=[{"consent_id": C1, "offer_id": LEVEL1["offer_id"], "status": "active",
                   "receipt_id": "rcpt-0001"}],
        )  # fmt: skip
        mock.post(
            f"{FAKE_API}/v1/consents/{C1}/withdraw",
            json={"consent_id": C1, "status": "withdrawn", "receipt": RECEIPT},
        )
        yield mock


def _doc_rows() -> List[Tuple[str, str, str, str]]:
    text = DOC.read_text(encoding="utf-8")
    section = text.split("## The flow as a state machine", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        match = ROW.match(line.strip())
        if match and match.group(1) != "state":
            rows.append((match[1], match[2], match[3], ", ".join(match[4].split(", "))))
    return rows


def test_the_docs_show_the_same_table_as_the_code() -> None:
    assert _doc_rows() == table_rows()


def test_every_state_meets_every_event_in_the_table() -> None:
    assert set(TRANSITIONS) == {(s, e) for s in State for e in Event}
    assert set(ANSWERS) == set(Step)


def test_the_stored_values_are_the_slots_values(domain: Dict[str, Any]) -> None:
    """The enums name exactly the values domain.yml (docs/contract.md) declares for the slots."""
    assert [s.value for s in Stage] == domain["slots"]["consent_stage"]["values"]
    assert [p.value for p in Pending] == domain["slots"]["consent_pending"]["values"]


def _tracker(state: State, event: Event) -> Tracker:
    text, intent, entities = MESSAGES[event]
    message = user_event(text, intent, entities)
    events: List[Dict[str, Any]] = []
    if state is State.SAME_PERSON_ASKED:
        asked = {"event": "bot", "text": "…", "metadata": {"utter_action": "utter_ask_same_person"}}
        events += [{"event": "action", "name": "action_session_resumed"}, asked]
    events += [{"event": "action", "name": "action_listen"}, message]
    return Tracker(
        "test-sender", dict(SLOTS[state]), message["parse_data"], events, False, None, {},
        "action_listen",
    )  # fmt: skip


def _after(before: Tracker, events: List[Dict[str, Any]], sent: List[str | None]) -> Tracker:
    slots = dict(before.slots)
    for event in events:
        if event["event"] == "slot":
            slots[event["name"]] = event["value"]
    said = [{"event": "bot", "text": "…", "metadata": {"utter_action": r}} for r in sent]
    return Tracker(
        before.sender_id, slots, before.latest_message, [*before.events, *said], False, None,
        {}, "action_listen",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("state", "event"), list(TRANSITIONS), ids=[f"{s.value}-{e.value}" for s, e in TRANSITIONS]
)
def test_each_transition_takes_its_step_and_reaches_its_states(
    service: responses.RequestsMock, domain: Dict[str, Any], state: State, event: Event
) -> None:
    row = TRANSITIONS[(state, event)]
    before = _tracker(state, event)
    assert state_of(before, last_question(before)) is state
    assert event_of(before) is event
    action = ActionHandleYesNo() if event in YES_NO_EVENTS else ActionConsentFlow()
    dispatcher = CollectingDispatcher()
    events = run_action(action, dispatcher, before, domain)
    sent = [m.get("response") for m in dispatcher.messages]
    assert ANSWERS[row.step] & set(sent), (row.step, sent)
    after = _after(before, events, sent)
    assert state_of(after, last_question(after)) in row.next, (sent, events)


def test_a_stray_data_item_does_not_hide_a_typed_yes() -> None:
    # DIET sometimes tags a particle as data_item; only canonical items make a new request.
    stray = user_event("はい、同意します", "give_consent", [("data_item", "と")])
    tracker = Tracker(
        "test-sender", dict(SLOTS[State.CONFIRMING]), stray["parse_data"],
        [{"event": "action", "name": "action_listen"}, stray], False, None, {}, "action_listen",
    )  # fmt: skip
    assert event_of(tracker) is Event.TYPED_CONSENT_YES
    named = user_event("血圧も同意します", "give_consent", [("data_item", "blood_pressure")])
    tracker = Tracker(
        "test-sender", {}, named["parse_data"], [named], False, None, {}, "action_listen"
    )
    assert event_of(tracker) is Event.GIVE_CONSENT
