"""The counter's consultation memo (issue 18): /staff/counter/memo asks the Rasa side for the page.

A fake Rasa side (a local HTTP server) stands for `bot/webchat/memo_counter.py` (tested in
tests/bot/test_counter_memo.py): the console asks it with RASA_API_TOKEN, serves its page and
stylesheet as they come, writes the access log, needs the counter or admin role, and shows an
error when Rasa cannot be reached. Both for real, printed by Chromium:
tests/e2e/test_counter_memo.py.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import Engine, select

from consent_service.config import Settings
from consent_service.main import create_app
from consent_service.models import StaffAccessLog
from scripts.harness import free_port
from tests.backend.conftest import START, Clock
from tests.backend.test_counter import add_user, log_in

TOKEN = "counter-memo-backend-test-token-0123456789abcdefghij"
LEVEL2 = "city_health_checkup"  # a level-2 offer of the shipped catalogue
LEVEL1 = "city_health_vitals"
CLOSED = "restaurants_allergy"  # level 2, not consentable (no ethics approval)
PAGE = '<!doctype html><html lang="ja"><link rel="stylesheet" href="memo.css"><h1>相談メモ</h1>'
CSS = "@page { size: A4; }"


class FakeRasa:
    """Answers like bot/webchat/memo_counter.py: the page for LEVEL2 with the token, else not."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, list[str]], str]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urlsplit(self.path)
                fake.calls.append((url.path, parse_qs(url.query), self.headers["Authorization"]))
                if url.path == "/webhooks/socketio/memo/memo.css":
                    self._answer(200, "text/css; charset=utf-8", CSS)
                elif self.headers["Authorization"] != f"Bearer {TOKEN}":
                    self._answer(401, "application/json", '{"reason": "unauthorized"}')
                elif url.path == f"/webhooks/socketio/counter/memo/{LEVEL2}":
                    self._answer(200, "text/html; charset=utf-8", PAGE)
                else:
                    self._answer(404, "application/json", '{"reason": "unknown_offer"}')

            def _answer(self, status: int, kind: str, body: str) -> None:
                data = body.encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeRasa:
        self.thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def rasa() -> Iterator[FakeRasa]:
    with FakeRasa() as fake:
        yield fake


def console_for(settings: Settings, engine: Engine, url: str, token: str = TOKEN) -> TestClient:
    configured = settings.model_copy(
        update={
            "staff_rasa_url": url,
            "rasa_api_token": SecretStr(token),
            "staff_rasa_timeout_seconds": 5.0,
            "staff_mask_with_ginza": False,
        }
    )
    return TestClient(create_app(configured, engine=engine, clock=Clock(START)),
                      base_url="https://testserver")  # fmt: skip


@pytest.fixture
def console(settings: Settings, engine: Engine, rasa: FakeRasa) -> Iterator[TestClient]:
    with console_for(settings, engine, rasa.url) as client:
        yield client


def logged(client: TestClient) -> list[tuple[str, str, str]]:
    with client.app.state.sessionmaker() as session:
        rows = session.execute(select(StaffAccessLog).order_by(StaffAccessLog.id)).scalars()
        return [(e.username, e.action, e.target) for e in rows if e.action != "login"]


def sign_in(client: TestClient, role: str) -> None:
    name = f"{role}-staff"
    assert log_in(client, name, add_user(client, name, role)).status_code == 303


@pytest.mark.parametrize("role", ["counter", "admin"])
def test_counter_staff_and_admins_print_the_memo_and_it_is_logged(
    console: TestClient, rasa: FakeRasa, role: str
) -> None:
    sign_in(console, role)
    picker = console.get("/staff/counter/memo")
    assert picker.status_code == 200
    assert f'value="{LEVEL2}"' in picker.text
    assert f'value="{LEVEL1}"' not in picker.text and f'value="{CLOSED}"' not in picker.text
    printed = console.get(f"/staff/counter/memo/print?offer={LEVEL2}&plain=1&furigana=1")
    assert printed.status_code == 200
    assert printed.text == PAGE  # the Rasa side's page, as it came
    assert "default-src 'self'" in printed.headers["content-security-policy"]
    assert printed.headers["cache-control"] == "no-store"
    path, query, authorization = rasa.calls[-1]
    assert path == f"/webhooks/socketio/counter/memo/{LEVEL2}"
    assert query == {"plain": ["1"], "furigana": ["1"]}
    assert authorization == f"Bearer {TOKEN}"
    css = console.get("/staff/counter/memo/memo.css")  # the page's relative stylesheet
    assert css.status_code == 200 and css.text == CSS
    assert css.headers["content-type"].startswith("text/css")
    assert logged(console) == [(f"{role}-staff", "counter_memo_printed", LEVEL2)]


def test_the_counter_page_links_the_memo(console: TestClient) -> None:
    sign_in(console, "counter")
    assert 'href="/staff/counter/memo"' in console.get("/staff/counter").text


@pytest.mark.parametrize("role", ["viewer", "editor"])
def test_other_roles_are_sent_back(console: TestClient, rasa: FakeRasa, role: str) -> None:
    sign_in(console, role)
    for path in ("/staff/counter/memo", f"/staff/counter/memo/print?offer={LEVEL2}",
                 "/staff/counter/memo/memo.css"):  # fmt: skip
        response = console.get(path, follow_redirects=False)
        assert (response.status_code, response.headers["location"]) == (302, "/staff/"), path
    assert rasa.calls == [] and logged(console) == []


def test_no_memo_without_a_session(console: TestClient, rasa: FakeRasa) -> None:
    response = console.get(f"/staff/counter/memo/print?offer={LEVEL2}", follow_redirects=False)
    assert (response.status_code, response.headers["location"]) == (302, "/staff/login")
    assert rasa.calls == []


def test_rasa_down_is_an_error_page_and_logged(settings: Settings, engine: Engine) -> None:
    with console_for(settings, engine, f"http://127.0.0.1:{free_port()}") as console:
        sign_in(console, "counter")
        answer = console.get(f"/staff/counter/memo/print?offer={LEVEL2}")
        assert answer.status_code == 503
        assert "アシスタント（Rasa）に問い合わせできませんでした" in answer.text
        [(_, action, target)] = logged(console)
        assert action == "counter_memo_failed"
        assert target.startswith(f"{LEVEL2} rasa_unavailable ConnectError")
        assert console.get("/staff/counter/memo/memo.css").status_code == 503


def test_a_refused_token_is_an_error_page(
    settings: Settings, engine: Engine, rasa: FakeRasa
) -> None:
    with console_for(settings, engine, rasa.url, token="x" * 43) as console:
        sign_in(console, "counter")
        answer = console.get(f"/staff/counter/memo/print?offer={LEVEL2}")
        assert answer.status_code == 503 and "問い合わせできませんでした" in answer.text
        assert logged(console)[0][2] == f"{LEVEL2} rasa_unavailable HTTP 401"


@pytest.mark.parametrize("offer", [LEVEL1, "no_such_offer", "../../v1/terms", "X"])
def test_an_offer_without_a_memo_is_told(console: TestClient, rasa: FakeRasa, offer: str) -> None:
    sign_in(console, "counter")
    answer = console.get("/staff/counter/memo/print", params={"offer": offer})
    assert answer.status_code == 404
    assert "相談メモは作れません" in answer.text
    assert all(path.startswith("/webhooks/socketio/counter/memo/") for path, _, _ in rasa.calls)
