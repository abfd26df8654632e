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

It does not start with an empty password: the tracker store's PostgreSQL role (`RASA_DB_USER`,
`RASA_DB_PASSWORD`; created if missing, owner of the tracker database) and Redis
(`REDIS_PASSWORD`, given to the lock store and in `REDIS_URL` to the channels' shared state —
without it their rate limits and LINE de-duplication would fail against a Redis that requires
one). Nor with a weak token (bot/startup.py). Everything it writes is private (umask 0077).
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List
from urllib.parse import quote, urlsplit

try:
    from scripts import harness
except ImportError:  # run as `python scripts/prod.py`: this folder is on the path, not the root
    import harness  # type: ignore[no-redef]

ROOT = Path(__file__).resolve().parent.parent
PYTHON = ROOT / ".venv" / "bin" / "python"
BACKEND_PYTHON = ROOT / ".venv-backend" / "bin" / "python"
NGINX_TEMPLATE = ROOT / "deploy" / "nginx.conf.template"
REQUIRED_SECRETS = (
    "CONSENT_API_TOKEN",
    "SUBJECT_PSEUDONYM_KEY",
    # the consent service's audit key (docs/consent-service.md): kept across runs, since the
    # audit chain written under one key verifies only with it
    "CONSENT_AUDIT_KEY",
    # the staff console's TOTP secrets are encrypted under it (docs/staff-console.md): kept
    # across runs, or every staff account's second factor becomes unreadable
    "STAFF_TOTP_KEY",
)
PRIVATE_UMASK = 0o077
# The load balancer in front of nginx whose X-Forwarded-For names the client (a local TLS
# terminator by default; NGINX_REAL_IP_FROM lists the city's).
DEFAULT_REAL_IP_FROM = "127.0.0.1"
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
        one = harness.free_port
        return cls(one(), one(), [one() for _ in range(replicas)],
                   [one() for _ in range(replicas)], one())  # fmt: skip


def create_database(admin_url: str, name: str, owner: str | None = None) -> None:
    """Create PostgreSQL database `name` (owned by role `owner`, if given) unless it exists."""
    import psycopg2
    from psycopg2 import sql

    connection = psycopg2.connect(admin_url)
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if cursor.fetchone() is None:
                statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
                if owner:
                    statement += sql.SQL(" OWNER {}").format(sql.Identifier(owner))
                cursor.execute(statement)
    finally:
        connection.close()


def ensure_login_role(admin_url: str, role: str, password: str) -> None:
    """Create PostgreSQL role `role` (LOGIN, with `password`) unless it exists; never alter one."""
    import psycopg2
    from psycopg2 import sql

    connection = psycopg2.connect(admin_url)
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,))
            if cursor.fetchone() is None:
                cursor.execute(
                    sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                        sql.Identifier(role), sql.Literal(password)
                    )
                )
    finally:
        connection.close()


def start_up_problems(env: Dict[str, str]) -> List[str]:
    """What keeps the profile from starting safely with this environment (empty: nothing).

    Args:
        env: The environment the profile's processes get (after defaults are applied).

    Returns:
        One short sentence per problem: an empty password or a missing or weak token.
    """
    from bot.startup import token_problem

    problems = []
    if not env.get("RASA_DB_PASSWORD"):
        problems.append(
            "RASA_DB_PASSWORD (or PG_PASSWORD) is empty: the tracker store's PostgreSQL role"
            " needs a password"
        )
    if not env.get("REDIS_PASSWORD"):
        problems.append(
            "REDIS_PASSWORD is empty: Redis (lock store, rate limits, LINE de-duplication)"
            " needs requirepass and its password"
        )
    elif not urlsplit(env.get("REDIS_URL", "")).password:
        problems.append("REDIS_URL has no password: write it as redis://:<password>@host:port/db")
    problems.extend(web_problems(env))
    for name in ("CONSENT_API_TOKEN", "ACTION_SERVER_TOKEN"):
        problem = token_problem(name, env.get(name), required=True)
        if problem:
            problems.append(problem.rstrip("."))
    return problems


def web_problems(env: Dict[str, str]) -> List[str]:
    """The web chat's origins and nginx's trusted load balancers, as `start_up_problems` says.

    Production accepts only https origins of public hosts (no http, localhost or 127.0.0.1:
    bot/channels/origins.py), and NGINX_REAL_IP_FROM must be addresses or networks.
    """
    from bot.channels.origins import insecure_origins, split_origins

    problems = []
    origins = split_origins(env.get("WEBCHAT_ALLOWED_ORIGINS", ""))
    refused = insecure_origins(origins)
    if not origins or refused:
        problems.append(
            "WEBCHAT_ALLOWED_ORIGINS must list the https origin(s) of the city's chat page, none"
            " http, localhost or 127.0.0.1"
            + (f" (refused: {', '.join(refused)})" if refused else "")
        )
    try:
        real_ip_lines(env.get("NGINX_REAL_IP_FROM", DEFAULT_REAL_IP_FROM))
    except ValueError:
        problems.append("NGINX_REAL_IP_FROM must be comma-separated addresses or networks")
    return problems


