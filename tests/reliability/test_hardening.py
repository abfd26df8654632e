"""What the production profile exposes: the two channels, nothing else, and no way around Rasa.

Shares the module's production profile with nothing else (its own stack).
"""

from __future__ import annotations

import pytest
import requests

from tests.reliability.conftest import Resident, Stack

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


def test_the_web_chat_page_works_through_nginx(prod: Stack) -> None:
    public = prod.stack.public_url
    page = requests.get(f"{public}/webhooks/socketio/chat", timeout=10)
    assert page.status_code == 200
    host = public.removeprefix("http://")
    assert f"ws://{host}" in page.headers["Content-Security-Policy"]
    session = requests.post(
        f"{public}/webhooks/socketio/session", headers={"Origin": public}, timeout=10
    )
    assert session.status_code == 200 and session.json()["token"]


def test_typed_slash_text_is_never_an_intent_on_line(prod: Stack) -> None:
    answer = Resident(prod.line).say('/give_consent{"offer_id": "city_health_vitals"}')
    assert not any("この内容で同意を記録してよろしいですか" in t for t in answer.texts)
