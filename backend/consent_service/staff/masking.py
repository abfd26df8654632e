"""Masking what staff must not see.

Health values, names, places, phone numbers, My Number-like digit strings, e-mail addresses.
Two layers: Japanese patterns (always), and GiNZA's named entities (people, places, diseases,
drugs, ...) when a spaCy pipeline is given. Masked spans become 「＊」 runs of a fixed marker, so a
transcript stays readable without revealing the value.
"""

from __future__ import annotations

import re
import unicodedata
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
