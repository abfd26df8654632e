"""The masking patterns cannot backtrack quadratically (issue 19's review), checked on their form.

A pattern that starts with an unbounded run (`\\d+…`, `[a-z.]+@…`) and needs more after it is
tried from every character of a long run that never matches: 5,000 digits took seconds. Each
such run must have a left anchor (a lookbehind, `^`) so that a match can start only at the
run's beginning. This reads the patterns' structure (no timing: the times are in
bench/privacy.py --adversarial and docs/benchmarks.md). It does not see a single character
followed by an unbounded run (`[一-龥]\\w*…`): such runs are bounded instead (a town's name).
"""

from __future__ import annotations

import importlib.util
import re
import sys
from typing import Any

import pytest

from bot.privacy import masking
from tests.privacy.cases import ROOT

try:  # Python >= 3.11
    from re import _constants as sre_constants  # type: ignore[attr-defined]
    from re import _parser as sre_parse  # type: ignore[attr-defined]
except ImportError:  # Python 3.10 (the Rasa side)
    import sre_constants
    import sre_parse


def _can_be_empty(items: list[Any]) -> bool:
    zero_width = (sre_constants.ASSERT, sre_constants.ASSERT_NOT, sre_constants.AT)
    repeats = (sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT)
    return all(op in zero_width or (op in repeats and av[0] == 0) for op, av in items)


def unanchored_run(items: list[Any]) -> bool:
    """Whether a match can start with an unbounded run that something after it must follow."""
    for index, (op, av) in enumerate(items):
        rest = list(items[index + 1 :])
        if op == sre_constants.AT:
            return False
        if op in (sre_constants.ASSERT, sre_constants.ASSERT_NOT):
            if av[0] < 0:  # a lookbehind: the left anchor
                return False
            continue  # a lookahead consumes nothing
        if op == sre_constants.SUBPATTERN:
            return unanchored_run(list(av[-1]) + rest)
        if op == sre_constants.BRANCH:
            return any(unanchored_run(list(branch) + rest) for branch in av[1])
        if op in (sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT):
            low, high, item = av
            if high == sre_constants.MAXREPEAT:
                return not _can_be_empty(rest)
            if unanchored_run(list(item) + rest):
                return True
            if low == 0:
                continue
            return False
        return False
    return False


def _staff_patterns() -> list[tuple[str, re.Pattern[str]]]:
    path = ROOT / "backend" / "consent_service" / "staff" / "masking.py"
    spec = importlib.util.spec_from_file_location("staff_masking", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["staff_masking"] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return [(f"staff PATTERNS[{i}]", p) for i, (p, _) in enumerate(module.PATTERNS)]


# Used only with `.match` at one position (never searched along a text).
MATCHED_AT = frozenset({"_PERSON_AFTER", "_CONTEXT_AFTER", "_COUNT_AFTER", "_HIRAGANA_END"})
PATTERNS = [
    (name, value)
    for name, value in vars(masking).items()
    if isinstance(value, re.Pattern) and name not in MATCHED_AT
] + _staff_patterns()


@pytest.mark.parametrize(("name", "pattern"), PATTERNS, ids=[name for name, _ in PATTERNS])
def test_no_pattern_starts_with_an_unanchored_unbounded_run(name: str, pattern: Any) -> None:
    parsed = sre_parse.parse(pattern.pattern, pattern.flags)
    assert not unanchored_run(list(parsed)), name


@pytest.mark.parametrize(
    "source", [r"\d+(?:\.\d+)?kg", r"[a-z.]+@[a-z]+", r"x|(?P<u>\d+\s*mmHg)", r"(?:\d+)?a"]
)
def test_the_check_sees_an_unanchored_run(source: str) -> None:
    assert unanchored_run(list(sre_parse.parse(source)))


@pytest.mark.parametrize("source", [r"(?<!\d)\d+kg", r"[a-z]+", r"\d+(?:\.\d+)?", r"^\d+a"])
def test_the_check_passes_an_anchored_or_unfailing_run(source: str) -> None:
    assert not unanchored_run(list(sre_parse.parse(source)))
