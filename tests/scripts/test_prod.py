"""The production profile refuses to start open: empty passwords, a Redis URL without one, weak
tokens; and what it writes is private (security issue #12). No process of the profile starts."""

from __future__ import annotations

import os
import secrets
import stat
import sys
from pathlib import Path
from typing import Dict, Iterator, List
from urllib.parse import urlsplit

import pytest
from redis.connection import parse_url

from scripts.harness import Spec
from scripts.prod import Ports, ProdStack

REDIS_PASSWORD = "r/ed@is:" + secrets.token_urlsafe(24)  # characters a URL must escape


def _env(**values: str) -> Dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "CONSENT_API_TOKEN": secrets.token_urlsafe(32),
        "SUBJECT_PSEUDONYM_KEY": secrets.token_hex(32),
        "CONSENT_AUDIT_KEY": secrets.token_urlsafe(32),  # the consent service's (helper C1)
        "STAFF_TOTP_KEY": secrets.token_urlsafe(32),  # the staff console's TOTP secrets' key
        "RASA_DB_USER": "funabashi_rasa_role",
        "RASA_DB_PASSWORD": secrets.token_urlsafe(24),
        "REDIS_PASSWORD": REDIS_PASSWORD,
        "REDIS_PORT": "6390",
        "WEBCHAT_ALLOWED_ORIGINS": "https://chat.example.test",  # the city's page (issue #12 A5)
    }
    env.update(values)
    return {name: value for name, value in env.items() if value != "<unset>"}


@pytest.fixture
def umask_022() -> Iterator[None]:
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"RASA_DB_PASSWORD": "<unset>"}, "RASA_DB_PASSWORD"),  # and PG_PASSWORD empty
        ({"RASA_DB_PASSWORD": ""}, "RASA_DB_PASSWORD"),
        ({"REDIS_PASSWORD": "<unset>"}, "REDIS_PASSWORD"),
        ({"REDIS_PASSWORD": ""}, "REDIS_PASSWORD"),
        ({"REDIS_URL": "redis://127.0.0.1:6379/2"}, "REDIS_URL"),
        ({"CONSENT_API_TOKEN": "reliability-consent-token"}, "CONSENT_API_TOKEN"),
        ({"ACTION_SERVER_TOKEN": "short"}, "ACTION_SERVER_TOKEN"),
    ],
)
def test_the_profile_does_not_start_open(
    tmp_path: Path, values: Dict[str, str], named: str
) -> None:
    with pytest.raises(SystemExit) as refused:
        ProdStack(Ports.free(), tmp_path / "run", _env(**values))
    message = str(refused.value)
    assert named in message and "\n" not in message


def test_redis_gets_its_password_everywhere(tmp_path: Path) -> None:
    stack = ProdStack(Ports.free(), tmp_path / "run", _env())
    assert stack.env["REDIS_PASSWORD"] == REDIS_PASSWORD  # the lock store (endpoints.prod.yml)
    shared = parse_url(stack.env["REDIS_URL"])  # the channels (bot/shared_state.py)
    assert shared["password"] == REDIS_PASSWORD
    assert (shared["host"], shared["port"], shared["db"]) == ("127.0.0.1", 6390, 2)
    assert REDIS_PASSWORD not in stack.env["REDIS_URL"]  # escaped, not spliced in
    given = ProdStack(
        Ports.free(), tmp_path / "run2", _env(REDIS_URL="redis://:pw@10.0.0.5:6379/3")
    )
    assert given.env["REDIS_URL"] == "redis://:pw@10.0.0.5:6379/3"
    assert urlsplit(given.env["REDIS_URL"]).password == "pw"


def test_the_tracker_store_uses_its_own_role_and_password(tmp_path: Path) -> None:
    env = _env()
    stack = ProdStack(Ports.free(), tmp_path / "run", env)
    assert stack.env["RASA_DB_USER"] == "funabashi_rasa_role"
    assert stack.env["RASA_DB_PASSWORD"] == env["RASA_DB_PASSWORD"]
    fallback = ProdStack(
        Ports.free(),
        tmp_path / "run2",
        _env(RASA_DB_USER="<unset>", RASA_DB_PASSWORD="<unset>", PG_PASSWORD="pg-secret"),
    )
    assert (fallback.env["RASA_DB_USER"], fallback.env["RASA_DB_PASSWORD"]) == (
        "postgres",
        "pg-secret",
    )


