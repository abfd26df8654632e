"""Masking personal details at intake: what Rasa sees, stores and logs is the masked text.

A resident's message passes `mask_personal` in the channels before the NLU parses it; the raw
text lives only in memory for that one message. Two layers find the spans to mask:

1. Patterns on a normalised copy of the text (NFKC, and dash-like characters between digits read
   as "-"), whose spans are mapped back to the original text: e-mail addresses, postal codes,
   phone numbers, dates of birth, My Number, insurance card numbers, numeric health values, and
   addresses (block numbers such as "1-2-3" or 1丁目2番3号 with the town name before them, and a
   town someone says they live in).
2. Sudachi's part-of-speech tags (the dictionary the NLU tokenizer loads, split mode C): words
   tagged 名詞,固有名詞,人名 are names; a given name right after a surname goes with it even
   when Sudachi does not tag it.

Each masked span becomes a fixed marker for its kind (`MARKERS`). What is deliberately not masked
(ages, the city's name, prefecture, the city's own facilities, the words the NLU needs) and the
measured recall and precision are in docs/privacy.md.
"""

from __future__ import annotations

import enum
import re
import threading
import unicodedata
from dataclasses import dataclass
from typing import Any, List, Tuple


class DetailKind(str, enum.Enum):
    """A kind of personal detail the assistant removes."""

    NAME = "name"
    ADDRESS = "address"
    PHONE = "phone"
    EMAIL = "email"
    POSTAL_CODE = "postal_code"
    BIRTH_DATE = "birth_date"
    MY_NUMBER = "my_number"
    INSURANCE_NUMBER = "insurance_number"
    HEALTH_VALUE = "health_value"


# The marker each kind's span becomes: shown to staff and stored, never the raw text.
MARKERS = {
    DetailKind.NAME: "［名前］",
    DetailKind.ADDRESS: "［住所］",
    DetailKind.PHONE: "［電話番号］",
    DetailKind.EMAIL: "［メール］",
    DetailKind.POSTAL_CODE: "［郵便番号］",
    DetailKind.BIRTH_DATE: "［生年月日］",
    DetailKind.MY_NUMBER: "［番号］",
    DetailKind.INSURANCE_NUMBER: "［番号］",
    DetailKind.HEALTH_VALUE: "［数値］",
}


@dataclass(frozen=True)
class Masked:
    """A message with its personal details replaced by markers.

    Attributes:
        text: The masked text: what Rasa sees and stores.
        kinds: The kinds of detail removed (empty: nothing was removed).
    """

    text: str
    kinds: frozenset[DetailKind]


_Span = Tuple[int, int, DetailKind]

# ---------------------------------------------------------------------------------------------
# Normalisation: a copy for matching, with a map back to the original text.

_DASHES = "‐‑‒–—―−ーｰ－﹣"
_DASH_BETWEEN_DIGITS = re.compile(rf"(?<=\d)\s*[{_DASHES}]\s*(?=\d)")


def _normalise(text: str) -> Tuple[str, List[int], List[int]]:
    """NFKC per character, with each normalised character's start and end in `text`."""
    chars: List[str] = []
    starts: List[int] = []
    ends: List[int] = []
    for position, char in enumerate(text):
        normal = unicodedata.normalize("NFKC", char) if not char.isascii() else char
        for piece in normal:
            chars.append(piece)
            starts.append(position)
            ends.append(position + 1)
    copy = "".join(chars)
    # Dash-like characters between digits (047ー123ー4567) read as "-"; one character for one.
    copy = _DASH_BETWEEN_DIGITS.sub(lambda m: re.sub(rf"[{_DASHES}]", "-", m.group()), copy)
    return copy, starts, ends


# ---------------------------------------------------------------------------------------------
# Pattern layer (on the normalised copy).

