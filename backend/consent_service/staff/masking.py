"""Masking what staff must not see.

Health values, names, places, phone numbers, My Number-like digit strings, e-mail addresses.
Two layers: Japanese patterns (always), and GiNZA's named entities (people, places, diseases,
drugs, ...) when a spaCy pipeline is given. Masked spans become 「＊」 runs of a fixed marker, so a
transcript stays readable without revealing the value.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

MARK = "［伏せ字］"
NUMBER_MARK = "＊＊"
# GiNZA (ENE) labels whose text is personal or sensitive.
SENSITIVE_LABELS = frozenset(
    {
        "Person", "City", "Province", "County", "Country", "GPE_Other", "Domestic_Region",
        "Postal_Address", "Phone_Number", "Email", "URL", "ID_Number", "Disease_Other", "Drug",
        "Age", "Facility_Other", "Hospital", "School", "Company",
    }
)  # fmt: skip
HEALTH_TERMS = (
    "血圧|上の血圧|下の血圧|体重|体温|熱|脈拍|脈|心拍|体脂肪率?|血糖値?|ヘモグロビン|HbA1c|"
    "コレステロール|中性脂肪|尿酸値?|BMI|γ-?GTP|腹囲|身長|歩数|判定"
)
NUMBER = r"\d+(?:[.,/]\d+)*"
# (pattern, group): the group's span is masked, or the whole match when the group is None.
PATTERNS: list[tuple[re.Pattern[str], str | None]] = [
    (re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+"), None),  # e-mail
    (re.compile(r"〒?\s?\d{3}-\d{4}"), None),  # postal code
    (re.compile(rf"(?:{HEALTH_TERMS})\s*(?:は|が|も|を|:|：|=)?\s*(?P<v>{NUMBER})"), "v"),
    (re.compile(rf"{NUMBER}\s*(?:mmHg|kg|キロ|℃|度|%|％|bpm|mg/dl|mg|歳|才|cm|歩)", re.I), None),
    (re.compile(r"\d+(?:\s*(?:丁目|番地|番|号|-)\s*\d*)*(?:丁目|番地|番|号)"), None),  # addresses
    (re.compile(r"\d(?:[\s-]?\d){9,}"), None),  # phone, My Number-like, other long digit runs
    (re.compile(r"\d{2,}"), None),  # any other number of two digits or more
    # disease names (糖尿病, 高血圧症, 胃炎, 肺がん ...), not 病院 or 病棟
    (re.compile(r"[一-龥ァ-ヶー]{1,8}(?:病(?!院|棟|室|気)|症|炎|癌|がん|腫瘍)"), None),
]


class Pipeline(Protocol):
    """The part of a spaCy `Language` that masking uses."""

    def __call__(self, text: str) -> Any:
        """Analyse `text`."""


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def mask(text: str, nlp: Pipeline | None = None) -> str:
    """Mask everything sensitive in `text`.

    Args:
        text: A resident's or the assistant's message.
        nlp: GiNZA's pipeline for named entities (None: patterns only).

    Returns:
        The text with sensitive spans replaced.
    """
    text = unicodedata.normalize("NFKC", text)
    spans = [m.span(group or 0) for pattern, group in PATTERNS for m in pattern.finditer(text)]
    if nlp is not None:
        entities = nlp(text).ents
        spans += [(e.start_char, e.end_char) for e in entities if e.label_ in SENSITIVE_LABELS]
    out, last = [], 0
    for start, end in _merge(spans):
        out.append(text[last:start])
        numeric = re.fullmatch(r"[\d.,/\s-]+", text[start:end]) is not None
        out.append(NUMBER_MARK if numeric and "-" not in text[start:end] else MARK)
        last = end
    out.append(text[last:])
    return "".join(out)


SMALL = 5


def suppress(count: int) -> str:
    """A count as staff may see it: below 5 only as "<5"."""
    return f"<{SMALL}" if 0 < count < SMALL else str(count)


@dataclass(frozen=True)
class Count:
    """A published count: built only from cells, so no total can give a suppressed cell away.

    A cell is a count over disjoint units (one week, one channel, one category). A cell of 1 to 4
    is hidden; every other number the console shows is a sum of cells, kept as the sum of the
    cells shown exactly (`known`) plus how many hidden cells it includes (`hidden`). It is shown
    exactly only when it includes no hidden cell, otherwise as the range it must lie in
    (`known + hidden` to `known + 4 * hidden`). Everything shown is therefore a function of the
    cells shown exactly and of which cells are hidden: differencing two ranges, a total and its
    rows, or the funnel's columns yields nothing a hidden cell is not already known to be
    (1 to 4).
    """

    known: int = 0
    hidden: int = 0

    @classmethod
    def cell(cls, value: int) -> Count:
        """One cell: hidden when 1 to 4."""
        return cls(0, 1) if 0 < value < SMALL else cls(value, 0)

    def __add__(self, other: Count) -> Count:
        return Count(self.known + other.known, self.hidden + other.hidden)

    @property
    def exact(self) -> bool:
        """Whether the value is shown exactly."""
        return self.hidden == 0

    @property
    def low(self) -> int:
        """The least the value can be."""
        return self.known + self.hidden

    @property
    def high(self) -> int:
        """The most the value can be."""
        return self.known + (SMALL - 1) * self.hidden

    @property
    def drawn(self) -> float:
        """The height a chart draws (a hidden cell at the threshold, as before)."""
        return float(self.known) if self.exact else max(float(SMALL), (self.low + self.high) / 2)

    def sort_key(self) -> tuple[int, int]:
        """Largest first, by what is shown (never by the hidden values)."""
        return (-self.low, -self.high)

    def __str__(self) -> str:
        if self.exact:
            return str(self.known)
        if self.known == 0 and self.hidden == 1:
            return f"<{SMALL}"
        return f"{self.low}〜{self.high}"


def total(counts: Iterable[Count]) -> Count:
    """The sum of published counts."""
    return sum(counts, Count())


def shown(value: Count | int) -> str:
    """A count as text (an int is one cell)."""
    return str(value) if isinstance(value, Count) else suppress(value)


def share(part: Count, whole: Count) -> str | None:
    """`part` as a percentage of `whole` (a range when either is), None when `whole` may be 0."""
    if whole.low == 0:
        return None
    if part.exact and whole.exact:
        return f"{100 * part.known / whole.known:.1f}%"
    return f"{100 * part.low / whole.high:.1f}〜{min(100.0, 100 * part.high / whole.low):.1f}%"
