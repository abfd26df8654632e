"""The production profile on one machine: PostgreSQL, Redis, two replicas behind nginx.

`make run PROFILE=prod` runs `python scripts/prod.py run`; the reliability tests use `ProdStack`
directly. Laid out as docs/deploy.md describes, all on loopback:

    residents ──► nginx :8080 (public: LINE webhook, web chat; nothing else)
                    ├─► Rasa replica :5006 ┐  tracker store: PostgreSQL (funabashi_rasa)
                    └─► Rasa replica :5007 ┘  lock store + channel state: Redis
    Rasa ──► nginx :5055 (private) ─► action servers :5056, :5057 ─► consent service :8000
                                                                     (PostgreSQL funabashi_consent)

Secrets come only from the environment (`LINE_CHANNEL_SECRET`, `LINE_CHANNEL_ACCESS_TOKEN`,
`CONSENT_API_TOKEN`, `SUBJECT_PSEUDONYM_KEY`, ...); `make run PROFILE=prod` exports those of
`.env`. `ACTION_SERVER_TOKEN`, if unset, is generated for the run (only these processes use it).
Rasa's HTTP API is off; the action servers and the consent service listen on loopback only.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List

import requests

ROOT = Path(__file__).resolve().parent.parent
PYTHON = ROOT / ".venv" / "bin" / "python"
BACKEND_PYTHON = ROOT / ".venv-backend" / "bin" / "python"
NGINX_TEMPLATE = ROOT / "deploy" / "nginx.conf.template"
REQUIRED_SECRETS = ("CONSENT_API_TOKEN", "SUBJECT_PSEUDONYM_KEY")
RETENTION_EVERY_SECONDS = 24 * 3600


@dataclass
class Ports:
    """Where each part listens (loopback)."""

    public: int = 8080
    actions_proxy: int = 5055
    rasa: List[int] = field(default_factory=lambda: [5006, 5007])
    actions: List[int] = field(default_factory=lambda: [5056, 5057])
    consent: int = 8000

    @classmethod
    def free(cls, replicas: int = 2) -> Ports:
        """Ports nobody uses now (for tests)."""

        def one() -> int:
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", 0))
                return int(sock.getsockname()[1])

        return cls(one(), one(), [one() for _ in range(replicas)],
                   [one() for _ in range(replicas)], one())  # fmt: skip


def create_database(admin_url: str, name: str) -> None:
    """Create PostgreSQL database `name` unless it exists."""
    import psycopg2

    connection = psycopg2.connect(admin_url)
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if cursor.fetchone() is None:
                cursor.execute(f'CREATE DATABASE "{name}"')
    finally:
        connection.close()


def render_nginx(ports: Ports, run_dir: Path) -> Path:
    """Write nginx.conf for these ports into `run_dir`."""
    servers = "\n".join(
        f"    server 127.0.0.1:{port} max_fails=1 fail_timeout=5s;" for port in ports.rasa
    )
    actions = "\n".join(
        f"    server 127.0.0.1:{port} max_fails=1 fail_timeout=5s;" for port in ports.actions
    )
    text = NGINX_TEMPLATE.read_text(encoding="utf-8")
    for key, value in {
        "RUN_DIR": str(run_dir),
        "PUBLIC_PORT": str(ports.public),
        "ACTIONS_PROXY_PORT": str(ports.actions_proxy),
        "RASA_SERVERS": servers,
        "ACTION_SERVERS": actions,
    }.items():
        text = text.replace("{{" + key + "}}", value)
    path = run_dir / "nginx.conf"
    path.write_text(text, encoding="utf-8")
    return path


class ProdStack:
    """Start, stop, kill and restart the parts of the production profile."""

    def __init__(
        self,
        ports: Ports | None = None,
        run_dir: Path | None = None,
        env: Dict[str, str] | None = None,
        model: Path = ROOT / "models" / "assistant.tar.gz",
        rasa_db: str = "funabashi_rasa",
        consent_db: str = "funabashi_consent",
    ) -> None:
        """Prepare the stack; nothing starts yet."""
        self.ports = ports or Ports()
        self.run_dir = run_dir or ROOT / "var" / "prod"
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.model = model
        base = dict(os.environ if env is None else env)
        missing = [name for name in REQUIRED_SECRETS if not base.get(name)]
        if missing:
            raise SystemExit(
                "Set these in the environment first (`make run PROFILE=prod` exports .env): "
                + ", ".join(missing)
            )
        base.setdefault("ACTION_SERVER_TOKEN", secrets.token_urlsafe(32))
        pg_host = base.setdefault("PG_HOST", "127.0.0.1")
        pg_port = base.setdefault("PG_PORT", "5432")
        pg_user = base.setdefault("PG_USER", "postgres")
        pg_password = base.setdefault("PG_PASSWORD", "")
        self.pg_admin = f"postgresql://{pg_user}:{pg_password}@{pg_host}:{pg_port}/postgres"
        self.rasa_db, self.consent_db = rasa_db, consent_db
        auth = f"{pg_user}:{pg_password}@" if pg_password else f"{pg_user}@"
        redis_host = base.setdefault("REDIS_HOST", "127.0.0.1")
        redis_port = base.setdefault("REDIS_PORT", "6379")
        public = f"http://127.0.0.1:{self.ports.public}"
        self.env = {
            **base,
            "PYTHONPATH": str(ROOT),
            "SQLALCHEMY_SILENCE_UBER_WARNING": "1",
            "TF_CPP_MIN_LOG_LEVEL": "2",
            # endpoints.prod.yml
            "RASA_DB_HOST": pg_host,
            "RASA_DB_PORT": pg_port,
            "RASA_DB_NAME": rasa_db,
            "RASA_DB_USER": pg_user,
            "RASA_DB_PASSWORD": pg_password,
            "REDIS_LOCK_DB": base.get("REDIS_LOCK_DB", "1"),
            "REDIS_PASSWORD": base.get("REDIS_PASSWORD", ""),
            "ACTION_ENDPOINT_URL": f"http://127.0.0.1:{self.ports.actions_proxy}/webhook",
            # channels (bot/settings.py)
            "REDIS_URL": base.get("REDIS_URL", f"redis://{redis_host}:{redis_port}/2"),
            # The page as served by this profile's nginx, besides the configured origins.
            "WEBCHAT_ALLOWED_ORIGINS": ",".join(
                origin
                for origin in [
                    *base.get("WEBCHAT_ALLOWED_ORIGINS", "").split(","),
                    public,
                    f"http://localhost:{self.ports.public}",
                ]
                if origin.strip()
            ),
            # action servers
            "CONSENT_API_URL": f"http://127.0.0.1:{self.ports.consent}",
            # consent service and staff console
            "CONSENT_DATABASE_URL": (
                f"postgresql+psycopg://{auth}{pg_host}:{pg_port}/{consent_db}"
            ),
            "STAFF_TRACKER_DATABASE_URL": (
                f"postgresql+psycopg://{auth}{pg_host}:{pg_port}/{rasa_db}"
            ),
        }
        self.processes: Dict[str, subprocess.Popen[bytes]] = {}

    # -- parts ------------------------------------------------------------------------------------

    def _start(self, name: str, command: List[str], env: Dict[str, str] | None = None) -> None:
        log = self.run_dir / f"{name}.log"
        with log.open("ab") as out:
            self.processes[name] = subprocess.Popen(
                command, cwd=ROOT, env=env or self.env, stdout=out, stderr=subprocess.STDOUT
            )

    def _wait(self, name: str, url: str, timeout: float = 300.0) -> None:
        deadline = time.monotonic() + timeout
        process = self.processes[name]
        while time.monotonic() < deadline:
            if process.poll() is not None:
                log = (self.run_dir / f"{name}.log").read_text(errors="replace")
                raise RuntimeError(f"{name} stopped while starting:\n{log[-3000:]}")
            try:
                if requests.get(url, timeout=2).status_code < 500:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{name} did not answer on {url} within {timeout:.0f} s")

    def start_consent(self) -> None:
        """The consent service on PostgreSQL."""
        env = {**self.env, "PYTHONPATH": str(ROOT / "backend")}
        command = [str(BACKEND_PYTHON), "-m", "consent_service", "serve",
                   "--port", str(self.ports.consent)]  # fmt: skip
        self._start("consent", command, env)
        self._wait("consent", f"http://127.0.0.1:{self.ports.consent}/health", 120)

    def start_actions(self, index: int) -> None:
        """Action server `index` (loopback, token required)."""
        port = self.ports.actions[index]
        command = [str(PYTHON), "-m", "bot.action_server", "--port", str(port)]
        self._start(f"actions-{index}", command)
        self._wait(f"actions-{index}", f"http://127.0.0.1:{port}/health", 120)

    def start_replica(self, index: int, wait: bool = True) -> None:
        """Rasa replica `index` (loopback, HTTP API off)."""
        port = self.ports.rasa[index]
        command = [
            str(PYTHON), "-m", "bot.server", "run", "--model", str(self.model),
            "--endpoints", str(ROOT / "endpoints.prod.yml"),
            "--credentials", str(ROOT / "credentials.prod.yml"),
            "--interface", "127.0.0.1", "--port", str(port),
        ]  # fmt: skip
        self._start(f"rasa-{index}", command)
        if wait:
            self._wait(f"rasa-{index}", f"http://127.0.0.1:{port}/webhooks/line/", 600)

    def start_nginx(self) -> None:
        """Nginx in front of the replicas (public) and the action servers (private)."""
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        if not Path(nginx).exists():
            raise SystemExit("nginx is missing: `apt-get install nginx-light` (Debian).")
        config = render_nginx(self.ports, self.run_dir)
        self._start("nginx", [nginx, "-e", str(self.run_dir / "nginx-error.log"),
                              "-c", str(config), "-p", str(self.run_dir)])  # fmt: skip
        self._wait("nginx", f"http://127.0.0.1:{self.ports.public}/health", 30)

    def start(self) -> None:
        """Everything, in dependency order."""
        create_database(self.pg_admin, self.rasa_db)
        create_database(self.pg_admin, self.consent_db)
        self.start_consent()
        for index in range(len(self.ports.actions)):
            self.start_actions(index)
        for index in range(len(self.ports.rasa)):
            self.start_replica(index, wait=False)
        for index, port in enumerate(self.ports.rasa):
            self._wait(f"rasa-{index}", f"http://127.0.0.1:{port}/webhooks/line/", 600)
        self.start_nginx()

    def run_retention(self) -> int:
        """Apply the retention policy to the tracker store once (bot/retention.py)."""
        command = [str(PYTHON), "-m", "bot.retention", "--endpoints",
                   str(ROOT / "endpoints.prod.yml")]  # fmt: skip
        with (self.run_dir / "retention.log").open("ab") as out:
            return subprocess.run(
                command, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT, check=False
            ).returncode

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Kill one part (SIGKILL by default: no goodbye)."""
        process = self.processes.pop(name, None)
        if process is not None and process.poll() is None:
            process.send_signal(sig)
            process.wait(timeout=30)

    def stop(self) -> None:
        """Stop everything that is running, and wait for it."""
        stopping = list(self.processes.values())
        self.processes.clear()
        for process in stopping:
            if process.poll() is None:
                process.terminate()
        for process in stopping:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    @property
    def public_url(self) -> str:
        """Where residents' channels reach the assistant."""
        return f"http://127.0.0.1:{self.ports.public}"


