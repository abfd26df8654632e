"""A stalled consent service stalls only the resident waiting on it (issue 20).

The real action server (`python -m bot.action_server`) talks to a stand-in consent service that
holds one resident's request until the test lets it go. While it is held, another resident's
action through the same action server must be answered. The test orders events with
`threading.Event`s only: no sleeps, no timing assertions (the timeouts below only keep a broken
build from hanging the run).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, Iterator, List

import pytest
import requests

from tests.bot.test_action_server import AUTH, TOKEN, _env, _free_port, running_action_server

PSEUDONYM_KEY = secrets.token_hex(32)
# Long enough that, on a build whose loop blocks, the held call is still held when the test gives
# up waiting for the other resident (the held one then ends first, and the test fails).
HANG_GUARD_SECONDS = 20


def _subject(sender: str) -> str:
    message = f"rest:{sender}".encode()
    return hmac.new(PSEUDONYM_KEY.encode(), message, hashlib.sha256).hexdigest()


class StandIn:
    """A consent service that answers every subject's list at once, except one, held."""

    def __init__(self, held_subject: str) -> None:
        self.held_subject = held_subject
        self.held = threading.Event()  # the held request has arrived
        self.release = threading.Event()  # the test lets it go
        self.paths: List[str] = []
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                stand_in.paths.append(self.path)
                if f"/v1/subjects/{stand_in.held_subject}/consents" in self.path:
                    stand_in.held.set()
                    stand_in.release.wait(HANG_GUARD_SECONDS)
                body = json.dumps([]).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> StandIn:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def stand_in() -> Iterator[StandIn]:
    with StandIn(_subject("resident-a")) as service:
        yield service


@pytest.fixture
def action_server(stand_in: StandIn, tmp_path: Any) -> Iterator[str]:
    port = _free_port()
    log = tmp_path / "actions.log"
    env = _env(
        ACTION_SERVER_TOKEN=TOKEN,
        CONSENT_API_URL=stand_in.url,
        SUBJECT_PSEUDONYM_KEY=PSEUDONYM_KEY,
        # One attempt, and a read timeout longer than the test waits: a held call is never
        # retried or given up while the other resident's answer is awaited.
        CONSENT_API_READ_TIMEOUT=str(HANG_GUARD_SECONDS * 2),
    )
    with running_action_server(port, log, env) as url:
        yield url


def _list_consents(sender: str) -> Dict[str, Any]:
    return {
        "next_action": "action_list_consents",
        "sender_id": sender,
        "tracker": {"sender_id": sender, "slots": {}, "latest_message": {}, "events": []},
        "domain": {},
        "version": "3.6.21",
    }


def test_a_held_consent_call_does_not_hold_another_resident(
    stand_in: StandIn, action_server: str
) -> None:
    order: List[str] = []
    first: Dict[str, Any] = {}

    def resident_a() -> None:
        answer = requests.post(
            f"{action_server}/webhook",
            json=_list_consents("resident-a"),
            headers=AUTH,
            timeout=HANG_GUARD_SECONDS * 3,
        )
        first["answer"] = answer
        order.append("resident-a answered")

    waiting = threading.Thread(target=resident_a, daemon=True)
    waiting.start()
    assert stand_in.held.wait(HANG_GUARD_SECONDS), "resident A's call never reached the service"

    try:
        second = requests.post(
            f"{action_server}/webhook",
            json=_list_consents("resident-b"),
            headers=AUTH,
            timeout=HANG_GUARD_SECONDS,
        )
    except requests.Timeout:
        pytest.fail("resident B got no answer while resident A's consent call was held")
    order.append("resident-b answered")
    held_still = not stand_in.release.is_set() and "answer" not in first
    stand_in.release.set()
    waiting.join(HANG_GUARD_SECONDS)

    assert second.status_code == 200
    assert [r["response"] for r in second.json()["responses"]] == ["utter_consents_none"]
    assert held_still, order
    assert order == ["resident-b answered", "resident-a answered"]
    assert first["answer"].status_code == 200
    assert [r["response"] for r in first["answer"].json()["responses"]] == ["utter_consents_none"]
