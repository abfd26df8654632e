"""bot/server.py checks custom-action answers exactly as Rasa does, with the schema checked once."""

from __future__ import annotations

from typing import Any, Dict

import jsonschema
import pytest
from rasa.core.actions.action import RemoteAction

from bot import server

VALID = [
    {"events": [], "responses": []},
    {"events": [{"event": "slot", "name": "consent_stage", "value": "offer"}], "responses": []},
    {"responses": [{"response": "utter_greet"}, {"text": "こんにちは"}]},
    {},
]
INVALID = [
    {"events": [{"event": "slot", "value": 1}]},
    {"events": "not a list"},
    {"responses": ["not an object"]},
    {"events": [{"event": "no_such_event"}]},
]


def _stock(result: Dict[str, Any]) -> Any:
    action = RemoteAction("action_x", None)
    try:
        return RemoteAction._validate_action_result(action, result)
    except jsonschema.ValidationError as error:
        return error.message


def _ours(result: Dict[str, Any]) -> Any:
    action = RemoteAction("action_x", None)
    try:
        return server.validate_action_result(action, result)
    except jsonschema.ValidationError as error:
        return error.message


@pytest.mark.parametrize("result", VALID + INVALID)
def test_same_verdict_and_message_as_rasa(result: Dict[str, Any]) -> None:
    assert _ours(result) == _stock(result)


@pytest.mark.parametrize("result", INVALID)
def test_malformed_answers_are_refused(result: Dict[str, Any]) -> None:
    assert _ours(result) is not True


def test_install_replaces_rasas_check_once() -> None:
    original = RemoteAction._validate_action_result
    try:
        server.install()
        server.install()
        assert RemoteAction._validate_action_result is server.validate_action_result
    finally:
        RemoteAction._validate_action_result = original  # type: ignore[method-assign]
        server._INSTALLED = False
