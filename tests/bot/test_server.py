"""bot/server.py checks custom-action answers exactly as Rasa does, with the schema checked once."""

from __future__ import annotations

from typing import Any, Dict

import jsonschema
import pytest
from rasa.core.actions.action import RemoteAction

from bot import server

_ORIGINAL_VALIDATE = RemoteAction._validate_action_result

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


class _Flaky:
    """A tracker store failing `failures` times, then answering."""

    def __init__(self, failures: int) -> None:
        self.failures, self.calls = failures, 0

    async def retrieve(self, sender_id: str) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise ConnectionError("database restarting")
        return f"tracker of {sender_id}"


async def test_a_briefly_failing_tracker_store_is_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(server, "TRACKER_STORE_RETRY_DELAYS", (0.01, 0.01, 0.01))
    flaky = _Flaky(failures=2)
    assert await server.durably(flaky.retrieve, "s") == "tracker of s"
    assert flaky.calls == 3


async def test_a_lasting_failure_fails_the_message_instead_of_forgetting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(server, "TRACKER_STORE_RETRY_DELAYS", (0.01, 0.01))
    flaky = _Flaky(failures=10)
    with pytest.raises(ConnectionError):
        await server.durably(flaky.retrieve, "s")
    assert flaky.calls == 3


async def test_installed_failsafe_store_raises_rather_than_answering_none(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import rasa.core.tracker_store as tracker_store

    saved = {
        name: getattr(tracker_store.FailSafeTrackerStore, name)
        for name in ("retrieve", "retrieve_full_tracker", "save")
    }
    engine_kwargs = tracker_store.create_engine_kwargs
    monkeypatch.setattr(server, "TRACKER_STORE_RETRY_DELAYS", (0.01,))
    try:
        server.install()
        store = tracker_store.FailSafeTrackerStore(tracker_store.InMemoryTrackerStore(None))
        store._tracker_store.retrieve = _Flaky(failures=5).retrieve  # type: ignore[method-assign]
        with pytest.raises(ConnectionError):
            await store.retrieve("resident")
        assert tracker_store.create_engine_kwargs("sqlite:///x.db")["pool_pre_ping"] is True
    finally:
        for name, method in saved.items():
            setattr(tracker_store.FailSafeTrackerStore, name, method)
        tracker_store.create_engine_kwargs = engine_kwargs
        from rasa.core.actions.action import RemoteAction

        RemoteAction._validate_action_result = _ORIGINAL_VALIDATE
        server._INSTALLED = False
