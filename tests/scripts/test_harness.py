"""The one process harness (scripts/harness.py, issue 20) and `make run` through it."""

from __future__ import annotations

import os
import re
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, Iterator, List

import pytest
import requests

from scripts import harness
from tests.conftest import PROJECT_ROOT

# A copy of a harness primitive: a free-port helper (a function, or the bind-to-port-0 idiom),
# a start-and-wait helper, or process-group handling of its own. (tests/e2e/conftest.py's
# `wait_until_up` stays, for the e2e tests that start a server of their own: it calls the
# harness.)
COPIES = [
    re.compile(r"def _?free_port\b"),
    re.compile(r"\.bind\(\(\s*['\"]127\.0\.0\.1['\"],\s*0\s*\)\)"),
    re.compile(r"def (wait_for|_wait_http|_wait_for_port)\b"),
    re.compile(r"start_new_session\s*=\s*True|os\.killpg\("),
]
SKIPPED_FOLDERS = {".git", "node_modules", "__pycache__", ".mypy_cache", ".ruff_cache"}


def python_files() -> Iterator[Path]:
    """The tree's Python files, outside the environments (.venv*) and caches."""
    for folder, subfolders, files in os.walk(PROJECT_ROOT):
        subfolders[:] = [
            name for name in subfolders
            if name not in SKIPPED_FOLDERS and not name.startswith(".venv")
        ]  # fmt: skip
        for name in files:
            if name.endswith(".py"):
                yield Path(folder) / name


def test_the_harness_primitives_exist_only_in_the_harness() -> None:
    own = {PROJECT_ROOT / "scripts" / "harness.py", Path(__file__).resolve()}
    copies = [
        f"{path.relative_to(PROJECT_ROOT)}: {pattern.pattern}"
        for path in python_files()
        if path.resolve() not in own
        for pattern in COPIES
        if pattern.search(path.read_text(encoding="utf-8", errors="replace"))
    ]
    assert copies == [], "use scripts/harness.py instead"


def test_free_port_is_free() -> None:
    port = harness.free_port()
    assert not harness.port_open("127.0.0.1", port)


def test_free_ports_are_below_the_range_outgoing_connections_take() -> None:
    low, high = harness.ephemeral_ports()
    assert 1024 < low <= high
    ports = [harness.free_port() for _ in range(50)]
    assert len(set(ports)) == 50  # never handed out twice
    if low - harness.FREE_PORT_FLOOR >= 1000:
        assert all(harness.FREE_PORT_FLOOR <= port < low for port in ports)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split()[2] == "Z")


# A server that starts a child of its own (as Rasa's and nginx's workers), writes the child's
# pid, and listens on the port it is given.
SERVER = """
import socket, subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
open(sys.argv[2], "w").write(str(child.pid))
print("listening", flush=True)
sock = socket.socket(); sock.bind(("127.0.0.1", int(sys.argv[1]))); sock.listen()
time.sleep(600)
"""


def test_a_process_is_ready_on_its_port_and_stops_with_everything_it_started(
    tmp_path: Path,
) -> None:
    port = harness.free_port()
    child_file = tmp_path / "child"
    spec = harness.Spec(
        "server", [sys.executable, "-c", SERVER, str(port), str(child_file)],
        tmp_path / "server.log", ready=harness.PortReady(port), timeout=30,
    )  # fmt: skip
    process = harness.run_ready(spec)
    child = int(child_file.read_text())
    assert harness.port_open("127.0.0.1", port) and _alive(child)
    assert "listening" in (tmp_path / "server.log").read_text()
    process.stop(timeout=10)
    deadline = time.monotonic() + 10
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(child), "the server's child outlived it"
    assert not harness.port_open("127.0.0.1", port)


def test_a_process_that_ignores_sigterm_is_killed(tmp_path: Path) -> None:
    code = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"
    process = harness.start(harness.Spec("stubborn", [sys.executable, "-c", code],
                                         tmp_path / "log"))  # fmt: skip
    time.sleep(0.5)
    started = time.monotonic()
    process.stop(timeout=1)
    assert not process.alive() and process.popen.returncode == -signal.SIGKILL
    assert time.monotonic() - started < 20


def test_a_process_that_dies_while_starting_fails_with_its_logs_tail(tmp_path: Path) -> None:
    code = "import sys; print('the port is taken'); sys.exit(3)"
    spec = harness.Spec(
        "broken", [sys.executable, "-c", code], tmp_path / "broken.log",
        ready=harness.HttpReady(f"http://127.0.0.1:{harness.free_port()}/health"), timeout=30,
    )  # fmt: skip
    with pytest.raises(
        harness.StartError, match=r"(?s)broken stopped while starting.*port is taken"
    ):
        harness.run_ready(spec)