def main(argv: List[str] | None = None) -> int:
    """`run`: start the production profile and keep it up until Ctrl-C."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("command", choices=["run"])
    parser.parse_args(argv)
    stack = ProdStack()
    try:
        print("Starting the production profile (PostgreSQL, Redis, 2 replicas, nginx) ...")
        stack.start()
        print(
            f"\nThe assistant is running behind nginx: {stack.public_url}\n"
            f"  LINE webhook: {stack.public_url}/webhooks/line/webhook\n"
            f"  web chat:     {stack.public_url}/webhooks/socketio/chat\n"
            f"Private: action servers via 127.0.0.1:{stack.ports.actions_proxy}, consent service"
            f" and staff console on 127.0.0.1:{stack.ports.consent}.\n"
            f"Logs: {stack.run_dir}/. Ctrl-C stops everything."
        )
        next_retention = 0.0
        while all(p.poll() is None for p in stack.processes.values()):
            if time.monotonic() >= next_retention:  # at start, then daily
                if stack.run_retention() != 0:
                    print(f"Retention failed; see {stack.run_dir}/retention.log", file=sys.stderr)
                next_retention = time.monotonic() + RETENTION_EVERY_SECONDS
            time.sleep(1)
        stopped = [name for name, p in stack.processes.items() if p.poll() is not None]
        print(f"Stopped unexpectedly: {', '.join(stopped)}; see {stack.run_dir}/.", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        stack.stop()


if __name__ == "__main__":
    sys.exit(main())
