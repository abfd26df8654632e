"""docs/architecture.md stays true: the files, modules and ports it names exist as it says."""

from __future__ import annotations

import re

from scripts.prod import Ports
from tests.conftest import PROJECT_ROOT

DOC = PROJECT_ROOT / "docs" / "architecture.md"
# Generated or local-only (git-ignored) paths the page names.
NOT_TRACKED = ("models/", "var/", ".env", ".venv")


def text() -> str:
    return DOC.read_text(encoding="utf-8")


def test_it_has_a_mermaid_diagram_and_the_readme_links_it() -> None:
    assert "```mermaid\nflowchart" in text()
    assert "(docs/architecture.md)" in (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")


def test_every_path_it_names_exists() -> None:
    named = set(re.findall(r"`([\w.-]+(?:/[\w.-]*)+|[\w-]+\.(?:yml|py|md))`", text()))
    paths = {p for p in named if "/" in p and not p.startswith(("/", *NOT_TRACKED))}
    assert {"scripts/prod.py", "bot/channels/line.py", "actions/consent_client.py"} <= paths
    assert sorted(p for p in paths if not (PROJECT_ROOT / p).exists()) == []


def test_every_module_it_starts_exists() -> None:
    modules = set(re.findall(r"python -m ([\w.]+)", text()))
    assert {"bot.server", "bot.action_server", "consent_service", "bot.retention"} <= modules
    roots = (PROJECT_ROOT, PROJECT_ROOT / "backend")
    missing = [
        m
        for m in modules
        if not any(
            (root / m.replace(".", "/")).with_suffix(".py").exists()
            or (root / m.replace(".", "/") / "__main__.py").exists()
            for root in roots
        )
    ]
    assert missing == []


def test_the_ports_are_the_production_profiles() -> None:
    ports = Ports()
    expected = [ports.public, ports.actions_proxy, ports.consent, *ports.rasa, *ports.actions]
    assert [p for p in expected if f":{p}" not in text()] == []
