"""Helpers for action tests: trackers built the way Rasa sends them to the action server."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any, Dict, Iterator, List, Tuple

import pytest
import yaml
from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.consent_client import get_client
from bot.settings import get_settings
from tests.conftest import PROJECT_ROOT

# The consent service the action tests fake (with `responses`), and the pseudonym key they use.
FAKE_API = "http://consent.test"
FAKE_PSEUDONYM_KEY = "test-pseudonym-key"


def user_event(
    text: str, intent: str, entities: List[Tuple[str, str]] | None = None
) -> Dict[str, Any]:
    """A `user` event as it appears in a tracker's event list."""
    return {
        "event": "user",
        "text": text,
        "parse_data": {
            "text": text,
            "intent": {"name": intent, "confidence": 0.9},
            "entities": [
                {"entity": e, "value": v, "start": i, "end": i + 1, "extractor": "DIETClassifier"}
                for i, (e, v) in enumerate(entities or [])
            ],
        },
    }


def tracker_for(*user_events: Dict[str, Any], slots: Dict[str, Any] | None = None) -> Tracker:
    """A tracker whose latest message is the last of `user_events`."""
    events: List[Dict[str, Any]] = []
    for event in user_events:
        events += [event, {"event": "action", "name": "action_listen"}]
    events.pop()
    return Tracker(
        sender_id="test-sender",
        slots=slots or {},
        latest_message=user_events[-1]["parse_data"],
        events=events,
        paused=False,
        followup_action=None,
        active_loop={},
        latest_action_name="action_listen",
    )


def run_action(
    action: Action, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]
) -> List[Dict[str, Any]]:
    """Run an action as rasa_sdk does: awaited when its `run` is a coroutine (the consent ones)."""
    events = action.run(dispatcher, tracker, domain)
    if inspect.isawaitable(events):
        events = asyncio.run(events)
    return list(events)


def responses(dispatcher: CollectingDispatcher) -> List[str | None]:
    """The response names the action sent, in order."""
    return [m.get("response") for m in dispatcher.messages]


@pytest.fixture
def dispatcher() -> CollectingDispatcher:
    return CollectingDispatcher()


@pytest.fixture(autouse=True)
def fresh_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> Iterator[None]:
    """Each test reads settings anew from its own environment, never from the developer's .env."""
    for name in ("CITY_CONTACT_NAME", "CITY_CONTACT_PHONE", "CITY_CONTACT_HOURS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr("bot.settings.Settings.__config__.env_file", str(tmp_path / "absent.env"))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def consent_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Point the actions at the faked consent service, with no waiting between retries."""
    monkeypatch.setenv("CONSENT_API_URL", FAKE_API)
    monkeypatch.setenv("CONSENT_API_TOKEN", "client-token")
    monkeypatch.setenv("SUBJECT_PSEUDONYM_KEY", FAKE_PSEUDONYM_KEY)
    monkeypatch.setattr("actions.consent_client.time.sleep", lambda _seconds: None)
    get_settings.cache_clear()
    get_client.cache_clear()
    yield
    get_settings.cache_clear()
    get_client.cache_clear()


@pytest.fixture(scope="session")
def domain() -> Dict[str, Any]:
    """The assistant's domain, as the action server's responses are checked against it."""
    return dict(yaml.safe_load((PROJECT_ROOT / "domain.yml").read_text(encoding="utf-8")))
