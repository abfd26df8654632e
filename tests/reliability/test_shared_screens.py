"""Shared screens (issue #14) on the production profile: 「会話を終わる」 on one replica, and the
old token is refused by both replicas and through nginx (the revocation list is in Redis).

The sockets talk to each replica directly (as nginx would after a fail-over), with the city's
origin; the session itself is issued through nginx.
"""

from __future__ import annotations

import time
from typing import Any, Dict, List

import pytest
import requests
import socketio

from tests.reliability.conftest import WEB_ORIGIN, Stack

pytestmark = pytest.mark.reliability

ADDRESS = "203.0.113.200"


def headers() -> Dict[str, str]:
    return {"X-Forwarded-For": ADDRESS, "Origin": WEB_ORIGIN}


def open_socket(url: str, token: str) -> socketio.Client:
    chat = socketio.Client(reconnection=False)
    chat.connect(
        url, socketio_path="/socket.io", auth={"token": token}, headers=headers(),
        transports=["polling"], wait_timeout=10,
    )  # fmt: skip
    return chat


def answers_to(chat: socketio.Client, message: str, seconds: float = 60.0) -> List[Any]:
    answers: List[Any] = []
    chat.on("bot_uttered", answers.append)
    chat.emit("user_uttered", {"message": message})
    deadline = time.monotonic() + seconds
    while not answers and time.monotonic() < deadline:
        chat.sleep(0.2)
    return answers


def test_an_ended_session_is_refused_on_both_replicas(prod: Stack) -> None:
    public = prod.stack.public_url
    replicas = [f"http://127.0.0.1:{port}" for port in prod.stack.ports.rasa]
    issued = requests.post(f"{public}/webhooks/socketio/session", headers=headers(), timeout=10)
    issued.raise_for_status()
    token = str(issued.json()["token"])

    # the session works on both replicas: one tab on each
    first, second = open_socket(replicas[0], token), open_socket(replicas[1], token)
    ended_on_second: List[Any] = []
    second.on("session_ended", ended_on_second.append)
    try:
        assert answers_to(second, "情報銀行って何？"), "the second replica answered"
        assert first.call("session_end", None, timeout=10) == {"ended": True}
        # the tab on the other replica learns it at its next message and gets no answer
        late = answers_to(second, "まだ使える？", seconds=10)
        assert late == [] and ended_on_second == [{}]
    finally:
        for chat in (first, second):
            if chat.connected:
                chat.disconnect()

    for url in (*replicas, public):  # both replicas, and whichever nginx picks
        with pytest.raises(socketio.exceptions.ConnectionError):
            open_socket(url, token).disconnect()

    # a new session from the same screen works on both replicas
    fresh = requests.post(f"{public}/webhooks/socketio/session", headers=headers(), timeout=10)
    fresh.raise_for_status()
    for url in replicas:
        open_socket(url, str(fresh.json()["token"])).disconnect()