def test_a_process_that_never_answers_times_out_with_its_logs_tail(tmp_path: Path) -> None:
    code = "import time; print('still loading', flush=True); time.sleep(600)"
    spec = harness.Spec(
        "slow", [sys.executable, "-c", code], tmp_path / "slow.log",
        ready=harness.PortReady(harness.free_port()), timeout=2,
    )  # fmt: skip
    with pytest.raises(harness.StartError, match=r"(?s)slow did not answer.*still loading"):
        harness.run_ready(spec)


def test_a_group_fails_when_another_member_dies_while_one_starts(tmp_path: Path) -> None:
    with harness.Group() as group:
        group.start(harness.Spec("dies", [sys.executable, "-c", "print('gone')"],
                                 tmp_path / "dies.log"))  # fmt: skip
        group.start(harness.Spec(
            "waits", [sys.executable, "-c", "import time; time.sleep(600)"],
            tmp_path / "waits.log", ready=harness.PortReady(harness.free_port()), timeout=30,
        ))  # fmt: skip
        with pytest.raises(harness.StartError, match=r"(?s)dies stopped while starting.*gone"):
            group.wait_ready("waits")
        waits = group.processes["waits"]
    assert not waits.alive()


def test_the_log_is_private_and_appended(tmp_path: Path) -> None:
    log = tmp_path / "part.log"
    old = os.umask(0o022)
    try:
        for word in ("one", "two"):
            spec = harness.Spec("part", [sys.executable, "-c", f"print({word!r})"], log)
            assert harness.start(spec).wait(30) == 0
    finally:
        os.umask(old)
    assert log.read_text().split() == ["one", "two"]
    assert log.stat().st_mode & 0o077 == 0


# -- `make run` --------------------------------------------------------------------------------


def _processes_in(folder: Path) -> List[int]:
    """Processes whose working folder is `folder` (what `make run` started there)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if Path(os.readlink(entry / "cwd")) == folder:
                    found.append(int(entry.name))
            except OSError:
                continue
    return [pid for pid in found if _alive(pid)]


@pytest.fixture
def dev_env(tmp_path: Path) -> Dict[str, str]:
    """`make run`'s environment on free ports, its databases in `tmp_path`."""
    return {
        **os.environ,
        "RASA_PORT": str(harness.free_port()),
        "ACTIONS_PORT": str(harness.free_port()),
        "CONSENT_PORT": str(harness.free_port()),
        "RASA_API_TOKEN": secrets.token_urlsafe(32),
        "ACTION_SERVER_TOKEN": secrets.token_urlsafe(32),
        "CONSENT_API_TOKEN": secrets.token_urlsafe(32),
        "SUBJECT_PSEUDONYM_KEY": "harness-pseudonym-key-0123456789abcdefghijklmnopq",
        "CONSENT_DATABASE_URL": f"sqlite+pysqlite:///{tmp_path / 'var' / 'consent.db'}",
        "ANALYTICS_EVENTS_DATABASE_URL": f"sqlite+pysqlite:///{tmp_path / 'var' / 'events.db'}",
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }


# e2e: it starts the whole assistant from the trained model, which `make test` trains after the
# unit tests (skipping it there when no model was trained yet meant it never ran in CI).
@pytest.mark.e2e
@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
def test_make_run_answers_and_stops_everything_on_ctrl_c_or_sigterm(
    tmp_path: Path, dev_env: Dict[str, str], stop_signal: int
) -> None:
    if not (PROJECT_ROOT / "models" / "assistant.tar.gz").exists():
        pytest.fail("No trained model: run `make model` first.")
    out = tmp_path / "run.out"
    with out.open("wb") as sink:
        run = subprocess.Popen(
            [str(PROJECT_ROOT / "scripts" / "run.sh"), "--work", str(tmp_path)],
            env=dev_env, stdout=sink, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 600
        while "The assistant is running" not in out.read_text(errors="replace"):
            assert run.poll() is None, out.read_text(errors="replace")
            assert time.monotonic() < deadline, out.read_text(errors="replace")
            time.sleep(1)
        started = _processes_in(tmp_path)
        assert len(started) >= 4, started  # consent, consumer, actions, Rasa (and their children)
        answer = requests.post(
            f"http://127.0.0.1:{dev_env['RASA_PORT']}/webhooks/rest/webhook",
            json={"sender": "harness-smoke", "message": "情報銀行って何？"},
            timeout=60,
        )
        assert answer.status_code == 200 and answer.json(), answer.text
        run.send_signal(stop_signal)  # what Ctrl-C (SIGINT) or a service manager sends
        assert run.wait(timeout=120) == 130
    finally:
        if run.poll() is None:
            run.kill()
    text = out.read_text(errors="replace")
    assert "Stopping ..." in text
    assert _processes_in(tmp_path) == [], "a server outlived make run"
    for port in ("RASA_PORT", "ACTIONS_PORT", "CONSENT_PORT"):
        assert not harness.port_open("127.0.0.1", int(dev_env[port])), port
    assert {p.name for p in (tmp_path / "var" / "log").iterdir()} >= {
        "rasa.log", "actions.log", "consent.log", "consumer.log"
    }  # fmt: skip
