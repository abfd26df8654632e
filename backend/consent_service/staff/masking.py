"""Masking what staff must not see: the second line of defence behind the channels' own.

The channels mask personal details before Rasa stores anything (`bot/privacy`, docs/privacy.md);
what reaches the console has been masked once already. This masks it again, in case the first
line missed something: health values, names, places, phone numbers, My Number-like digit strings,
e-mail addresses, dates of birth. Two layers: Japanese patterns (always), and GiNZA's named
entities (people, places, diseases, drugs, ...) and Sudachi's 人名 tags on its tokens when a spaCy
pipeline is given. Masked spans become a fixed marker, so a transcript stays readable without
revealing the value. Recall per kind on the generated set of tests/privacy/cases.py is asserted
by tests/backend/test_staff_masking_cases.py (figures in docs/privacy.md).
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
    "最高血圧|最低血圧|上の血圧|下の血圧|血圧|体重|体温|熱|脈拍|脈|心拍|体脂肪率?|空腹時血糖値?|"
    "血糖値?|ヘモグロビンA1c|ヘモグロビン|HbA1c|A1c|コレステロール|LDL|HDL|中性脂肪|尿酸値?|BMI|"
    "γ-?GTP|GOT|GPT|AST|ALT|eGFR|腹囲|身長|歩数|判定"
)
NUMBER = r"\d+(?:[.,/]\d+)*"
ERA = r"(?:明治|大正|昭和|平成|令和|[MTSHR])"
# Bounded (a town name is short): unbounded, a long kanji run was tried from each of its
# characters to its end (quadratic: 5,000 kanji took seconds).
TOWN = r"[一-龥々ヶ](?:[一-龥々ヶ]|(?<=[一-龥々])[がケヶノ](?=[一-龥々])){0,9}"
# A block number: 1-2-3, 2-15, 1丁目2番3号, 12番地.
BLOCK = (
    r"(?<!\d)\d+\s*丁目(?:\s*\d+\s*(?:番地?|-))?(?:\s*\d+\s*号?)?"
    r"|(?<!\d)\d+\s*(?:番地|番(?!号))(?:\s*\d+\s*号?)?"
    r"|(?<![\d-])\d{1,4}(?:-\d{1,4}){1,2}(?![\d-])"
)
NAME_PART = r"(?:[ァ-ヴー]{1,12}?|[ぁ-ゖ]{1,12}?|[一-龥々]{1,4}?)"
NAME_RUN = rf"{NAME_PART}(?:[ 　]{NAME_PART})?"
SELF_INTRODUCTION = r"と申します|といいます|って言います"
DATE = r"\s*[年./-]\s*\d{1,2}\s*[月./-]\s*\d{1,2}\s*日?"
# (pattern, group): the group's span is masked, or the whole match when the group is None.
PATTERNS: list[tuple[re.Pattern[str], str | None]] = [
    (re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(\.[\w-]+)+"), None),  # e-mail
    (re.compile(r"〒?\s?\d{3}-\d{4}(?![\d-])"), None),  # postal code
    (re.compile(r"郵便番号\s*(?:は|:)?\s*(?P<v>\d{3}\s?\d{4})"), "v"),
    # dates of birth: 昭和30年5月1日, S30.5.1, 1955/5/1, 平成2年生まれ
    (
        re.compile(rf"{ERA}\s*(?:\d{{1,2}}|元)\s*[年./-]\s*\d{{1,2}}\s*[月./-]\s*\d{{1,2}}\s*日?"),
        None,
    ),
    (re.compile(r"(?:19|20)\d{2}\s*[年./-]\s*\d{1,2}\s*[月./-]\s*\d{1,2}\s*日?"), None),
    (re.compile(rf"{ERA}\s*(?:\d{{1,2}}|元)\s*年(?=\s*生まれ)"), None),
    (
        re.compile(rf"(?:{HEALTH_TERMS})[^\d。!?\n]{{0,8}}?(?P<v>{NUMBER}(?:\s*の\s*{NUMBER})?)"),
        "v",
    ),
    (
        re.compile(
            rf"(?<![\d.,/]){NUMBER}\s*(?:mmHg|kg|キロ|℃|度|%|％|bpm|mg/dl|mg|歳|才|cm|歩)", re.I
        ),
        None,
    ),
    # addresses: the town right before a block number goes with it (船橋市 stays)
    (re.compile(rf"(?:(?<![市県都府郡区])(?P<t>{TOWN}))?(?<!\s)\s*(?P<b>{BLOCK})"), "address"),
    (re.compile(rf"(?P<v>{TOWN})(?=\s*(?:に住|在住|に暮ら))"), "town"),
    (re.compile(r"\d(?:[\s.-]?\d){9,}"), None),  # phone, My Number-like, other long digit runs
    (re.compile(r"\d{2,}|(?<!\d)\d+\.\d+"), None),  # any other number of two digits or more
    # names where residents give them (GiNZA finds the rest)
    (
        re.compile(rf"(?:名前|氏名)[はが:、]?\s*(?P<v>{NAME_RUN})(?=\s*(?:です|と申|、|。|\s|$))"),
        "v",
    ),
    (
        re.compile(
            rf"(?:^|(?<=[、。\s]))(?P<v>{NAME_RUN})(?=\s*(?:と申します|といいます|って言います))"
        ),
        "v",
    ),
    (re.compile(rf"[母父妻夫娘]の(?P<v>{NAME_RUN})(?=の代わり)"), "v"),
    # names in Latin letters: after 名前は/私は, or two capitalised words before です
    (
        re.compile(
            r"(?:名前|氏名|私|わたし|僕)[はが:、]?\s*(?P<v>[A-Z][a-z]+(?:[ 　][A-Z][a-z]+){0,2})"
            r"|(?<![A-Za-z])(?P<w>[A-Z][a-z]+[ 　][A-Z][a-z]+)(?=\s*(?:です|と申|とい|って言|の))"
        ),
        "romaji",
    ),
    # disease names (糖尿病, 高血圧症, 胃炎, 肺がん ...), not 病院 or 病棟
    (re.compile(r"[一-龥ァ-ヶー]{1,8}(?:病(?!院|棟|室|気)|症|炎|癌|がん|腫瘍)"), None),
]
AREA_SUFFIX = ("市", "県", "都", "府", "区", "郡")
KANJI_DIGITS = {c: str(i) for i, c in enumerate("〇一二三四五六七八九")}
KANJI_NUMERAL_RUN = re.compile(r"[〇一二三四五六七八九十]+")
# A single kanji numeral is a number only before or after these (一丁目, 二番, 三号, 五月);
# runs of two or more (〇九〇, 三十) always are; 一郎, 一度, 三山 stay words.
NUMERAL_AFTER = re.compile(r"丁目|番地|年|月|日|号")
NUMERAL_BEFORE = re.compile(r"(?:丁目|番|目)$")
SURROGATE = re.compile("[\ud800-\udfff]")
# The channels' markers for what they removed at intake (bot/privacy), kept as they are.
INTAKE_MARKER = re.compile(r"\[(名前|住所|電話番号|メール|郵便番号|生年月日|番号|数値)\]")
# Sudachi's part of speech for names, as GiNZA gives it in `token.tag_`.
NAME_TAG = "名詞-固有名詞-人名"


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


def _kanji_numerals(text: str) -> str:
    """Kanji numerals read as digits where they are numbers (〇九〇の一二三四 → 090-1234)."""

    def digits(match: re.Match[str]) -> str:
        word = match.group()
        numeric = (
            len(word) >= 2
            or NUMERAL_AFTER.match(text, match.end()) is not None
            or NUMERAL_BEFORE.search(text, 0, match.start()) is not None
        )
        if not numeric or (word == "十" and not NUMERAL_AFTER.match(text, match.end())):
            return word
        out = []
        for index, char in enumerate(word):
            if char == "十":
                before, after = index > 0, index + 1 < len(word)
                out.append("" if before and after else "0" if before else "1" if after else "10")
            else:
                out.append(KANJI_DIGITS[char])
        return "".join(out)

    converted = KANJI_NUMERAL_RUN.sub(digits, text)
    return re.sub(r"(?<=\d)の(?=\d)", "-", converted) if converted != text else text


def _pattern_spans(text: str) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    for pattern, group in PATTERNS:
        for match in pattern.finditer(text):
            if group == "address":
                town = match.group("t") or ""
                # "船橋市湊町2丁目": the town goes, the city stays
                cut = max(town.rfind(suffix) for suffix in AREA_SUFFIX)
                start = match.start() + cut + 1 if town else match.start("b")
                if re.fullmatch(r"\d{4}-\d{4}", match.group("b")):
                    continue  # a linking code, not a block number
                spans.append((start, match.end()))
            elif group == "town":
                start, end = match.span("v")
                town = match.group("v")
                cut = max(town.rfind(suffix) for suffix in AREA_SUFFIX)
                if not town.endswith(AREA_SUFFIX) and town[cut + 1 :] not in ("船橋", "千葉"):
                    spans.append((start + cut + 1, end))
            elif group == "romaji":
                spans.append(match.span("v") if match.group("v") else match.span("w"))
            else:
                spans.append(match.span(group or 0))
    return spans


def _name_spans(doc: Any) -> list[tuple[int, int]]:
    """People from GiNZA: a Person entity with a given name right after it, and 人名 tokens."""
    spans: list[tuple[int, int]] = []
    tokens = list(doc)
    for index, token in enumerate(tokens):
        if not str(getattr(token, "tag_", "")).startswith(NAME_TAG):
            continue
        start, end = token.idx, token.idx + len(token.text)
        following = tokens[index + 1] if index + 1 < len(tokens) else None
        # "山田花子": the given name after a surname, even when it is not tagged 人名
        if (
            str(token.tag_).endswith("姓")
            and following is not None
            and following.pos_ in ("PROPN", "NOUN")
            and len(following.text) <= 3
        ):
            end = following.idx + len(following.text)
        spans.append((start, end))
    return spans


def mask(text: str, nlp: Pipeline | None = None) -> str:
    """Mask everything sensitive in `text`.

    Args:
        text: A resident's or the assistant's message.
        nlp: GiNZA's pipeline for named entities and 人名 tags (None: patterns only).

    Returns:
        The text with sensitive spans replaced.
    """
    text = INTAKE_MARKER.sub(r"［\1］", unicodedata.normalize("NFKC", text))
    text = SURROGATE.sub("\ufffd", text)  # a lone surrogate (from JSON) would stop GiNZA
    # Zero-width and format characters (山\u200b田) would split a match; kanji numerals are
    # read as digits (〇九〇, 一丁目) so the number patterns see them.
    text = "".join(c for c in text if unicodedata.category(c) not in ("Cf", "Mn"))
    text = _kanji_numerals(text)
    spans = _pattern_spans(text)
    if nlp is not None:
        doc = nlp(text)
        spans += [(e.start_char, e.end_char) for e in doc.ents if e.label_ in SENSITIVE_LABELS]
        spans += _name_spans(doc)
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
