"""bot/server.py checks custom-action answers exactly as Rasa does, with the schema checked once,
and starts nothing open: tokens required and strong, the API closed, bodies bounded, files
private."""

from __future__ import annotations

import json
import os
import secrets
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

import jsonschema
import pytest
import requests
from rasa.core.actions.action import RemoteAction

from bot import server, startup
from bot.settings import Settings
from scripts.harness import free_port
from tests.conftest import PROJECT_ROOT

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


def test_install_replaces_rasas_check_once(installed_lookup: Any) -> None:
    wrapped_run = RemoteAction.run
    server.install()
    assert RemoteAction._validate_action_result is server.validate_action_result
    assert RemoteAction.run is wrapped_run  # installed once, not wrapped twice


SESSION_DOMAIN = """
version: "3.1"
intents: [greet]
slots:
  plain_japanese:
    type: bool
    influence_conversation: false
    mappings: [{type: custom}]
actions: [action_session_start]
"""


@pytest.fixture
def installed_lookup() -> Iterator[Any]:
    """Rasa's action lookup with the fixes installed, restored afterwards."""
    import rasa.core.actions.action as actions
    import rasa.core.tracker_store as tracker_store

    saved_lookup, saved_validate = (
        actions.action_for_name_or_text,
        RemoteAction._validate_action_result,
    )
    saved_run = RemoteAction.run
    saved_store = {
        name: getattr(tracker_store.FailSafeTrackerStore, name)
        for name in ("retrieve", "retrieve_full_tracker", "save")
    }
    saved_kwargs = tracker_store.create_engine_kwargs
    try:
        server.install()
        yield actions.action_for_name_or_text
    finally:
        actions.action_for_name_or_text = saved_lookup
        RemoteAction.run = saved_run  # type: ignore[method-assign]
        RemoteAction._validate_action_result = saved_validate  # type: ignore[method-assign]
        for name, method in saved_store.items():
            setattr(tracker_store.FailSafeTrackerStore, name, method)
        tracker_store.create_engine_kwargs = saved_kwargs
        server._INSTALLED = False


def _session_tracker() -> Any:
    from rasa.shared.core.domain import Domain
    from rasa.shared.core.events import SlotSet
    from rasa.shared.core.trackers import DialogueStateTracker

    domain = Domain.from_yaml(SESSION_DOMAIN)
    tracker = DialogueStateTracker.from_events("resident", [SlotSet("plain_japanese", True)])
    return domain, tracker


async def _run_session_start(lookup: Any, url: str) -> Tuple[Any, List[Any]]:
    from rasa.core.channels.channel import CollectingOutputChannel
    from rasa.core.nlg import TemplatedNaturalLanguageGenerator
    from rasa.utils.endpoints import EndpointConfig

    domain, tracker = _session_tracker()
    action = lookup("action_session_start", domain, EndpointConfig(url))
    nlg = TemplatedNaturalLanguageGenerator(domain.responses)
    return action, await action.run(CollectingOutputChannel(), nlg, tracker, domain)


async def test_the_session_starts_as_rasas_default_when_the_action_server_is_down(
    installed_lookup: Any,
) -> None:
    from rasa.shared.core.events import ActionExecuted, SessionStarted, SlotSet

    closed = f"http://127.0.0.1:{free_port()}/webhook"  # nothing listens there
    action, events = await _run_session_start(installed_lookup, closed)
    assert isinstance(action, server.SessionStartWithFallback)
    assert action.name() == "action_session_start"
    # Rasa's default: the session started, the slots carried over, waiting for the resident.
    assert isinstance(events[0], SessionStarted)
    assert SlotSet("plain_japanese", True) in events
    assert events[-1] == ActionExecuted("action_listen")


async def test_the_custom_session_start_runs_when_the_action_server_answers(
    installed_lookup: Any,
) -> None:
    from aiohttp import web
    from rasa.shared.core.events import ActionExecuted, SessionStarted, SlotSet

    answered: List[str] = []

    async def webhook(request: web.Request) -> web.Response:
        answered.append((await request.json())["next_action"])
        events = [
            {"event": "session_started"},
            {"event": "slot", "name": "plain_japanese", "value": False},
            {"event": "action", "name": "action_listen"},
        ]
        return web.json_response({"events": events, "responses": []})

    app = web.Application()
    app.router.add_post("/webhook", webhook)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        _, events = await _run_session_start(installed_lookup, f"http://127.0.0.1:{port}/webhook")
    finally:
        await runner.cleanup()
    assert answered == ["action_session_start"]
    # The action server's events, not the default's (which would carry plain_japanese=True).
    assert isinstance(events[0], SessionStarted)
    assert SlotSet("plain_japanese", False) in events
    assert SlotSet("plain_japanese", True) not in events
    assert events[-1] == ActionExecuted("action_listen")


