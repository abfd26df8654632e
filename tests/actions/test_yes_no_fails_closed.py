"""The yes/no action never turns another intent into a yes (hostile review, issue 20).

`action_handle_yes_no` is run for affirm and deny (data/rules.yml). Should the policy ever run
it for another message of the consent flow (a misprediction: 「同意しません」 read as
give_consent at the read-back), the message must take its own row of the table, never the row
of a yes, which at the read-back records the consent.
"""

from __future__ import annotations

from typing import Any, Dict

import pytest
import responses
from rasa_sdk.executor import CollectingDispatcher

from actions.consent_states import TRANSITIONS, Event, State, Step
from actions.yes_no import ActionHandleYesNo
from tests.actions.conftest import run_action
from tests.actions.test_consent_states import (  # the table's own fixtures and messages
    ANSWERS,
    YES_NO_EVENTS,
    _tracker,
    consent_settings,  # noqa: F401 - autouse fixture
    service,  # noqa: F401 - fixture
)

OTHER = [(s, e) for s, e in TRANSITIONS if e not in YES_NO_EVENTS]


@pytest.mark.parametrize(("state", "event"), OTHER, ids=[f"{s.value}-{e.value}" for s, e in OTHER])
def test_another_intent_takes_its_own_row(
    service: responses.RequestsMock,  # noqa: F811
    domain: Dict[str, Any],
    state: State,
    event: Event,
) -> None:
    before = _tracker(state, event)
    dispatcher = CollectingDispatcher()
    run_action(ActionHandleYesNo(), dispatcher, before, domain)
    sent = {m.get("response") for m in dispatcher.messages}
    row = TRANSITIONS[(state, event)]
    assert ANSWERS[row.step] & sent, (row.step, sent)
    recorded = [
        c
        for c in service.calls
        if c.request.method == "POST" and c.request.url.endswith("/v1/consents")
    ]
    if row.step is not Step.SUBMIT:
        assert recorded == []


def test_a_give_consent_message_at_the_read_back_records_nothing(
    service: responses.RequestsMock,  # noqa: F811
    domain: Dict[str, Any],
) -> None:
    before = _tracker(State.CONFIRMING, Event.GIVE_CONSENT)
    run_action(ActionHandleYesNo(), CollectingDispatcher(), before, domain)
    assert not [c for c in service.calls if c.request.url.endswith("/v1/consents")]
