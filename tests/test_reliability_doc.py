"""docs/reliability.md's threat model names tests that exist, in the files it names.

A guard whose test was renamed or removed is no guard: every `tests/….py`, `file.py::test_x` and
`::test_y` (same file as the reference before it) in the threat model must resolve to a test
function defined in that file.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import List, Tuple

from tests.conftest import PROJECT_ROOT

DOC = PROJECT_ROOT / "docs" / "reliability.md"
TESTS = PROJECT_ROOT / "tests"
# `tests/bot/test_x.py`, `test_x.py::test_y`, `tests/bot/test_x.py::test_y` or `::test_y`.
REFERENCE = re.compile(r"`((?:[\w/]+/)?test_\w+\.py)?(?:::(test_\w+))?`")


def threat_model() -> str:
    text = DOC.read_text(encoding="utf-8")
    start = text.index("## Threat model")
    return text[start : text.index("\n## ", start + 1)]


def named_file(name: str) -> Path:
    """The test file a reference names: a path from the root, or a unique file name."""
    if "/" in name:
        return PROJECT_ROOT / name
    found = sorted(TESTS.rglob(name))
    assert len(found) == 1, f"{name} names {len(found)} files; write its path"
    return found[0]


def references() -> List[Tuple[Path, str | None]]:
    """(file, test function or None) for every reference, in the order of the text."""
    found: List[Tuple[Path, str | None]] = []
    current: Path | None = None
    for match in REFERENCE.finditer(threat_model()):
        name, function = match.group(1), match.group(2)
        if name is None and function is None:
            continue
        if name is not None:
            current = named_file(name)
        assert current is not None, f"`::{function}` before any file"
        found.append((current, function))
    return found


def test_the_threat_model_guards_with_tests_that_exist() -> None:
    found = references()
    assert len([f for _, f in found if f]) >= 60  # every finding of issue #12 has a guard
    missing = []
    for path, function in found:
        if not path.is_file():
            missing.append(str(path.relative_to(PROJECT_ROOT)))
        elif function and not re.search(
            rf"^(?:async )?def {function}\(", path.read_text(encoding="utf-8"), re.MULTILINE
        ):
            missing.append(f"{path.relative_to(PROJECT_ROOT)}::{function}")
    assert missing == []