APOLOGY_DOMAIN = (
    SESSION_DOMAIN.replace("[action_session_start]", "[action_session_start, action_consent_flow]")
    + """
responses:
  utter_action_server_unreachable:
    - text: "いまシステムにつながらず"
"""
)


async def _run_remote(name: str, domain_yaml: str, url: str) -> List[Any]:
    from rasa.core.channels.channel import CollectingOutputChannel
    from rasa.core.nlg import TemplatedNaturalLanguageGenerator
    from rasa.shared.core.domain import Domain
    from rasa.shared.core.trackers import DialogueStateTracker
    from rasa.utils.endpoints import EndpointConfig

    domain = Domain.from_yaml(domain_yaml)
    action = RemoteAction(name, EndpointConfig(url))
    nlg = TemplatedNaturalLanguageGenerator(domain.responses)
    tracker = DialogueStateTracker.from_events("resident", [])
    events: List[Any] = await action.run(CollectingOutputChannel(), nlg, tracker, domain)
    return events


async def test_a_custom_action_that_cannot_run_says_the_apology(installed_lookup: Any) -> None:
    from rasa.shared.core.events import BotUttered

    closed = f"http://127.0.0.1:{free_port()}/webhook"
    events = await _run_remote("action_consent_flow", APOLOGY_DOMAIN, closed)
    assert len(events) == 1 and isinstance(events[0], BotUttered)
    assert events[0].text == "いまシステムにつながらず"
    assert events[0].metadata["utter_action"] == "utter_action_server_unreachable"


async def test_without_the_apology_in_the_domain_the_failure_stays_rasas(
    installed_lookup: Any,
) -> None:
    from rasa.shared.exceptions import RasaException

    closed = f"http://127.0.0.1:{free_port()}/webhook"
    domain = SESSION_DOMAIN.replace(
        "[action_session_start]", "[action_session_start, action_consent_flow]"
    )
    with pytest.raises(RasaException):
        await _run_remote("action_consent_flow", domain, closed)
    # The session start is never apologised for: it falls back to Rasa's default instead.
    with pytest.raises(RasaException):
        await _run_remote("action_session_start", APOLOGY_DOMAIN, closed)


def test_other_actions_and_a_domain_without_the_custom_session_start_are_untouched(
    installed_lookup: Any,
) -> None:
    from rasa.core.actions.action import ActionSessionStart
    from rasa.shared.core.domain import Domain
    from rasa.utils.endpoints import EndpointConfig

    endpoint = EndpointConfig("http://127.0.0.1:1/webhook")
    stock = Domain.from_yaml('version: "3.1"\nintents: [greet]')
    assert type(installed_lookup("action_session_start", stock, endpoint)) is ActionSessionStart
    ours = Domain.from_yaml(
        SESSION_DOMAIN.replace("[action_session_start]", "[action_session_start, action_other]")
    )
    assert type(installed_lookup("action_other", ours, endpoint)) is RemoteAction


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


# ---- nothing open by default (security issue #12) ------------------------------------------

STRONG = secrets.token_urlsafe(32)
OTHER = secrets.token_urlsafe(32)
PSEUDONYM_KEY = secrets.token_hex(32)


