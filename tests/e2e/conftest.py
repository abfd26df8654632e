"""Start the real action server and Rasa server for end-to-end tests.

Each run uses free ports and its own SQLite tracker store in a temporary folder, so it never
touches a running `make run` or its data.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest
import requests

from tests.conftest import PROJECT_ROOT

MODEL = PROJECT_ROOT / "models" / "assistant.tar.gz"
RASA = PROJECT_ROOT / ".venv" / "bin" / "rasa"
START_TIMEOUT = 300.0
CITY_CONTACT = {
    "CITY_CONTACT_NAME": "テスト用の窓口",
    "CITY_CONTACT_PHONE": "0000-00-0000",
    "CITY_CONTACT_HOURS": "テスト用の受付時間",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_up(url: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url} exited early:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            if requests.get(url, timeout=2).ok:
                return
        except requests.ConnectionError:
            pass
        time.sleep(1)
    raise RuntimeError(f"{url} did not answer in {START_TIMEOUT:.0f}s")


@dataclass
class Assistant:
    """The running assistant, reached over HTTP."""

    url: str
    tracker_db: Path

    def say(self, sender: str, message: str) -> List[Dict[str, Any]]:
        """Send one message through the REST channel and return the answers."""
        response = requests.post(
            f"{self.url}/webhooks/rest/webhook",
            json={"sender": sender, "message": message},
            timeout=60,
        )
        response.raise_for_status()
        return list(response.json())

    def tracker(self, sender: str) -> Dict[str, Any]:
        response = requests.get(f"{self.url}/conversations/{sender}/tracker", timeout=30)
        response.raise_for_status()
        return dict(response.json())


@pytest.fixture(scope="session")
def assistant(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Assistant]:
    if not MODEL.exists():
        pytest.fail("No trained model: run `make model` (make test does it before the e2e tests).")
    work = tmp_path_factory.mktemp("e2e")
    rasa_port, actions_port = free_port(), free_port()
    endpoints = work / "endpoints.yml"
    endpoints.write_text(
        "tracker_store:\n  type: SQL\n  dialect: sqlite\n"
        f"  db: {work / 'rasa.db'}\n"
        f"action_endpoint:\n  url: http://127.0.0.1:{actions_port}/webhook\n",
        encoding="utf-8",
    )
    env = {
        **os.environ,
        **CITY_CONTACT,
        "PYTHONPATH": str(PROJECT_ROOT),
        "SQLALCHEMY_SILENCE_UBER_WARNING": "1",
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    logs = {name: work / f"{name}.log" for name in ("actions", "rasa")}
    commands = {
        "actions": [
            str(RASA), "run", "actions", "--actions", "actions", "--port", str(actions_port),
        ],
        "rasa": [
            str(RASA), "run", "--model", str(MODEL), "--endpoints", str(endpoints),
            "--credentials", str(PROJECT_ROOT / "credentials.yml"), "--enable-api",
            "--interface", "127.0.0.1", "--port", str(rasa_port),
        ],
    }  # fmt: skip
    processes = {
        name: subprocess.Popen(
            command,
            cwd=PROJECT_ROOT,
            env=env,
            stdout=logs[name].open("wb"),
            stderr=subprocess.STDOUT,
        )
        for name, command in commands.items()
    }
    try:
        wait_until_up(
            f"http://127.0.0.1:{actions_port}/health", processes["actions"], logs["actions"]
        )
        wait_until_up(
            f"http://127.0.0.1:{rasa_port}/webhooks/rest/", processes["rasa"], logs["rasa"]
        )
        yield Assistant(url=f"http://127.0.0.1:{rasa_port}", tracker_db=work / "rasa.db")
    finally:
        for process in processes.values():
            process.terminate()
        for process in processes.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