def real_ip_lines(trusted: str) -> str:
    """The `set_real_ip_from` lines of nginx for comma-separated addresses or networks.

    Raises:
        ValueError: For an empty list or anything that is not an address or network.
    """
    networks = [str(ipaddress.ip_network(n.strip(), strict=False)) for n in trusted.split(",")]
    return "\n".join(f"  set_real_ip_from {network};" for network in networks)


def render_nginx(ports: Ports, run_dir: Path, real_ip_from: str = DEFAULT_REAL_IP_FROM) -> Path:
    """Write nginx.conf for these ports (and these trusted load balancers) into `run_dir`."""
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
        "REAL_IP_FROM": real_ip_lines(real_ip_from),
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
        self.run_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.run_dir.chmod(0o700)  # logs of residents' conversations' plumbing: owner only
        self.model = model
        base = dict(os.environ if env is None else env)
        # The key that opens the sealed LINE user ids (issue 17) goes to the notice sender alone:
        # `make run PROFILE=prod` exports all of .env, so it is taken out of every other part's
        # environment here.
        self.notice_private_key = base.pop("NOTICE_PRIVATE_KEY", "")
        missing = [name for name in REQUIRED_SECRETS if not base.get(name)]
        if missing:
            raise SystemExit(
                "Set these in the environment first (`make run PROFILE=prod` exports .env): "
                + ", ".join(missing)
            )
        if not base.get("ACTION_SERVER_TOKEN"):
            base["ACTION_SERVER_TOKEN"] = secrets.token_urlsafe(32)
        if not base.get("CONSENT_ADMIN_TOKEN"):  # operators who need it set it
            base["CONSENT_ADMIN_TOKEN"] = secrets.token_urlsafe(32)
        pg_host = base.setdefault("PG_HOST", "127.0.0.1")
        pg_port = base.setdefault("PG_PORT", "5432")
        pg_user = base.setdefault("PG_USER", "postgres")
        pg_password = base.setdefault("PG_PASSWORD", "")
        self.pg_admin = f"postgresql://{pg_user}:{pg_password}@{pg_host}:{pg_port}/postgres"
        self.rasa_db, self.consent_db = rasa_db, consent_db
        # The tracker store's own role (created if missing, owner of its database).
        self.rasa_db_user = base.get("RASA_DB_USER") or pg_user
        self.rasa_db_password = base.get("RASA_DB_PASSWORD") or pg_password
        # The consent database's roles (backend/consent_service/roles.py): the schema owner
        # (migrations only, never given to the service), the app (no DDL, audit log
        # append-only) and the staff console's read-only reader; `db create-roles` sets these
        # passwords, new on every run.
        self.consent_roles = {
            kind: (f"{consent_db}_{kind}", secrets.token_urlsafe(24))
            for kind in ("owner", "app", "ro")
        }

        def role_url(kind: str, database: str) -> str:
            name, password = self.consent_roles[kind]
            return f"postgresql+psycopg://{name}:{password}@{pg_host}:{pg_port}/{database}"

        self.consent_owner_url = role_url("owner", consent_db)
        redis_host = base.setdefault("REDIS_HOST", "127.0.0.1")
        redis_port = base.setdefault("REDIS_PORT", "6379")
        redis_password = base.get("REDIS_PASSWORD", "")
        self.env = {
            **base,
            "PYTHONPATH": str(ROOT),
            "SQLALCHEMY_SILENCE_UBER_WARNING": "1",
            "TF_CPP_MIN_LOG_LEVEL": "2",
            # endpoints.prod.yml
            "RASA_DB_HOST": pg_host,
            "RASA_DB_PORT": pg_port,
            "RASA_DB_NAME": rasa_db,
            "RASA_DB_USER": self.rasa_db_user,
            "RASA_DB_PASSWORD": self.rasa_db_password,
            "REDIS_LOCK_DB": base.get("REDIS_LOCK_DB", "1"),
            "REDIS_PASSWORD": redis_password,
            "ACTION_ENDPOINT_URL": f"http://127.0.0.1:{self.ports.actions_proxy}/webhook",
            # channels (bot/settings.py, bot/shared_state.py): the same Redis, with its password
            "REDIS_URL": base.get("REDIS_URL")
            or f"redis://:{quote(redis_password, safe='')}@{redis_host}:{redis_port}/2",
            # The web chat: the city's https page only (checked below), CSP with wss: only.
            "WEBCHAT_ALLOWED_ORIGINS": base.get("WEBCHAT_ALLOWED_ORIGINS", ""),
            "WEBCHAT_SECURE_ONLY": "true",
            # action servers
            "CONSENT_API_URL": f"http://127.0.0.1:{self.ports.consent}",
            # consent service and staff console
            "CONSENT_ENV": "production",
            "CONSENT_AUTO_MIGRATE": "false",  # prepare_consent_database migrates, as the owner
            "CONSENT_DATABASE_URL": role_url("app", consent_db),
            "CONSENT_READONLY_DATABASE_URL": role_url("ro", consent_db),
            # analytics: Rasa's Pika event broker (endpoints.prod.yml) and the consumer
            "ANALYTICS_SOURCE": "rabbitmq",
            "RABBITMQ_URL": base.get("RABBITMQ_URL", "amqp://127.0.0.1/%2F"),
            "RABBITMQ_PORT": base.get("RABBITMQ_PORT", "5672"),
            "RABBITMQ_USERNAME": base.get("RABBITMQ_USERNAME", "guest"),
            "RABBITMQ_PASSWORD": base.get("RABBITMQ_PASSWORD", "guest"),
            "RABBITMQ_QUEUE": base.get("RABBITMQ_QUEUE", "funabashi_analytics"),
            "RABBITMQ_EXCHANGE": base.get("RABBITMQ_EXCHANGE", "rasa-exchange"),
        }
        problems = start_up_problems(self.env)
        if problems:
            raise SystemExit("The production profile does not start: " + "; ".join(problems))
        # Each part in its own process group, its output in run_dir/<name>.log (scripts/harness.py).
        self.group = harness.Group()

    @property
    def processes(self) -> Dict[str, subprocess.Popen[bytes]]:
        """The running parts by name (a snapshot)."""
        return {name: process.popen for name, process in self.group.processes.items()}

    # -- parts ------------------------------------------------------------------------------------

    def _log(self, name: str) -> Path:
        return self.run_dir / f"{name}.log"

    def _start(self, name: str, command: List[str], env: Dict[str, str] | None = None) -> None:
        """Start a part that needs no readiness check (private files: umask 0077)."""
        self.group.start(harness.Spec(name, command, self._log(name), env=env or self.env,
                                      umask=PRIVATE_UMASK))  # fmt: skip

    def _wait(self, name: str) -> None:
        """Wait until part `name` answers (harness.StartError, a RuntimeError, if not)."""
        self.group.processes[name].wait_ready()

    def _backend_command(self, name: str, args: List[str], env: Dict[str, str]) -> None:
        """Run `python -m consent_service ARGS` to completion, its output to `name`.log."""
        log = os.open(self.run_dir / f"{name}.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(log, "ab") as out:
            done = subprocess.run(
                [str(BACKEND_PYTHON), "-m", "consent_service", *args], cwd=ROOT,
                env={**env, "PYTHONPATH": str(ROOT / "backend")}, stdout=out,
                stderr=subprocess.STDOUT, check=False, umask=PRIVATE_UMASK, timeout=300,
            )  # fmt: skip
        if done.returncode != 0:
            text = (self.run_dir / f"{name}.log").read_text(errors="replace")
            raise RuntimeError(f"consent_service {args[0]} failed:\n{text[-3000:]}")

    def prepare_consent_database(self) -> None:
        """The consent database's roles (as the superuser), then migrations (as the owner)."""
        admin = self.pg_admin.replace("postgresql://", "postgresql+psycopg://", 1)
        owner = {**self.env, "CONSENT_MIGRATION_DATABASE_URL": self.consent_owner_url}
        self._backend_command("consent-setup", ["db", "create-roles"],
                              {**owner, "CONSENT_DB_ADMIN_URL": admin})  # fmt: skip
        self._backend_command("consent-setup", ["migrate"], owner)

    def start_consent(self) -> None:
        """The consent service on PostgreSQL."""
        self.group.start(harness.consent_spec(
            self.ports.consent, self.env, self._log("consent"), python=BACKEND_PYTHON,
            umask=PRIVATE_UMASK,
        ))  # fmt: skip
        self._wait("consent")

    def start_consumer(self) -> None:
        """The consumer of Rasa's events (RabbitMQ) into the staff console's tables."""
        self.group.start(harness.consumer_spec(self.env, self._log("consumer"),
                                               umask=PRIVATE_UMASK))  # fmt: skip

    def start_sender(self) -> bool:
        """The notice sender (issue 17), the only part given NOTICE_PRIVATE_KEY.

        Returns:
            Whether it was started: it needs NOTICE_PRIVATE_KEY and LINE_CHANNEL_ACCESS_TOKEN
            (without them there is no one to send to, and the stack runs without it).
        """
        if not (self.notice_private_key and self.env.get("LINE_CHANNEL_ACCESS_TOKEN")):
            return False
        env = {**self.env, "NOTICE_PRIVATE_KEY": self.notice_private_key}
        self.group.start(harness.sender_spec(env, self._log("sender"), umask=PRIVATE_UMASK))
        return True

    def start_actions(self, index: int) -> None:
        """Action server `index` (loopback, token required)."""
        name = f"actions-{index}"
        self.group.start(harness.actions_spec(
            self.ports.actions[index], self.env, self._log(name), name=name,
            command=[str(PYTHON), "-m", "bot.action_server"], umask=PRIVATE_UMASK,
        ))  # fmt: skip
        self._wait(name)

    def start_replica(self, index: int, wait: bool = True) -> None:
        """Rasa replica `index` (loopback, HTTP API off)."""
        name = f"rasa-{index}"
        self.group.start(harness.rasa_spec(
            self.ports.rasa[index], self.env, self._log(name), name=name, model=self.model,
            endpoints=ROOT / "endpoints.prod.yml", credentials=ROOT / "credentials.prod.yml",
            enable_api=False, ready_path="/webhooks/line/", ready_below=500, timeout=600,
            command=[str(PYTHON), "-m", "bot.server"], umask=PRIVATE_UMASK,
        ))  # fmt: skip
        if wait:
            self._wait(name)

    def start_nginx(self) -> None:
        """Nginx in front of the replicas (public) and the action servers (private)."""
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        if not Path(nginx).exists():
            raise SystemExit("nginx is missing: `apt-get install nginx-light` (Debian).")
        trusted = self.env.get("NGINX_REAL_IP_FROM", DEFAULT_REAL_IP_FROM)
        config = render_nginx(self.ports, self.run_dir, trusted)
        self.group.start(harness.Spec(
            "nginx", [nginx, "-e", str(self.run_dir / "nginx-error.log"), "-c", str(config),
                      "-p", str(self.run_dir)],
            self._log("nginx"), env=self.env, umask=PRIVATE_UMASK, timeout=30,
            ready=harness.HttpReady(f"http://127.0.0.1:{self.ports.public}/health", 500),
        ))  # fmt: skip
        self._wait("nginx")

    def start(self) -> None:
        """Everything, in dependency order."""
        ensure_login_role(self.pg_admin, self.rasa_db_user, self.rasa_db_password)
        create_database(self.pg_admin, self.rasa_db, owner=self.rasa_db_user)
        create_database(self.pg_admin, self.consent_db)
        self.prepare_consent_database()
        self.start_consent()
        self.start_consumer()
        self.start_sender()
        for index in range(len(self.ports.actions)):
            self.start_actions(index)
        for index in range(len(self.ports.rasa)):
            self.start_replica(index, wait=False)
        for index in range(len(self.ports.rasa)):
            self._wait(f"rasa-{index}")
        self.start_nginx()

    def run_retention(self) -> int:
        """Apply the retention policies once.

        The consent service's expired idempotency records, then the tracker store's
        (bot/retention.py).
        """
        try:
            self._backend_command("retention", ["retention"], self.env)
            consent_code = 0
        except (RuntimeError, subprocess.TimeoutExpired):
            consent_code = 1
        command = [str(PYTHON), "-m", "bot.retention", "--endpoints",
                   str(ROOT / "endpoints.prod.yml")]  # fmt: skip
        log = os.open(self.run_dir / "retention.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(log, "ab") as out:
            tracker_code = subprocess.run(
                command, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT, check=False,
                umask=PRIVATE_UMASK,
            ).returncode  # fmt: skip
        return tracker_code or consent_code

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Kill one part and what it started (SIGKILL by default: no goodbye)."""
        self.group.kill(name, sig)

    def stop(self) -> None:
        """Stop everything that is running (SIGTERM, then SIGKILL after 30 s), and wait."""
        self.group.stop()

    @property
    def public_url(self) -> str:
        """Where residents' channels reach the assistant."""
        return f"http://127.0.0.1:{self.ports.public}"


def main(argv: List[str] | None = None) -> int:
    """`run`: start the production profile and keep it up until Ctrl-C."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("command", choices=["run"])
    parser.parse_args(argv)
    os.umask(PRIVATE_UMASK)
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
        while not stack.group.stopped():
            if time.monotonic() >= next_retention:  # at start, then daily
                if stack.run_retention() != 0:
                    print(f"Retention failed; see {stack.run_dir}/retention.log", file=sys.stderr)
                next_retention = time.monotonic() + RETENTION_EVERY_SECONDS
            time.sleep(1)
        stopped = stack.group.stopped()
        print(f"Stopped unexpectedly: {', '.join(stopped)}; see {stack.run_dir}/.", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        stack.stop()


if __name__ == "__main__":
    sys.exit(main())