def _settings(**values: Any) -> Settings:
    values = {"subject_pseudonym_key": PSEUDONYM_KEY, **values}
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
def clean_process(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """prepare() sets the umask and environment variables: give them back afterwards."""
    monkeypatch.delenv("ACTION_SERVER_TOKEN", raising=False)
    monkeypatch.delenv("SANIC_REQUEST_MAX_SIZE", raising=False)
    monkeypatch.delenv("RASA_TELEMETRY_ENABLED", raising=False)
    umask = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(umask)


@pytest.mark.parametrize(
    ("argv", "values", "named"),
    [
        (["run"], {}, "ACTION_SERVER_TOKEN"),
        (["run"], {"action_server_token": "short"}, "ACTION_SERVER_TOKEN"),
        (["run"], {"action_server_token": "x" * 60}, "ACTION_SERVER_TOKEN"),
        (["run"], {"action_server_token": secrets.token_hex(24)}, "ACTION_SERVER_TOKEN"),
        (["shell"], {}, "ACTION_SERVER_TOKEN"),
        (["run", "--enable-api"], {"action_server_token": STRONG}, "RASA_API_TOKEN"),
        (
            ["run", "--enable-api"],
            {"action_server_token": STRONG, "rasa_api_token": "dev-token"},
            "RASA_API_TOKEN",
        ),
        (["run", "--enable-api", "--auth-token", "abc"], {"action_server_token": STRONG}, "token"),
        (["run", "--enable-api", "--auth-token=abc"], {"action_server_token": STRONG}, "token"),
        (
            ["run"],
            {"action_server_token": STRONG, "consent_api_token": "consent-token"},
            "CONSENT_API_TOKEN",
        ),
        # The channels key every pseudonym with it (issue 20: refused at start, not at the
        # first resident's message).
        (["run"], {"action_server_token": STRONG, "subject_pseudonym_key": None}, "SUBJECT"),
        (["run"], {"action_server_token": STRONG, "subject_pseudonym_key": "k"}, "SUBJECT"),
        (
            ["run", "--enable-api", "-t", OTHER],
            {"action_server_token": STRONG, "subject_pseudonym_key": "e2e-pseudonym-key"},
            "SUBJECT_PSEUDONYM_KEY",
        ),
    ],
)
def test_missing_or_weak_tokens_are_refused_at_start_up(
    clean_process: None, argv: List[str], values: Dict[str, str], named: str
) -> None:
    with pytest.raises(SystemExit) as refused:
        server.prepare(argv, _settings(**values))
    message = str(refused.value)
    assert named in message and "\n" not in message


def test_the_api_gets_the_configured_token_inside_the_process(clean_process: None) -> None:
    settings = _settings(action_server_token=STRONG, rasa_api_token=OTHER)
    argv = server.prepare(["run", "--enable-api", "--port", "5005"], settings)
    assert argv == ["run", "--enable-api", "--port", "5005", f"--auth-token={OTHER}"]
    assert os.environ["ACTION_SERVER_TOKEN"] == STRONG  # for ${ACTION_SERVER_TOKEN}
    assert os.environ["SANIC_REQUEST_MAX_SIZE"] == "1048576"
    assert os.environ["RASA_TELEMETRY_ENABLED"] == "false"  # nothing sent to Rasa's servers
    assert os.umask(0o077) == 0o077


def test_token_strength() -> None:
    assert startup.strong_token(secrets.token_urlsafe(32))
    assert startup.strong_token(secrets.token_hex(32))  # 64 hex digits: 32 bytes too
    assert not startup.strong_token(secrets.token_hex(24))  # 48 hex digits: only 24 bytes
    assert not startup.strong_token(secrets.token_urlsafe(31))
    assert not startup.strong_token("changeme" * 8)


def test_an_explicit_strong_auth_token_and_an_api_less_run_pass(clean_process: None) -> None:
    settings = _settings(action_server_token=STRONG)
    assert server.prepare(["run", "--enable-api", "-t", OTHER], settings) == [
        "run", "--enable-api", "-t", OTHER,
    ]  # fmt: skip
    assert server.prepare(["run", "--port", "5006"], settings) == ["run", "--port", "5006"]
    assert server.prepare(["--version"], _settings()) == ["--version"]
    assert server.prepare(["run", "--help"], _settings()) == ["run", "--help"]


def test_dev_endpoints_send_the_action_server_token_as_a_header(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from rasa.utils.endpoints import read_endpoint_config

    monkeypatch.setenv("ACTION_SERVER_TOKEN", STRONG)
    endpoint = read_endpoint_config(str(PROJECT_ROOT / "endpoints.yml"), "action_endpoint")
    assert endpoint is not None
    assert endpoint.headers == {"Authorization": f"Bearer {STRONG}"}
    assert endpoint.token is None  # never in the URL


_free_port = free_port


def _dev_env(**values: str) -> Dict[str, str]:
    env = {
        **os.environ,
        "PYTHONPATH": str(PROJECT_ROOT),
        "SUBJECT_PSEUDONYM_KEY": PSEUDONYM_KEY,
        "CONSENT_API_TOKEN": "",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        **values,
    }
    for name in ("SANIC_REQUEST_MAX_SIZE", "RASA_TELEMETRY_ENABLED"):
        env.pop(name, None)
    return env


def _dev_command(port: int) -> List[str]:
    # As scripts/run.sh starts Rasa (the development endpoints and channels, the API on), with
    # no model: the checks under test come before one is needed.
    return [
        sys.executable, "-m", "bot.server", "run", "--enable-api",
        "--endpoints", str(PROJECT_ROOT / "endpoints.yml"),
        "--credentials", str(PROJECT_ROOT / "credentials.yml"),
        "--model", "no-model", "--interface", "127.0.0.1", "--port", str(port),
    ]  # fmt: skip


@pytest.fixture(scope="module")
def dev_rasa(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tuple[str, Path]]:
    """Rasa as `make run` starts it, in a folder of its own (var/rasa.db is relative)."""
    work = tmp_path_factory.mktemp("dev")
    (work / "var").mkdir()
    port = _free_port()
    log = work / "rasa.log"
    env = _dev_env(ACTION_SERVER_TOKEN=STRONG, RASA_API_TOKEN=OTHER)
    with log.open("wb") as out:
        process = subprocess.Popen(
            _dev_command(port), cwd=work, env=env, stdout=out, stderr=subprocess.STDOUT,
            umask=0o022,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            if process.poll() is not None:
                pytest.fail(log.read_text(errors="replace")[-3000:])
            try:
                requests.get(f"{url}/version", timeout=1)
                break
            except requests.ConnectionError:
                time.sleep(0.2)
        else:
            pytest.fail(log.read_text(errors="replace")[-3000:])
        yield url, work
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_the_dev_api_refuses_calls_without_the_token(dev_rasa: Tuple[str, Path]) -> None:
    url, _ = dev_rasa
    for method, path in [("GET", "/status"), ("GET", "/conversations/x/tracker"),
                         ("POST", "/conversations/x/tracker/events"), ("POST", "/model/parse"),
                         ("PUT", "/model")]:  # fmt: skip
        answer = requests.request(method, f"{url}{path}", json={}, timeout=10)
        assert answer.status_code == 401, (method, path, answer.status_code)
        wrong = requests.request(method, f"{url}{path}", params={"token": STRONG}, timeout=10)
        assert wrong.status_code == 401, (method, path, wrong.status_code)
    with_token = requests.get(f"{url}/status", params={"token": OTHER}, timeout=10)
    assert with_token.status_code not in (401, 403)


def test_the_dev_server_refuses_bodies_over_a_megabyte(dev_rasa: Tuple[str, Path]) -> None:
    url, _ = dev_rasa
    big = json.dumps({"sender": "s", "message": "あ" * 400_000}).encode()  # 1.2 MB
    # Refused before any route sees it: Sanic's limit, not a channel's own check.
    for path, params in [("/webhooks/line/webhook", {}), ("/model/parse", {"token": OTHER}),
                         ("/webhooks/rest/webhook", {})]:  # fmt: skip
        answer = requests.post(f"{url}{path}", params=params, data=big, timeout=30)
        assert answer.status_code == 413, (path, answer.status_code)
    small = requests.post(f"{url}/model/parse", params={"token": OTHER}, data=b"{}", timeout=30)
    assert small.status_code != 413


def test_the_dev_tracker_store_file_is_private(dev_rasa: Tuple[str, Path]) -> None:
    _, work = dev_rasa
    assert stat.S_IMODE((work / "var" / "rasa.db").stat().st_mode) == 0o600


def test_the_dev_server_does_not_start_with_the_api_open(tmp_path: Path) -> None:
    (tmp_path / "var").mkdir()
    env = _dev_env(ACTION_SERVER_TOKEN=STRONG, RASA_API_TOKEN="")
    done = subprocess.run(
        _dev_command(_free_port()), cwd=tmp_path, env=env, capture_output=True, timeout=120,
        check=False,
    )  # fmt: skip
    assert done.returncode != 0
    assert b"RASA_API_TOKEN" in done.stderr
    assert not (tmp_path / "var" / "rasa.db").exists()


def test_a_token_beginning_with_a_dash_reaches_rasa_as_the_token(clean_process: None) -> None:
    # 1 in 64 of secrets.token_urlsafe(32) begins with "-": given as a separate argument, Rasa's
    # argparse took it for an option and refused to start ("expected one argument").
    from rasa.__main__ import create_argument_parser

    token = "-" + secrets.token_urlsafe(32)[1:]
    settings = _settings(action_server_token=STRONG, rasa_api_token=token)
    argv = server.prepare(["run", "--enable-api", "--port", "5005"], settings)
    assert create_argument_parser().parse_args(argv).auth_token == token
