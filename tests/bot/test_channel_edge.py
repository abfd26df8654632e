"""The public edge of the production profile without starting it: the nginx configuration
scripts/prod.py renders (limits, the client's real address, security headers; `nginx -t` when
nginx is installed) and the web chat settings the profile refuses or sets."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from scripts.prod import Ports, ProdStack, render_nginx, start_up_problems, web_problems
from tests.scripts.test_prod import _env

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


@pytest.fixture
def config(tmp_path: Path) -> str:
    return render_nginx(Ports.free(), tmp_path, "127.0.0.1, 10.20.0.0/16").read_text()


def public_server(config: str) -> str:
    start = config.index("# Public:")
    return config[start : config.index("# Private:", start)]


def location(config: str, name: str) -> str:
    match = re.search(r"location " + re.escape(name) + r" \{(.*?)\n    \}", config, re.S)
    assert match, name
    return match.group(1)


def test_the_client_address_comes_only_from_trusted_load_balancers(config: str) -> None:
    assert "  set_real_ip_from 127.0.0.1/32;\n  set_real_ip_from 10.20.0.0/16;" in config
    assert "real_ip_header X-Forwarded-For;" in config
    assert "real_ip_recursive on;" in config
    assert "proxy_set_header X-Real-IP $remote_addr;" in config
    # the socket.io location sets its own headers, so it must repeat X-Real-IP
    assert "proxy_set_header X-Real-IP $remote_addr;" in location(config, "/socket.io/")


@pytest.mark.parametrize("trusted", ["", "127.0.0.1; include /etc/passwd", "lb.example", "*"])
def test_a_malformed_trusted_range_is_refused(tmp_path: Path, trusted: str) -> None:
    with pytest.raises(ValueError):
        render_nginx(Ports.free(), tmp_path, trusted)
    assert any("NGINX_REAL_IP_FROM" in p for p in web_problems(_env(NGINX_REAL_IP_FROM=trusted)))


def test_web_chat_locations_are_limited_per_client(config: str) -> None:
    assert "limit_req_zone $binary_remote_addr zone=webchat_sessions:10m rate=6r/m;" in config
    assert "limit_conn_zone $binary_remote_addr zone=webchat_connections:10m;" in config
    assert "limit_req_status 429;" in config and "limit_conn_status 429;" in config
    session = location(config, "= /webhooks/socketio/session")
    assert "limit_req zone=webchat_sessions burst=10 nodelay;" in session
    for name in ("= /webhooks/socketio/session", "/webhooks/socketio/", "/socket.io/"):
        block = location(config, name)
        assert "limit_req zone=" in block and "limit_conn webchat_connections 20;" in block
    # refusals are not logged at the error log's level: the log keeps no client address
    assert "limit_req_log_level info;" in config and "limit_conn_log_level info;" in config
    assert "error_log" in config and " warn;" in config


def test_security_headers_are_set_once_for_the_whole_public_server(config: str) -> None:
    public = public_server(config)
    head = public[: public.index("\n    location")]
    for header in (
        'Strict-Transport-Security "max-age=63072000; includeSubDomains" always;',
        "Content-Security-Policy $content_security_policy always;",
        'X-Content-Type-Options "nosniff" always;',
        'X-Frame-Options "DENY" always;',
        'Referrer-Policy "no-referrer" always;',
    ):
        assert f"add_header {header}" in head, header
    # an add_header or proxy_hide_header in a location would drop all the server's ones there
    body = public[public.index("\n    location") :]
    assert "add_header" not in body and "proxy_hide_header" not in body
    assert "default-src 'none'; frame-ancestors 'none'" in config  # CSP where the app sets none


def test_nginx_accepts_the_configuration(tmp_path: Path, config: str) -> None:
    if not Path(NGINX).exists():
        if os.environ.get("CI") == "true":
            pytest.fail("nginx is required in CI (make nginx-deps)")
        pytest.skip("nginx is not installed (make nginx-deps)")
    path = tmp_path / "nginx.conf"
    path.write_text(config)
    done = subprocess.run(
        [NGINX, "-t", "-c", str(path), "-p", str(tmp_path), "-e", str(tmp_path / "e.log")],
        capture_output=True, text=True, check=False, timeout=30,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(
    "origins",
    [
        "<unset>",
        "",
        "http://localhost:5005,http://127.0.0.1:5005",  # the development .env
        "https://chat.example.test,http://127.0.0.1:8080",
        "https://localhost",
        "http://chat.example.test",
    ],
)
def test_the_profile_refuses_local_or_plain_web_chat_origins(tmp_path: Path, origins: str) -> None:
    assert any("WEBCHAT_ALLOWED_ORIGINS" in p for p in web_problems(_env(**{
        "WEBCHAT_ALLOWED_ORIGINS": origins})))  # fmt: skip
    with pytest.raises(SystemExit) as refused:
        ProdStack(Ports.free(), tmp_path / "run", _env(WEBCHAT_ALLOWED_ORIGINS=origins))
    assert "WEBCHAT_ALLOWED_ORIGINS" in str(refused.value)


def test_the_profile_runs_the_web_chat_secure_only(tmp_path: Path) -> None:
    stack = ProdStack(
        Ports.free(), tmp_path / "run", _env(WEBCHAT_ALLOWED_ORIGINS="https://chat.example.test")
    )
    assert stack.env["WEBCHAT_ALLOWED_ORIGINS"] == "https://chat.example.test"  # nothing added
    assert stack.env["WEBCHAT_SECURE_ONLY"] == "true"
    assert not [p for p in start_up_problems(stack.env) if "WEBCHAT" in p]