_NOT_ALNUM_BEFORE = r"(?<![0-9A-Za-z])"
_NOT_ALNUM_AFTER = r"(?![0-9A-Za-z])"
_NUM = r"\d+(?:\.\d+)?"
_SEP = r"[\s-]?"

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
_POSTAL = re.compile(
    rf"〒\s*\d{{3}}-?\d{{4}}(?!\d)|(?:郵便番号\s*(?:は|:)?\s*)(?P<v>\d{{3}}-?\d{{4}})(?![\d-])"
    rf"|(?<![\d-]){_NOT_ALNUM_BEFORE}\d{{3}}-\d{{4}}(?![\d-]){_NOT_ALNUM_AFTER}"
)
_MY_NUMBER = re.compile(
    rf"{_NOT_ALNUM_BEFORE}(?<!\d-)\d{{4}}{_SEP}\d{{4}}{_SEP}\d{{4}}(?!-\d){_NOT_ALNUM_AFTER}"
)
_PHONE = re.compile(
    rf"{_NOT_ALNUM_BEFORE}(?<!\d-)(?:\+81[\s-]?|\(0\d{{1,4}}\)\s?|0\d{{1,4}}[\s-]?\(?)"
    rf"\d{{1,4}}\)?[\s-]?\d{{3,4}}(?!-\d){_NOT_ALNUM_AFTER}"
)
_ERA = r"(?:明治|大正|昭和|平成|令和|[MTSHRmtshr])"
_BIRTH = re.compile(
    rf"(?:{_ERA}\s*(?:\d{{1,2}}|元)\s*(?:年|[./-])\s*\d{{1,2}}\s*(?:月|[./-])\s*\d{{1,2}}\s*日?"
    rf"|{_NOT_ALNUM_BEFORE}(?:19|20)\d{{2}}\s*(?:年|[./-])\s*\d{{1,2}}\s*(?:月|[./-])\s*\d{{1,2}}"
    rf"(?!\d)\s*日?"
    rf"|{_ERA}\s*(?:\d{{1,2}}|元)\s*年(?:\s*\d{{1,2}}\s*月)?(?=\s*生まれ)"
    rf"|(?:19|20)\d{{2}}\s*年(?:\s*\d{{1,2}}\s*月)?(?=\s*生まれ)"
    rf"|\d{{1,2}}\s*月\s*\d{{1,2}}\s*日(?=\s*(?:生まれ|が誕生日|誕生))"
    rf"|(?<=誕生日は)\s*\d{{1,2}}\s*月\s*\d{{1,2}}\s*日)"
)
_INSURANCE = re.compile(
    r"(?:被保険者証|保険証|記号|番号|保険者番号|被保険者番号|枝番)"
    r"(?:の(?:記号|番号))?\s*(?:は|が|:|、)?\s*"
    r"(?P<v>[0-9A-Za-z][0-9A-Za-z・\s-]{0,20}[0-9A-Za-z]|\d)"
)
_HEALTH_TERMS = (
    r"最高血圧|最低血圧|上の血圧|下の血圧|血圧|収縮期|拡張期|上|下|体重|身長|体温|熱|脈拍|脈|"
    r"心拍数?|体脂肪率?|空腹時血糖値?|血糖値?|ヘモグロビンA1c|HbA1c|A1c|コレステロール|"
    r"LDL|HDL|中性脂肪|尿酸値?|γ-?GTP|γGTP|GOT|GPT|AST|ALT|腹囲|BMI|クレアチニン|eGFR|"
    r"尿蛋白|尿たんぱく|数値|値"
)
_UNIT = r"mmHg|mg/dl|mg/dL|kg|キロ(?:グラム)?|cm|センチ|℃|度|%|パーセント|bpm|回|g/dl|U/L|IU/L"
_HEALTH = re.compile(
    rf"(?:{_HEALTH_TERMS})(?:[^\d。!?\n]{{0,8}}?)"
    rf"(?P<v>{_NUM}(?:\s*/\s*{_NUM})?(?:\s*(?:{_UNIT}))?)"
    rf"|(?P<u>{_NUM}(?:\s*/\s*{_NUM})?\s*(?:mmHg|mg/dl|mg/dL|kg|キロ(?:グラム)?|℃|cm|センチ))"
    rf"|(?P<b>(?<![\d/.]){_NOT_ALNUM_BEFORE}\d{{2,3}}\s*/\s*\d{{2,3}}(?![\d/.]))",
    re.IGNORECASE,
)
# Addresses: block numbers (1-2-3, 2-15, 1丁目2番3号, 12番地) with the town name before them.
_BLOCK = (
    r"\d+\s*丁目(?:\s*\d+\s*(?:番地?|-))?(?:\s*\d+\s*号?)?"
    r"|\d+\s*(?:番地|番(?!号))(?:\s*\d+\s*号?)?"
    r"|\d+(?:-\d+){1,2}(?:\s*号)?"
)
_ADDRESS = re.compile(rf"{_NOT_ALNUM_BEFORE}(?:{_BLOCK}){_NOT_ALNUM_AFTER}")
_TOWN_CHAR = r"[一-龥々ヶァ-ヴー]"
# A place's name right before where the text says someone lives there.
_LIVES = re.compile(
    rf"(?P<v>{_TOWN_CHAR}{{1,8}})(?=\s*(?:に住|に在住|在住|に住まい|の住所|に家|に暮ら))"
)
_ADDRESS_INTRO = re.compile(rf"住所は\s*(?P<v>{_TOWN_CHAR}{{1,12}}(?:[0-9-]+)?)")
# Names of wider areas kept: they say nothing about one resident.
_AREA_SUFFIX = ("市", "県", "都", "府", "区", "郡", "国")
_KEEP_PLACES = frozenset({"船橋", "千葉", "日本", "市内", "市外", "県内", "県外", "近所", "ここ"})


def _town_before(text: str, start: int) -> int:
    """Where the town name right before `start` begins (stops at a city, a prefecture...)."""
    position = start
    while position > 0 and re.match(_TOWN_CHAR, text[position - 1]):
        if text[position - 1] in _AREA_SUFFIX and position != start:
            break
        position -= 1
        if start - position >= 8:
            break
    return position