def test_a_missing_action_server_token_is_generated_strong(tmp_path: Path) -> None:
    stack = ProdStack(Ports.free(), tmp_path / "run", _env(ACTION_SERVER_TOKEN=""))
    assert len(stack.env["ACTION_SERVER_TOKEN"]) >= 43


def test_logs_and_files_of_the_profile_are_private(tmp_path: Path, umask_022: None) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir(mode=0o755)
    stack = ProdStack(Ports.free(), run_dir, _env())
    assert stat.S_IMODE(run_dir.stat().st_mode) == 0o700
    created = tmp_path / "created-by-a-part.db"
    stack._start("part", [sys.executable, "-c", f"open({str(created)!r}, 'w').write('x')"])
    assert stack.processes["part"].wait(timeout=60) == 0
    assert stat.S_IMODE(created.stat().st_mode) == 0o600  # the part's own files
    assert stat.S_IMODE((run_dir / "part.log").stat().st_mode) == 0o600


def test_the_consent_service_runs_as_its_app_role_in_production(tmp_path: Path) -> None:
    from sqlalchemy.engine import make_url

    stack = ProdStack(Ports.free(), tmp_path / "run", _env(), consent_db="consent_x")
    env = stack.env
    assert env["CONSENT_ENV"] == "production" and env["CONSENT_AUTO_MIGRATE"] == "false"
    assert "CONSENT_MIGRATION_DATABASE_URL" not in env  # the owner only migrates (setup step)
    app = make_url(env["CONSENT_DATABASE_URL"])
    reader = make_url(env["CONSENT_READONLY_DATABASE_URL"])
    assert "STAFF_TRACKER_DATABASE_URL" not in env  # no credential for Rasa's database (issue 20)
    assert (app.username, reader.username) == ("consent_x_app", "consent_x_ro")
    assert app.password and reader.password and app.password != reader.password
    assert make_url(stack.consent_owner_url).username == "consent_x_owner"
    assert len(env["CONSENT_ADMIN_TOKEN"]) >= 43  # generated when not given
    with pytest.raises(SystemExit, match="CONSENT_AUDIT_KEY"):
        ProdStack(Ports.free(), tmp_path / "run2", _env(CONSENT_AUDIT_KEY="<unset>"))


@pytest.mark.parametrize("value", ["<unset>", ""])
def test_the_profile_needs_the_staff_totp_key_before_starting_anything(
    tmp_path: Path, value: str
) -> None:
    # Without it the consent service refuses to start only after the databases and roles were
    # prepared; the profile names it first, with the other secrets it cannot generate.
    with pytest.raises(SystemExit, match="STAFF_TOTP_KEY"):
        ProdStack(Ports.free(), tmp_path / "run", _env(STAFF_TOTP_KEY=value))


def test_the_notice_private_key_reaches_the_sender_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = secrets.token_urlsafe(32)
    stack = ProdStack(
        Ports.free(),
        tmp_path / "run",
        _env(NOTICE_PRIVATE_KEY=key, LINE_CHANNEL_ACCESS_TOKEN="line-token"),
    )
    assert "NOTICE_PRIVATE_KEY" not in stack.env  # Rasa, actions, consent service, nginx ...
    started: List[Spec] = []
    monkeypatch.setattr(stack.group, "start", started.append)
    assert stack.start_sender()
    [spec] = started
    assert spec.name == "sender" and spec.env is not None
    assert spec.env["NOTICE_PRIVATE_KEY"] == key
    assert spec.argv[-2:] == ["consent_service", "send-notices"]


@pytest.mark.parametrize("missing", ["NOTICE_PRIVATE_KEY", "LINE_CHANNEL_ACCESS_TOKEN"])
def test_no_sender_without_its_key_or_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, missing: str
) -> None:
    values = {"NOTICE_PRIVATE_KEY": secrets.token_urlsafe(32), "LINE_CHANNEL_ACCESS_TOKEN": "t"}
    values[missing] = "<unset>"
    stack = ProdStack(Ports.free(), tmp_path / "run", _env(**values))
    started: List[Spec] = []
    monkeypatch.setattr(stack.group, "start", started.append)
    assert not stack.start_sender() and started == []
