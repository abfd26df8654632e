"""The repository is self-contained: its code and tests read nothing beside it (issue 20).

The project's shared brief (contract, seed, LINE's OpenAPI files) lives outside the repository
where it was written; what the code and tests need of it is copied in (docs/contract.md,
docs/seed/, tests/specs/line-openapi/), so a clone anywhere passes `make test`.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import List

from tests.conftest import PROJECT_ROOT
from tests.line_fake import SPECS

CHECKED = ("bot", "actions", "backend", "scripts", "tests", "bench", "Makefile")
# `../shared` in any form, and a path built to a `shared` folder (`parent / "shared"`).
OUTSIDE = re.compile(rb"\.\./shared\b|[\"']shared[\"']\s*/")


def tracked_files() -> List[Path]:
    """The tracked files under CHECKED (every file there when this is not a git checkout)."""
    git = shutil.which("git")
    try:
        if git is None:
            raise FileNotFoundError("git")
        listed = subprocess.run(
            [git, "ls-files", "-z", "--", *CHECKED],
            cwd=PROJECT_ROOT,
            capture_output=True,
            check=True,
            timeout=30,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return [p for name in CHECKED for p in (PROJECT_ROOT / name).rglob("*") if p.is_file()]
    return [PROJECT_ROOT / name.decode() for name in listed.split(b"\0") if name]


def test_the_check_sees_the_files() -> None:
    names = {p.relative_to(PROJECT_ROOT).as_posix() for p in tracked_files()}
    assert {"bot/settings.py", "tests/line_fake.py", "Makefile"} <= names


def test_the_pattern_finds_what_it_must() -> None:
    found = [
        b"See ../shared/docs/contract.md.",
        b'SPECS = ROOT.parent / "shared" / "specs"',
        b"p = root.parent / 'shared'/'seed'",
    ]
    assert all(OUTSIDE.search(text) for text in found)
    assert not OUTSIDE.search(b"from bot.shared_state import MemoryState; rasa.shared.constants")


def test_nothing_refers_to_files_beside_the_repository() -> None:
    offending = [
        f"{path.relative_to(PROJECT_ROOT)}:{number}"
        for path in tracked_files()
        if path.exists() and path.resolve() != Path(__file__).resolve()  # its own examples
        for number, line in enumerate(path.read_bytes().splitlines(), start=1)
        if OUTSIDE.search(line)
    ]
    assert offending == []


def test_the_line_specs_are_inside_the_repository_with_their_licence() -> None:
    assert SPECS.resolve().is_relative_to(PROJECT_ROOT.resolve())
    for name in ("messaging-api.yml", "webhook.yml", "LICENSE", "README.md"):
        assert (SPECS / name).is_file(), name
    assert "Apache License" in (SPECS / "LICENSE").read_text(encoding="utf-8")
    assert re.search(r"\b[0-9a-f]{40}\b", (SPECS / "README.md").read_text(encoding="utf-8"))