def _pattern_spans(text: str) -> List[_Span]:
    spans: List[_Span] = []

    def add(pattern: re.Pattern[str], kind: DetailKind, group: str | None = None) -> None:
        for match in pattern.finditer(text):
            groups = [g for g in (group, "u", "b") if g and g in pattern.groupindex]
            span = match.span()
            for name in groups:
                if match.group(name) is not None:
                    span = match.span(name)
                    break
            if span[1] > span[0]:
                spans.append((span[0], span[1], kind))

    add(_EMAIL, DetailKind.EMAIL)
    add(_POSTAL, DetailKind.POSTAL_CODE, "v")
    add(_MY_NUMBER, DetailKind.MY_NUMBER)
    for match in _PHONE.finditer(text):
        digits = re.sub(r"\D", "", match.group())
        if 10 <= len(digits) <= 12 and (digits.startswith("0") or digits.startswith("81")):
            spans.append((match.start(), match.end(), DetailKind.PHONE))
    add(_BIRTH, DetailKind.BIRTH_DATE)
    add(_INSURANCE, DetailKind.INSURANCE_NUMBER, "v")
    add(_HEALTH, DetailKind.HEALTH_VALUE, "v")
    for match in _ADDRESS.finditer(text):
        if re.fullmatch(r"\d{4}-\d{4}", match.group()):
            continue  # a linking code (data/nlu/linking.yml), not a block number
        start = _town_before(text, match.start())
        spans.append((start, match.end(), DetailKind.ADDRESS))
    for pattern in (_LIVES, _ADDRESS_INTRO):
        for match in pattern.finditer(text):
            start, end = match.span("v")
            town = text[start:end]
            if pattern is _LIVES:
                start = _town_before(text, end)
                town = text[start:end]
            if town.endswith(_AREA_SUFFIX) or town in _KEEP_PLACES or not town:
                continue
            spans.append((start, end, DetailKind.ADDRESS))
    return spans


# ---------------------------------------------------------------------------------------------
# Sudachi layer: names.

_local = threading.local()


def _sudachi() -> Any:
    """Sudachi's tokenizer (split mode C), opened once per thread on first use."""
    tokenizer = getattr(_local, "tokenizer", None)
    if tokenizer is None:
        from sudachipy import Dictionary, SplitMode

        tokenizer = Dictionary().create(mode=SplitMode.C)
        _local.tokenizer = tokenizer
    return tokenizer


_SUDACHI_MAX_CHARS = 4_000


def _name_spans(text: str) -> List[_Span]:
    spans: List[_Span] = []
    tokenizer = _sudachi()
    for offset in range(0, len(text), _SUDACHI_MAX_CHARS):
        piece = text[offset : offset + _SUDACHI_MAX_CHARS]
        morphemes = list(tokenizer.tokenize(piece))
        for index, morpheme in enumerate(morphemes):
            pos = morpheme.part_of_speech()
            if pos[1] == "固有名詞" and pos[2] == "人名":
                end = morpheme.end()
                if pos[3] == "姓" and index + 1 < len(morphemes):
                    following = morphemes[index + 1]
                    fpos = following.part_of_speech()
                    if fpos[0] == "名詞" and fpos[1] in ("固有名詞", "普通名詞"):
                        end = following.end()
                spans.append((offset + morpheme.begin(), offset + end, DetailKind.NAME))
    return spans


# ---------------------------------------------------------------------------------------------


def _resolve(spans: List[_Span]) -> List[_Span]:
    """Overlapping spans merged; the merged span takes the kind of its longest part."""
    merged: List[Tuple[int, int, DetailKind, int]] = []
    for start, end, kind in sorted(spans, key=lambda s: (s[0], -s[1])):
        if merged and start < merged[-1][1]:
            m_start, m_end, m_kind, m_len = merged[-1]
            if end - start > m_len:
                m_kind, m_len = kind, end - start
            merged[-1] = (m_start, max(m_end, end), m_kind, m_len)
        else:
            merged.append((start, end, kind, end - start))
    return [(start, end, kind) for start, end, kind, _ in merged]


def mask_personal(text: str) -> Masked:
    """Replace the personal details in a resident's message with a marker per kind.

    Args:
        text: The message as the resident typed it.

    Returns:
        The masked text and the kinds of detail removed.
    """
    if not text or not text.strip():
        return Masked(text, frozenset())
    copy, starts, ends = _normalise(text)
    spans = _resolve(_pattern_spans(copy) + _name_spans(copy))
    if not spans:
        return Masked(text, frozenset())
    out: List[str] = []
    last = 0
    kinds = set()
    for start, end, kind in spans:
        # Whitespace at the edges of a span stays.
        while start < end and copy[start].isspace():
            start += 1
        while end > start and copy[end - 1].isspace():
            end -= 1
        if start >= end:
            continue
        original_start, original_end = starts[start], ends[end - 1]
        if original_start < last:
            original_start = last
        out.append(text[last:original_start])
        out.append(MARKERS[kind])
        last = original_end
        kinds.add(kind)
    out.append(text[last:])
    return Masked("".join(out), frozenset(kinds))
