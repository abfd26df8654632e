"""What the production profile exposes: the two channels, nothing else, and no way around Rasa;
the edge's security headers and per-client limits (nginx), and typed text that is never an
intent on either channel, whatever precedes its "/".

Shares the module's production profile with nothing else (its own stack). Each test speaks as
its own client address (X-Forwarded-For, believed from 127.0.0.1 as from the load balancer), so
the per-client limits of one test do not touch another.
"""

from __future__ import annotations

import socket
import time
from typing import Any, Dict, List

import pytest
import requests
import socketio

from tests.reliability.conftest import WEB_ORIGIN, Resident, Stack

pytestmark = pytest.mark.reliability


def test_only_the_channels_are_public(prod: Stack) -> None:
    public = prod.stack.public_url
    for path in ("/model/parse", "/conversations/x/tracker", "/status", "/version",
                 "/webhooks/rest/webhook", "/webhook", "/staff/", "/v1/offers"):  # fmt: skip
        for method in ("GET", "POST"):
            answer = requests.request(method, f"{public}{path}", json={}, timeout=10)
            assert answer.status_code == 404, (method, path, answer.status_code)
    unsigned = requests.post(f"{public}/webhooks/line/webhook", data=b"{}", timeout=10)
    assert unsigned.status_code == 401


def test_rasa_api_is_off_even_on_the_replicas(prod: Stack) -> None:
    replica = f"http://127.0.0.1:{prod.stack.ports.rasa[1]}"
    assert requests.get(f"{replica}/status", timeout=10).status_code == 404
    assert (
        requests.post(f"{replica}/model/parse", json={"text": "x"}, timeout=10).status_code == 404
    )


def test_action_servers_refuse_anyone_but_rasa(prod: Stack) -> None:
    proxy = f"http://127.0.0.1:{prod.stack.ports.actions_proxy}/webhook"
    call = {"next_action": "action_list_consents", "tracker": {"sender_id": "x"}, "domain": {}}
    assert requests.post(proxy, json=call, timeout=10).status_code == 401
    bearer = {"Authorization": "Bearer guessed"}
    assert requests.post(proxy, json=call, headers=bearer, timeout=10).status_code == 401


def client(address: str, origin: bool = True) -> Dict[str, str]:
    """Headers of a browser at `address` (behind the load balancer) on the city's page."""
    headers = {"X-Forwarded-For": address}
    if origin:
        headers["Origin"] = WEB_ORIGIN
    return headers


def test_the_web_chat_page_works_through_nginx(prod: Stack) -> None:
    public = prod.stack.public_url
    page = requests.get(f"{public}/webhooks/socketio/chat", headers=client("203.0.113.1"),
                        timeout=10)  # fmt: skip
    assert page.status_code == 200
    host = public.removeprefix("http://")
    policy = page.headers["Content-Security-Policy"]
    assert f"wss://{host}" in policy and "ws:" not in policy.replace("wss:", "")  # production
    session = requests.post(
        f"{public}/webhooks/socketio/session", headers=client("203.0.113.1"), timeout=10
    )
    assert session.status_code == 200 and session.json()["token"]
    # the profile's own loopback address is no allowed origin in production
    local = requests.post(
        f"{public}/webhooks/socketio/session", headers={"Origin": public}, timeout=10
    )
    assert local.status_code == 403


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/health"), ("GET", "/webhooks/socketio/chat"), ("POST", "/webhooks/socketio/session"),
     ("GET", "/webhooks/socketio/static/chat.js"), ("POST", "/webhooks/line/webhook"),
     ("GET", "/status")],
)  # fmt: skip
def test_security_headers_on_every_public_answer(prod: Stack, method: str, path: str) -> None:
    answer = requests.request(
        method, f"{prod.stack.public_url}{path}", headers=client("203.0.113.2"), timeout=10
    )
    headers = answer.headers  # a header sent twice would come back joined with ", "
    assert headers["Strict-Transport-Security"] == "max-age=63072000; includeSubDomains"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Referrer-Policy"] == "no-referrer"
    policy = headers["Content-Security-Policy"]
    assert policy.count("default-src") == 1 and "frame-ancestors 'none'" in policy
    if path != "/webhooks/socketio/chat":
        assert policy.startswith("default-src 'none'")


