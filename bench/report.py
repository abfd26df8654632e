"""Writing one benchmark's section of docs/benchmarks.md (shared by the bench scripts)."""

from __future__ import annotations

import re
from pathlib import Path


def write_section(section: str, path: Path, start: str, end: str) -> None:
    """Replace the part of `path` between the markers `start` and `end` (or append it).

    Args:
        section: The new section, markers included.
        path: The Markdown file.
        start: The opening marker.
        end: The closing marker.
    """
    current = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    pattern = re.compile(re.escape(start) + ".*?" + re.escape(end), re.S)
    updated = (
        pattern.sub(lambda _: section, current)
        if pattern.search(current)
        else current.rstrip("\n") + "\n\n" + section
    )
    path.write_text(updated.rstrip("\n") + "\n", encoding="utf-8")
