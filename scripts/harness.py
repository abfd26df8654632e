"""The one way this project starts and stops its servers (issue 20).

`make run` (scripts/run.sh), the production profile (scripts/prod.py), the e2e and reliability
fixtures and the benchmarks all start the same programs; they do it through this module:

- `free_port()`: a free TCP port on loopback, outside the range outgoing connections take.
- `Spec`: what to run — name, argv, environment, folder, log file, and how to tell it is ready
  (an HTTP URL or a TCP port), with a timeout.
- `Process` / `start()`: the program in its own process group (so that everything it starts
  stops with it), its output appended to its log; `wait_ready()` fails with the log's tail;
  `stop()` sends SIGTERM to the whole group, then SIGKILL.
- `Group`: several processes started in order, waited for while checking that none has died,
  stopped together (last started, first stopped).
- `consent_spec`, `consumer_spec`, `sender_spec`, `actions_spec`, `rasa_spec`: the project's
  servers and workers, and
  `dev_specs()`: the set `make run` starts (consent service, analytics consumer, action server,
  Rasa).

`python -m scripts.harness run` is `make run`. Standard library only: it is imported from both
environments (`.venv` and `.venv-backend`), which share no packages.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List, Mapping, Sequence

ROOT = Path(__file__).resolve().parent.parent
PYTHON = ROOT / ".venv" / "bin" / "python"
BACKEND_PYTHON = ROOT / ".venv-backend" / "bin" / "python"
LOG_TAIL_CHARS = 3000
STOP_TIMEOUT = 30.0
# `free_port` draws from here up to the kernel's ephemeral range (32768 on Linux): above the
# well-known services' ports, which a bind test would also catch.
FREE_PORT_FLOOR = 20000
_ports_given: set[int] = set()


class StartError(RuntimeError):
    """A process stopped while starting, or did not become ready in time."""


def ephemeral_ports() -> tuple[int, int]:
    """The kernel's range of ports for outgoing connections (Linux; IANA's range elsewhere)."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 49152, 65535


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on now, and no outgoing connection will take meanwhile.

    A port the kernel hands out for `bind(host, 0)` lies in its ephemeral range, from which it
    also takes the local port of every outgoing connection: between this call and the server
    binding the port (a minute later for nginx in front of Rasa), a connection to PostgreSQL or
    Redis could take it (CI saw nginx fail so, 2026-12-03). So the port is drawn at random from
    below that range (and never twice in this process); only when that range is too small does
    the kernel choose.

    Args:
        host: The address to bind on.

    Returns:
        The port number.
    """
    low = min(ephemeral_ports()[0], 65536)
    if low - FREE_PORT_FLOOR >= 1000:
        for _ in range(200):
            port = FREE_PORT_FLOOR + secrets.randbelow(low - FREE_PORT_FLOOR)
            if port in _ports_given:
                continue
            with socket.socket() as sock:
                try:
                    sock.bind((host, port))
                except OSError:
                    continue
            _ports_given.add(port)
            return port
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_open(host: str, port: int, timeout: float = 1.0) -> bool:
    """Whether something accepts TCP connections on `host`:`port`."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def http_status(url: str, timeout: float = 2.0) -> int | None:
    """The HTTP status `url` answers a GET with, or None if nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (our URLs)
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)
    except (urllib.error.URLError, OSError, ValueError):
        return None


def log_tail(log: Path, chars: int = LOG_TAIL_CHARS) -> str:
    """The last `chars` characters of a log file ("" if it does not exist)."""
    try:
        return log.read_text(errors="replace")[-chars:]
    except OSError:
        return ""


@dataclass(frozen=True)
class HttpReady:
    """Ready once a GET of `url` answers with a status below `below` (400: a success)."""

    url: str
    below: int = 400

    def __call__(self) -> bool:
        """Whether the URL answers as required now."""
        status = http_status(self.url)
        return status is not None and status < self.below

    def __str__(self) -> str:
        return self.url


@dataclass(frozen=True)
class PortReady:
    """Ready once `host`:`port` accepts TCP connections."""

    port: int
    host: str = "127.0.0.1"

    def __call__(self) -> bool:
        """Whether the port accepts connections now."""
        return port_open(self.host, self.port)

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


Ready = HttpReady | PortReady


@dataclass
class Spec:
    """How to start one program and how to tell it is ready.

    Attributes:
        name: Its name in messages ("consent", "rasa-0", ...).
        argv: The command.
        log: Where its standard output and error go (appended; created 0600).
        env: Its whole environment (None: this process's).
        cwd: Its working folder.
        ready: How to tell it is ready (None: as soon as it runs).
        timeout: Seconds `wait_ready` waits.
        truncate_log: Start the log afresh instead of appending.
        umask: The umask it starts with (None: this process's).
        user: Run it as this user (needs root; e.g. RabbitMQ's own user).
        group: Run it as this group.
    """

    name: str
    argv: Sequence[str]
    log: Path
    env: Mapping[str, str] | None = None
    cwd: Path = ROOT
    ready: Ready | None = None
    timeout: float = 300.0
    truncate_log: bool = False
    umask: int | None = None
    user: str | None = None
    group: str | None = None


@dataclass
class Process:
    """A started `Spec`: one process group."""

    spec: Spec
    popen: subprocess.Popen[bytes]

    @property
    def name(self) -> str:
        """The spec's name."""
        return self.spec.name

    @property
    def pid(self) -> int:
        """The leader's process id (also the group's id)."""
        return self.popen.pid

    def alive(self) -> bool:
        """Whether the leader still runs."""
        return self.popen.poll() is None

    def wait_ready(self, others: Sequence[Process] = ()) -> None:
        """Wait until the spec's readiness check passes.

        Args:
            others: Processes started beside it; if one of them stops meanwhile, fail too.

        Raises:
            StartError: It (or one of `others`) stopped, or it was not ready in time; the
                message ends with the log's last lines.
        """
        ready = self.spec.ready
        deadline = time.monotonic() + self.spec.timeout
        while True:
            for process in (self, *others):
                if not process.alive():
                    raise StartError(
                        f"{process.name} stopped while starting (exit code"
                        f" {process.popen.returncode}; is its port already in use?);"
                        f" last lines of {process.spec.log}:\n{log_tail(process.spec.log)}"
                    )
            if ready is None or ready():
                return
            if time.monotonic() >= deadline:
                raise StartError(
                    f"{self.name} did not answer on {ready} within {self.spec.timeout:.0f} s;"
                    f" last lines of {self.spec.log}:\n{log_tail(self.spec.log)}"
                )
            time.sleep(0.2)

    def send(self, sig: int) -> None:
        """Send `sig` to the whole group (nothing if it has already ended)."""
        if self.popen.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, sig)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send `sig` (SIGKILL: no goodbye) to the group and wait for the leader."""
        self.send(sig)
        self.wait(STOP_TIMEOUT)

    def wait(self, timeout: float | None = None) -> int | None:
        """Wait for the leader to end; its exit code, or None if it still runs."""
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """SIGTERM the group; SIGKILL it if the leader has not ended within `timeout`."""
        self.send(signal.SIGTERM)
        if self.wait(timeout) is None:
            self.send(signal.SIGKILL)
            self.popen.wait()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signal.SIGKILL)  # what the leader left in its group


def start(spec: Spec) -> Process:
    """Start `spec` in its own process group, its output appended to its log."""
    spec.log.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if spec.truncate_log else os.O_APPEND)
    descriptor = os.open(spec.log, flags, 0o600)
    with os.fdopen(descriptor, "ab") as out:
        popen = subprocess.Popen(
            list(spec.argv),
            cwd=spec.cwd,
            env=None if spec.env is None else dict(spec.env),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            umask=-1 if spec.umask is None else spec.umask,
            user=spec.user,
            group=spec.group,
        )
    return Process(spec, popen)


def run_ready(spec: Spec) -> Process:
    """Start `spec` and wait until it is ready; stop it again if it is not."""
    process = start(spec)
    try:
        process.wait_ready()
    except BaseException:
        process.stop()
        raise
    return process


@dataclass
class Group:
    """Processes started together and stopped together (last started, first stopped)."""

    processes: Dict[str, Process] = field(default_factory=dict)

    def start(self, spec: Spec) -> Process:
        """Start `spec` (not waiting for it); its name must be new in the group."""
        if spec.name in self.processes and self.processes[spec.name].alive():
            raise ValueError(f"{spec.name} is already running")
        process = start(spec)
        self.processes[spec.name] = process
        return process

    def wait_ready(self, name: str) -> None:
        """Wait for `name`, failing as soon as any member of the group stops."""
        process = self.processes[name]
        process.wait_ready([p for p in self.processes.values() if p is not process])

    def run_ready(self, spec: Spec) -> Process:
        """Start `spec` and wait until it is ready."""
        process = self.start(spec)
        self.wait_ready(spec.name)
        return process

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Signal one member's group (SIGKILL by default), wait, and forget it."""
        process = self.processes.pop(name, None)
        if process is not None:
            process.kill(sig)

    def stopped(self) -> List[str]:
        """The names of the members that have ended."""
        return [name for name, process in self.processes.items() if not process.alive()]

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """SIGTERM every member's group at once, then wait; SIGKILL what outlives `timeout`."""
        stopping = list(reversed(self.processes.values()))
        self.processes.clear()
        for process in stopping:
            process.send(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for process in stopping:
            process.stop(max(0.0, deadline - time.monotonic()))

    def __iter__(self) -> Iterator[Process]:
        return iter(list(self.processes.values()))

    def __enter__(self) -> Group:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


# -- the project's servers ----------------------------------------------------------------------


def consent_spec(
    port: int, env: Mapping[str, str], log: Path, name: str = "consent", timeout: float = 120.0,
    python: Path = BACKEND_PYTHON, **options: object,
) -> Spec:  # fmt: skip
    """The consent service and staff console (`python -m consent_service serve`).

    Its path is `backend/` only (the two sides never import each other).
    """
    return Spec(
        name, [str(python), "-m", "consent_service", "serve", "--port", str(port)], log,
        env={**env, "PYTHONPATH": str(ROOT / "backend")},
        ready=HttpReady(f"http://127.0.0.1:{port}/health"), timeout=timeout,
        **options,  # type: ignore[arg-type]
    )  # fmt: skip


def consumer_spec(
    env: Mapping[str, str], log: Path, name: str = "consumer", **options: object
) -> Spec:
    """The analytics consumer (`python -m consent_service consume`); it has no port."""
    return Spec(
        name, [str(BACKEND_PYTHON), "-m", "consent_service", "consume"], log,
        env={**env, "PYTHONPATH": str(ROOT / "backend")},
        **options,  # type: ignore[arg-type]
    )  # fmt: skip


def sender_spec(env: Mapping[str, str], log: Path, name: str = "sender", **options: object) -> Spec:
    """The notice sender (`python -m consent_service send-notices`, issue 17); it has no port.

    Only its environment may hold NOTICE_PRIVATE_KEY (the key that opens the sealed LINE ids).
    """
    return Spec(
        name, [str(BACKEND_PYTHON), "-m", "consent_service", "send-notices"], log,
        env={**env, "PYTHONPATH": str(ROOT / "backend")},
        **options,  # type: ignore[arg-type]
    )  # fmt: skip


def actions_spec(
    port: int, env: Mapping[str, str], log: Path, name: str = "actions",
    timeout: float = 120.0, command: Sequence[str] | None = None, **options: object,
) -> Spec:  # fmt: skip
    """The action server (`python -m bot.action_server`, token required)."""
    argv = list(command or [str(PYTHON), "-m", "bot.action_server"])
    return Spec(
        name, [*argv, "--port", str(port)], log, env=env,
        ready=HttpReady(f"http://127.0.0.1:{port}/health"), timeout=timeout,
        **options,  # type: ignore[arg-type]
    )  # fmt: skip


def rasa_spec(
    port: int, env: Mapping[str, str], log: Path, *, model: Path | str, endpoints: Path | str,
    credentials: Path | str, name: str = "rasa", interface: str = "127.0.0.1",
    enable_api: bool = True, ready_path: str = "/webhooks/rest/", ready_below: int = 400,
    timeout: float = 300.0, command: Sequence[str] | None = None, **options: object,
) -> Spec:  # fmt: skip
    """A Rasa server (`python -m bot.server run`: Rasa's command line with the project's fixes)."""
    argv = [
        *(command or [str(PYTHON), "-m", "bot.server"]), "run", "--model", str(model),
        "--endpoints", str(endpoints), "--credentials", str(credentials),
        *(["--enable-api"] if enable_api else []),
        "--interface", interface, "--port", str(port),
    ]  # fmt: skip
    return Spec(
        name, argv, log, env=env,
        ready=HttpReady(f"http://127.0.0.1:{port}{ready_path}", ready_below), timeout=timeout,
        **options,  # type: ignore[arg-type]
    )  # fmt: skip


@dataclass(frozen=True)
class DevPorts:
    """Where `make run` listens (RASA_PORT, ACTIONS_PORT, CONSENT_PORT; RASA_INTERFACE)."""

    rasa: int = 5005
    actions: int = 5055
    consent: int = 8000
    interface: str = "127.0.0.1"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> DevPorts:
        """The ports the environment names, else the defaults."""
        return cls(
            rasa=int(env.get("RASA_PORT") or 5005),
            actions=int(env.get("ACTIONS_PORT") or 5055),
            consent=int(env.get("CONSENT_PORT") or 8000),
            interface=env.get("RASA_INTERFACE") or "127.0.0.1",
        )


DEFAULT_ACTION_URL = "http://127.0.0.1:5055/webhook"


def dev_endpoints(ports: DevPorts, folder: Path) -> Path:
    """endpoints.yml with the action server's URL on `ports.actions`.

    endpoints.yml names port 5055; with another ACTIONS_PORT, Rasa would call an action server
    that is not there (every custom action, `action_session_start` included, would fail). The
    copy is written to `folder` (0600); with the default port the project's file is used.

    Args:
        ports: Where `make run` listens.
        folder: Where the copy goes (the run's var/).

    Returns:
        The endpoints file Rasa is to read.
    """
    source = ROOT / "endpoints.yml"
    if ports.actions == 5055:
        return source
    text = source.read_text(encoding="utf-8")
    if DEFAULT_ACTION_URL not in text:
        raise StartError(f"{source} does not name {DEFAULT_ACTION_URL}: cannot move its port")
    target = folder / "endpoints.yml"
    descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as out:
        out.write(text.replace(DEFAULT_ACTION_URL, f"http://127.0.0.1:{ports.actions}/webhook"))
    return target


def dev_specs(
    ports: DevPorts, env: Mapping[str, str], log_dir: Path, cwd: Path = ROOT
) -> List[Spec]:
    """`make run`'s servers, in starting order, on embedded defaults (SQLite under var/).

    The consent service; the analytics consumer of Rasa's SQL event broker (var/events.db,
    endpoints.yml; it waits for the tables and for Rasa's first event); the action server; the
    Rasa server with its HTTP API (bot.server gives Rasa RASA_API_TOKEN from the environment or
    .env itself, so the token never appears in a process list).
    """
    rasa_env = {
        **env,
        "PYTHONPATH": str(ROOT) + (f":{env['PYTHONPATH']}" if env.get("PYTHONPATH") else ""),
        "SQLALCHEMY_SILENCE_UBER_WARNING": "1",
    }
    return [
        consent_spec(ports.consent, env, log_dir / "consent.log", timeout=60,
                     truncate_log=True, cwd=cwd),
        consumer_spec({**env, "ANALYTICS_SOURCE": "sql"}, log_dir / "consumer.log",
                      truncate_log=True, cwd=cwd),
        actions_spec(ports.actions, rasa_env, log_dir / "actions.log", truncate_log=True,
                     cwd=cwd),
        rasa_spec(ports.rasa, rasa_env, log_dir / "rasa.log",
                  model=ROOT / "models" / "assistant.tar.gz",
                  endpoints=dev_endpoints(ports, log_dir.parent),
                  credentials=ROOT / "credentials.yml",
                  interface=ports.interface, truncate_log=True, cwd=cwd),
    ]  # fmt: skip


DEV_NAMES = {
    "consent": "The consent service",
    "consumer": "The analytics consumer",
    "actions": "The action server",
    "rasa": "The Rasa server",
}


class _Stop(Exception):
    """SIGTERM or SIGINT arrived."""


def _raise_stop(signum: int, _frame: object) -> None:
    raise _Stop(signum)


def run_dev(env: Mapping[str, str] | None = None, work: Path = ROOT) -> int:
    """`make run`: start the dev set, print how to reach it, and keep it up until a signal.

    Ctrl-C (SIGINT) or SIGTERM stops everything and returns 130; a server that fails to start
    or stops by itself stops the rest and returns 1.

    Args:
        env: The servers' environment (None: this process's).
        work: The folder they run in: Rasa's SQLite files (endpoints.yml) and the logs are
            under its var/ (the project's; a test's own folder).
    """
    env = dict(os.environ if env is None else env)
    os.umask(0o077)  # databases and logs under var/ are private
    log_dir = work / "var" / "log"
    log_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(work / "var", 0o700)
    os.chmod(log_dir, 0o700)
    ports = DevPorts.from_env(env)
    specs = dev_specs(ports, env, log_dir, cwd=work)
    group = Group()
    previous = {sig: signal.signal(sig, _raise_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        for spec in specs:
            group.start(spec)
        print(
            f"Starting the consent service (:{ports.consent}), the action server"
            f" (:{ports.actions}) and the Rasa server (:{ports.rasa}) ...",
            flush=True,
        )
        for spec in specs:
            if spec.ready is not None:
                try:
                    group.wait_ready(spec.name)
                except StartError as error:
                    print(_dev_message(str(error)), file=sys.stderr, flush=True)
                    return 1
        print(_ready_message(ports), flush=True)
        while not group.stopped():
            time.sleep(0.5)
        print("A server stopped unexpectedly; see var/log/.", file=sys.stderr, flush=True)
        return 1
    except (_Stop, KeyboardInterrupt):
        return 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C does not cut the stop
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if group.processes:
            print("Stopping ...", flush=True)
        group.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _dev_message(error: str) -> str:
    """A start error with the servers' names as residents' developers know them."""
    for name, title in DEV_NAMES.items():
        if error.startswith(f"{name} "):
            return title + error[len(name) :]
    return error


def _ready_message(ports: DevPorts) -> str:
    rest = f"localhost:{ports.rasa}/webhooks/rest/webhook"
    message = '{"sender":"me","message":"情報銀行って何？"}'
    return "\n".join([
        "",
        "The assistant is running. Talk to it:",
        f"  web chat:  http://localhost:{ports.rasa}/webhooks/socketio/chat",
        f"  curl -s {rest} -d '{message}'",
        "  make shell    (a terminal chat, in another terminal)",
        f"Rasa's HTTP API: http://127.0.0.1:{ports.rasa}/status?token=... (RASA_API_TOKEN in .env)",
        f"Consent service: http://127.0.0.1:{ports.consent}/docs"
        " (API; token CONSENT_API_TOKEN in .env)",
        f"Staff console:   http://127.0.0.1:{ports.consent}/staff/"
        " (first account: make staff-user NAME=kanri)",
        "Logs: var/log/rasa.log, var/log/actions.log, var/log/consent.log, var/log/consumer.log."
        " Ctrl-C stops everything.",
    ])  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    """`run`: what `make run` starts (scripts/run.sh)."""
    parser = argparse.ArgumentParser(description="Start the project's servers.")
    parser.add_argument("command", choices=["run"])
    parser.add_argument("--work", type=Path, default=ROOT,
                        help="the folder whose var/ holds the SQLite files and logs")  # fmt: skip
    args = parser.parse_args(argv)
    return run_dev(work=args.work.resolve())


if __name__ == "__main__":
    sys.exit(main())