def test_new_web_chat_sessions_are_limited_per_client(prod: Stack) -> None:
    url = f"{prod.stack.public_url}/webhooks/socketio/session"
    statuses = [
        requests.post(url, headers=client("203.0.113.50"), timeout=10).status_code
        for _ in range(20)
    ]
    assert statuses[0] == 200 and 429 in statuses, statuses
    assert statuses.count(200) <= 13, statuses  # 1 + a burst of 10 (+1 per 10 s elapsed)
    assert requests.post(url, headers=client("203.0.113.51"), timeout=10).status_code == 200


def test_open_web_chat_connections_are_limited_per_client(prod: Stack) -> None:
    public = prod.stack.public_url
    held: List[socket.socket] = []
    try:
        for _ in range(20):  # requests whose body never comes hold their connection open
            connection = socket.create_connection(("127.0.0.1", prod.stack.ports.public), 10)
            connection.sendall(
                b"POST /webhooks/socketio/chat HTTP/1.1\r\nHost: chat\r\n"
                b"X-Forwarded-For: 203.0.113.60\r\nContent-Length: 100\r\n\r\n"
            )
            held.append(connection)
        time.sleep(0.5)
        page = f"{public}/webhooks/socketio/chat"
        over = requests.get(page, headers=client("203.0.113.60"), timeout=10)
        other = requests.get(page, headers=client("203.0.113.61"), timeout=10)
    finally:
        for connection in held:
            connection.close()
    assert over.status_code == 429
    assert other.status_code == 200


READ_BACK = "この内容で同意を記録してよろしいですか"
CONSENT = '/give_consent{"offer_id": "city_health_vitals"}'
BLANKS = ["", " ", "\u3000", "\t", "\n", "\r\n", "\u00a0", "\u2003", "\u200b", "\ufeff"]


@pytest.mark.parametrize("blank", BLANKS, ids=repr)
def test_typed_slash_text_is_never_an_intent_on_line(prod: Stack, blank: str) -> None:
    answer = Resident(prod.line).say(blank + CONSENT)
    assert answer.texts and not any(READ_BACK in t for t in answer.texts), answer


def web_chat_answers(prod: Stack, address: str, message: str) -> List[Dict[str, Any]]:
    """Open a session as a browser at `address`, type `message`, collect the answer."""
    public = prod.stack.public_url
    session = requests.post(
        f"{public}/webhooks/socketio/session", headers=client(address), timeout=10
    )
    session.raise_for_status()
    chat = socketio.Client(reconnection=False)
    answers: List[Dict[str, Any]] = []
    chat.on("bot_uttered", answers.append)
    chat.connect(
        public, socketio_path="/socket.io", auth={"token": session.json()["token"]},
        headers=client(address), transports=["polling"], wait_timeout=10,
    )  # fmt: skip
    try:
        chat.emit("user_uttered", {"message": message})
        deadline = time.monotonic() + 60
        while not answers and time.monotonic() < deadline:
            chat.sleep(0.2)
        chat.sleep(1)  # the rest of the answer
    finally:
        chat.disconnect()
    return answers


@pytest.mark.parametrize("blank", BLANKS, ids=repr)
def test_typed_slash_text_is_never_an_intent_on_the_web_chat(prod: Stack, blank: str) -> None:
    address = f"203.0.113.{100 + BLANKS.index(blank)}"
    answers = web_chat_answers(prod, address, blank + CONSENT)
    assert answers, "the assistant answered"
    assert not any(READ_BACK in a.get("text", "") for a in answers), answers
