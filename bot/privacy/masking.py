"""Masking personal details at intake: what Rasa sees, stores and logs is the masked text.

A resident's message passes `mask_personal` in the channels before the NLU parses it; the raw
text lives only in memory for that one message. Two layers find the spans to mask:

1. Patterns on a normalised copy of the text (NFKC, and dash-like characters between digits read
   as "-"), whose spans are mapped back to the original text: e-mail addresses, postal codes,
   phone numbers, dates of birth, My Number, insurance card numbers, numeric health values, and
   addresses (block numbers such as "1-2-3" or 1丁目2番3号 with the town name before them, and a
   town someone says they live in).
2. Names, from Sudachi (the dictionary the NLU tokenizer loads, split mode C, opened once per
   thread on first use): words tagged 名詞,固有名詞,人名 are names, with the given name right
   after a surname even when Sudachi does not tag it (山田花子); a kana word tagged 人名 only where
   a name is expected. Where residents give a name (名前は…, …と申します, …です, 母の…の代わり),
   a kana run is a name when Sudachi reads it, in either kana script, as a surname and/or a given
   name (さとう is a common word, サトウ a surname).

Each masked span becomes a fixed marker for its kind (`MARKERS`). What is deliberately not masked
(ages, the city's name, prefecture, the city's own facilities, the words the NLU needs) and the
measured recall and precision are in docs/privacy.md.
"""

from __future__ import annotations

import enum
import functools
import re
import threading
import unicodedata
from dataclasses import dataclass
from typing import Any, List, Tuple

from bot import receipt_code


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
_DASH = re.compile(rf"[{_DASHES}]")


@functools.lru_cache(maxsize=4096)
def _nfkc(char: str) -> str:
    if "\ud800" <= char <= "\udfff":
        return "\ufffd"  # a lone surrogate (possible in decoded JSON) would stop Sudachi
    return unicodedata.normalize("NFKC", char)


def _piece(char: str) -> str:
    if char.isascii():
        return char
    if unicodedata.category(char) in ("Cf", "Mn"):
        return ""  # zero-width and format characters (山\u200b田) do not split a match
    return _nfkc(char)


def _normalise(text: str) -> Tuple[str, List[int], List[int]]:
    """NFKC per character, with each normalised character's start and end in `text`.

    Format and combining characters (Unicode Cf, Mn: zero-width spaces, joiners) are left out
    of the copy; what is masked around them in `text` takes them with it.
    """
    pieces = [_piece(char) for char in text]
    if all(len(piece) == 1 for piece in pieces):  # the usual case: one for one
        copy = "".join(pieces)
        starts, ends = list(range(len(text))), list(range(1, len(text) + 1))
    else:
        chars: List[str] = []
        starts, ends = [], []
        for position, piece in enumerate(pieces):
            for char in piece:
                chars.append(char)
                starts.append(position)
                ends.append(position + 1)
        copy = "".join(chars)
    # Dash-like characters between digits (047ー123ー4567) read as "-"; one character for one.
    copy = _DASH_BETWEEN_DIGITS.sub(lambda m: _DASH.sub("-", m.group()), copy)
    return copy, starts, ends


_KANJI_DIGITS = {c: str(i) for i, c in enumerate("〇一二三四五六七八九")}
_KANJI_NUMERAL_RUN = re.compile(r"[〇一二三四五六七八九十]+")
# A single kanji numeral is a number only before these (一丁目, 二番, 三号, 五月, 六日); runs of
# two or more (〇九〇, 三十) always are. 一郎, 一度, 三山 stay words.
_NUMERAL_AFTER = re.compile(r"丁目|番地|年|月|日|号")
_NUMERAL_BEFORE = re.compile(r"(?:丁目|番|目)$")


def _arabic(copy: str, starts: List[int], ends: List[int]) -> Tuple[str, List[int], List[int]]:
    """The copy with kanji numerals read as digits (一二三 → 123, 三十 → 30), with its map.

    One character for one where possible: 十 is "0" after a digit and before none (三十),
    "1" before a digit and after none (十五), left out between two (三十五 → 35), "10" alone.
    An の between two numerals (〇九〇の一二三四) reads as "-".
    """
    if not _KANJI_NUMERAL_RUN.search(copy):
        return copy, starts, ends
    chars: List[str] = []
    new_starts: List[int] = []
    new_ends: List[int] = []
    position = 0
    for run in _KANJI_NUMERAL_RUN.finditer(copy):
        word = run.group()
        numeric = (
            len(word) >= 2
            or _NUMERAL_AFTER.match(copy, run.end()) is not None
            or _NUMERAL_BEFORE.search(copy, 0, run.start()) is not None
        )
        if not numeric or (word == "十" and not _NUMERAL_AFTER.match(copy, run.end())):
            continue
        for index in range(position, run.start()):
            char = copy[index]
            joined = (
                char == "の"
                and index == run.start() - 1
                and index > 0
                and copy[index - 1] in _KANJI_DIGITS
            )
            chars.append("-" if joined else char)
            new_starts.append(starts[index])
            new_ends.append(ends[index])
        for index in range(run.start(), run.end()):
            char = copy[index]
            if char == "十":
                before = index > run.start()
                after = index + 1 < run.end()
                digits = "" if before and after else "0" if before else "1" if after else "10"
            else:
                digits = _KANJI_DIGITS[char]
            for digit in digits:
                chars.append(digit)
                new_starts.append(starts[index])
                new_ends.append(ends[index])
        position = run.end()
    for index in range(position, len(copy)):
        chars.append(copy[index])
        new_starts.append(starts[index])
        new_ends.append(ends[index])
    return "".join(chars), new_starts, new_ends


# ---------------------------------------------------------------------------------------------
# Pattern layer (on the normalised copy).

# The letter-and-digit groups of a run (receipt_code.RUN) that `_code_spans` joins.
_CODE_GROUP = re.compile(r"[0-9A-Za-z]+")
_NOT_ALNUM_BEFORE = r"(?<![0-9A-Za-z])"
_NOT_ALNUM_AFTER = r"(?![0-9A-Za-z])"
_NUM = r"\d+(?:\.\d+)?"
_SEP = r"[\s-]?"

# Left anchors on every unbounded run: without them, a long run with no match is tried from each
# of its characters (quadratic: 5,000 digits took seconds).
_EMAIL = re.compile(r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
_POSTAL = re.compile(
    rf"〒\s*\d{{3}}-?\d{{4}}(?!\d)|(?:郵便番号\s*(?:は|:)?\s*)(?P<v>\d{{3}}[-\s]?\d{{4}})(?![\d-])"
    rf"|(?<![\d-]){_NOT_ALNUM_BEFORE}\d{{3}}-\d{{4}}(?![\d-]){_NOT_ALNUM_AFTER}"
)
_MY_NUMBER = re.compile(
    rf"{_NOT_ALNUM_BEFORE}(?<!\d-)\d{{4}}(?P<s>{_SEP})\d{{4}}(?P=s)\d{{4}}(?!-\d){_NOT_ALNUM_AFTER}"
)
# Japanese numbers: 0 + 9 or 10 digits (047-123-4567, 090-1234-5678, 047(123)4567), or the
# same after +81 without the 0; the digit count is checked in `_pattern_spans`.
_PHONE = re.compile(
    rf"{_NOT_ALNUM_BEFORE}(?<![\d.]-)(?<!\d\.)(?:\+81[\s.-]?\(?0?\d{{1,4}}\)?|\(?0\d{{1,4}}\)?)"
    rf"[\s.-]?\(?\d{{1,4}}\)?[\s.-]?\d{{3,4}}(?![.-]\d){_NOT_ALNUM_AFTER}"
)
_ERA = r"(?:明治|大正|昭和|平成|令和|[MTSHRmtshr])"
# A date that something starts or ends on, or happened on, is not a birthday.
_NOT_BIRTH = r"(?!日?\s*(?:から|まで|以降|以前|頃|ごろ|に(?:同意|受|申|登録|始|提供)))"
_BIRTH = re.compile(
    rf"(?:{_ERA}\s*(?:\d{{1,2}}|元)\s*(?:年|[./-])\s*\d{{1,2}}\s*(?:月|[./-])\s*\d{{1,2}}(?!\d)\s*日?"
    rf"{_NOT_BIRTH}"
    rf"|{_NOT_ALNUM_BEFORE}(?:19|20)\d{{2}}\s*(?:年|[./-])\s*\d{{1,2}}\s*(?:月|[./-])\s*\d{{1,2}}"
    rf"(?!\d)\s*日?{_NOT_BIRTH}"
    rf"|{_ERA}\s*(?:\d{{1,2}}|元)\s*年(?:\s*\d{{1,2}}\s*月)?(?=\s*生まれ)"
    rf"|(?:19|20)\d{{2}}\s*年(?:\s*\d{{1,2}}\s*月)?(?=\s*生まれ)"
    rf"|\d{{1,2}}\s*月\s*\d{{1,2}}\s*日(?=\s*(?:生まれ|が誕生日|誕生))"
    rf"|(?<=誕生日は)\s*\d{{1,2}}\s*月\s*\d{{1,2}}\s*日)"
)
# Health insurance cards: 記号 and 番号 (and 枝番), 保険者番号, 被保険者番号, "保険証の番号".
# Digits only: receipt and linking codes (受付番号, 連携番号: letters, or 4-4 digits after
# their own words) are the assistant's, not personal.
_CARD_DIGITS = r"\d+(?:[・-]\d+){0,3}"
_INSURANCE = re.compile(
    rf"(?:被保険者(?:証)?(?:の)?(?:記号|番号)|保険者番号|保険証(?:の)?(?:記号|番号)?|記号|枝番)"
    rf"\s*(?:は|が|:|、)?\s*(?:[一-龥々]{{1,4}}\s*)?(?P<v>{_CARD_DIGITS})(?![0-9A-Za-z])"
    rf"(?:\s*[、,・]?\s*(?:番号|枝番)\s*(?:は|が|:)?\s*(?P<w>{_CARD_DIGITS})(?![0-9A-Za-z]))?"
)
_HEALTH_TERMS = (
    r"最高血圧|最低血圧|上の血圧|下の血圧|血圧|収縮期|拡張期|体重|身長|体温|脈拍|"
    r"心拍数?|体脂肪率?|空腹時血糖値?|空腹時の血糖値?|血糖値?|ヘモグロビンA1c|HbA1c|A1c|"
    r"ヘモグロビンエーワンシー|エーワンシー|コレステロール|LDL|HDL|中性脂肪|尿酸値?|γ-?GTP|"
    r"GOT|GPT|AST|ALT|腹囲|BMI|クレアチニン|eGFR|尿蛋白|尿たんぱく|数値"
)
# Short words that name a value only right before it (上が150, 熱は38度), not a few words on.
_HEALTH_SHORT = r"上|下|熱|脈"
_UNIT = (
    r"mmHg|mg/dl|mg/dL|kg|キロ(?:グラム)?|cm|センチ|℃|度(?:\s*\d\s*分)?|%|パーセント|bpm|回|"
    r"g/dl|U/L|IU/L"
)
# A number that counts things is not a value: 薬を2種類, 3日, 5年前.
_NOT_COUNT = r"(?!\s*(?:種類|日|年|ヶ月|か月|カ月|週|人|錠|つ|個|時間|歳|番|位|件|社|本|枚))"
# Values that follow the first one: 6.5から7.2, 120とか130, 150、160.
_JOINED = (
    rf"(?:\s*(?:から|とか|、|,|→|->|や|~|〜)\s*{_NUM}(?![\d.]){_NOT_COUNT}(?:\s*(?:{_UNIT}))?)"
)
_HEALTH = re.compile(
    rf"(?:(?:{_HEALTH_TERMS})[^\dA-Za-z。!?\n]{{0,8}}?|(?:{_HEALTH_SHORT})(?:の値)?\s*(?:が|は|も|:)?\s*)"
    rf"(?P<v>{_NUM}(?![\d.]){_NOT_COUNT}(?:\s*(?:/|の|-)\s*{_NUM})?(?:\s*(?:{_UNIT}))?"
    rf"{_JOINED}{{0,4}})"
    rf"|(?P<u>(?<![\d.]){_NUM}(?:\s*/\s*{_NUM})?\s*(?:mmHg|mg/dl|mg/dL|kg|キロ(?:グラム)?|℃|cm|センチ))"
    rf"|(?P<b>(?<![\d/.]){_NOT_ALNUM_BEFORE}\d{{2,3}}\s*/\s*\d{{2,3}}(?![\d/.])"
    rf"(?!\s*(?:に|から|まで|頃|ごろ|日|以降|の予約)))",
    re.IGNORECASE,
)
# Values the health term follows in brackets: "去年は7.1、今年は6.8（HbA1c）".
_HEALTH_AFTER = re.compile(
    rf"(?<![\d.])(?:{_NUM}[^\d。!?\n(]{{1,6}}?){{0,3}}{_NUM}\s*\(\s*(?:{_HEALTH_TERMS})\s*\)",
    re.IGNORECASE,
)
_NUMBER = re.compile(_NUM)
# Counts right after a block-like number: 3-4人, 1-2日.
_COUNT_AFTER = re.compile(r"(?:人|名|日|年|ヶ月|か月|カ月|週|時間|歳|回|個|件|枚|錠|分|秒)")
_ISO_DATE = re.compile(r"(?:19|20)\d{2}-\d{1,2}-\d{1,2}")
# Addresses: block numbers (1-2-3, 2-15, 1丁目2番3号, 12番地) with the town name before them.
_BLOCK = (
    r"\d+\s*丁目(?:\s*\d+\s*(?:番地?|-))?(?:\s*\d+\s*号?)?"
    r"|\d+\s*(?:番地|番(?!号|目))(?:\s*\d+\s*号?)?"
    r"|\d+(?:-\d+){1,2}(?:\s*号)?"
)
# A building and room number right after the block number: "2-1-1 ハイツ101", "3-5 船橋荘 203号室".
_BUILDING_WORD = r"荘|館|棟|寮|マンション|ハイツ|コーポ|アパート|ハイム|レジデンス|メゾン|パレス"
_BUILDING = (
    r"(?:\s?(?:[ァ-ヴー]{2,12}|[一-龥々ァ-ヴーA-Za-z]{0,10}"
    rf"(?:{_BUILDING_WORD})|(?:{_BUILDING_WORD})[一-龥々ァ-ヴーA-Za-z]{{1,10}})"
    r"\s?\d{1,4}(?:\s*号室)?(?![\d.\-丁番])|\s?\d{1,4}\s*号室)?"
)
_ADDRESS = re.compile(rf"{_NOT_ALNUM_BEFORE}(?:{_BLOCK}){_BUILDING}{_NOT_ALNUM_AFTER}")
_TOWN_CHAR = r"[一-龥々ヶ]"  # Funabashi's town names are written in kanji
# A place's name right before where the text says someone lives there.
_LIVES = re.compile(
    rf"(?P<v>{_TOWN_CHAR}{{1,8}})(?=\s*(?:に住|に在住|在住|に住まい|の住所|に暮ら))"
)
_ADDRESS_INTRO = re.compile(rf"住所は\s*(?P<v>{_TOWN_CHAR}{{1,12}}(?:[0-9-]+)?)")
# Names of wider areas kept: they say nothing about one resident.
_AREA_SUFFIX = ("市", "県", "都", "府", "区", "郡", "国")
_KEEP_PLACES = frozenset(
    {"船橋", "千葉", "東京", "日本", "海外", "市内", "市外", "県内", "県外", "都内", "近所", "実家"}
)


def _town_before(text: str, start: int) -> int:
    """Where the town name right before `start` begins (stops at a city, a prefecture...)."""
    position = start
    while position > 0 and (
        re.match(_TOWN_CHAR, text[position - 1])
        or (text[position - 1] in "がケヶノ" and position > 1 and _KANJI.match(text[position - 2]))
    ):
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
            if group == "w" and match.group("w") is None:
                continue
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
        national = digits[2:].lstrip("0") if match.group().startswith("+") else digits[1:]
        if (digits.startswith(("0", "81"))) and len(national) in (9, 10):
            spans.append((match.start(), match.end(), DetailKind.PHONE))
    add(_BIRTH, DetailKind.BIRTH_DATE)
    add(_INSURANCE, DetailKind.INSURANCE_NUMBER, "v")
    add(_INSURANCE, DetailKind.INSURANCE_NUMBER, "w")
    add(_HEALTH, DetailKind.HEALTH_VALUE, "v")
    for match in _HEALTH_AFTER.finditer(text):
        bracket = text.rfind("(", match.start(), match.end())
        for number in _NUMBER.finditer(text, match.start(), bracket):
            spans.append((number.start(), number.end(), DetailKind.HEALTH_VALUE))
    numbers = list(spans)

    def taken(start: int, end: int) -> bool:
        return any(s < end and start < e for s, e, _ in numbers)

    for match in _ADDRESS.finditer(text):
        if taken(*match.span()) or re.fullmatch(r"\d{4}-\d{4}(?:-\d)?", match.group()):
            continue  # a phone or My Number; a linking code (4-4) or a receipt code (4-4-1)
        if _ISO_DATE.fullmatch(match.group()) or _COUNT_AFTER.match(text, match.end()):
            continue  # 2024-12-01, 3-4人: a date, a count
        start = _town_before(text, match.start())
        if start == match.start() and re.fullmatch(r"\d+-\d+", match.group()):
            continue  # "12-3" alone: two numbers, not an address without its town
        spans.append((start, match.end(), DetailKind.ADDRESS))
    for match in _LIVES.finditer(text):
        end = match.end("v")
        start = _town_before(text, end)
        town = text[start:end]
        whole = match.group("v")
        if len(town) < 2 or town.endswith(_AREA_SUFFIX) or _KEEP_PLACES & {town, whole}:
            continue  # 市内, 東京, 船橋市: wider than one resident's address
        spans.append((start, end, DetailKind.ADDRESS))
    for match in _ADDRESS_INTRO.finditer(text):
        start, end = match.span("v")
        # "住所は船橋市西船…": the city stays, the town goes.
        cut = max(text.rfind(suffix, start, end - 1) for suffix in _AREA_SUFFIX)
        start = max(start, cut + 1)
        town = text[start:end].rstrip("0123456789-")
        if town and not town.endswith(_AREA_SUFFIX) and town not in _KEEP_PLACES:
            spans.append((start, end, DetailKind.ADDRESS))
    return spans


# ---------------------------------------------------------------------------------------------
# Sudachi layer: names.

_local = threading.local()
_SUDACHI_MAX_CHARS = 4_000
_SUDACHI_OVERLAP = 32
_KANJI = re.compile(r"[一-龥々〆ヶ]")
_KATAKANA_RUN = r"[ァ-ヴー](?:[ァ-ヴー]|・(?=[ァ-ヴ])){1,15}?"  # ジョンソン・マイケル
_HIRAGANA_RUN = r"[ぁ-ゖー]{2,12}?"
_NAME_RUN = rf"(?:{_KATAKANA_RUN}|{_HIRAGANA_RUN}|[一-龥々〆ヶ]{{1,4}}?)"
_FULL_NAME = rf"{_NAME_RUN}(?:[ 　]{_NAME_RUN})?"
_NAME_FOLLOWERS = (
    r"です|でした|と申し|とい|と言|って言|っていい|の代わり|の家族|さん|様|。|、|,|!|\?|$|(?<=\s)"
)
# Where residents name themselves or a relative: a name right after or before these.
_NAME_BEFORE = re.compile(
    r"(?:名前は|氏名は|名前[:、]|氏名[:、]?|わたしは|私は|僕は|ぼくは|わたし、|私、|[母父妻夫娘]の|"
    rf"息子の|家族の|主人の)\s*(?P<v>{_FULL_NAME})(?=\s*(?:{_NAME_FOLLOWERS}))"
)
# A name in Latin letters where residents give one: "名前はTaro Yamadaです".
_ROMAJI_NAME = re.compile(
    r"(?:名前は|氏名は|名前[:、]|氏名[:、]?|わたしは|私は|僕は|ぼくは|わたし、|私、|[母父妻夫娘]の)"
    r"\s*(?P<v>[A-Z][a-z]+(?:[ 　][A-Z][a-z]+){0,2})"
    r"(?=\s|です|でした|と申し|とい|と言|って言|の代わり|さん|様|。|、|,|!|\?|$)"
)
# Without a cue before it, two capitalised words a self-introduction follows: "Taro Yamadaです".
_ROMAJI_FULL_NAME = re.compile(
    r"(?<![A-Za-z])(?P<v>[A-Z][a-z]+[ 　][A-Z][a-z]+)"
    r"(?=\s*(?:です|でした|と申し|とい|と言|って言|の代わり|の家族|さん|様))"
)
_NAME_AFTER = re.compile(
    rf"(?:^|(?<=[、。,.!?\s])|(?<=[ぁ-ゖ])(?=[一-龥々]))(?P<v>{_FULL_NAME})"
    r"(?=\s*(?:と申します|といいます|と言います|って言います|っていいます|です|の家族|の代わり|さん|様))"
)
# Self-introductions and a relative one asks for: whatever stands there is a name.
_STRONG_AFTER = ("と申し", "とい", "と言", "って言", "っていい")
_STRONG_BEFORE = re.compile(r"(?:名前|氏名)[はが:、]?\s*$")
_STRONG_AROUND = (re.compile(r"[母父妻夫娘]の\s*$"), ("の代わり",))
# Where a hiragana given name after a surname ends (particles and copulas that follow it).
_HIRAGANA_END = re.compile(r"です|でした|と申|とい|と言|って|さん|様|の|が|は|も|に|を|から|と|や")
# Words Sudachi tags 人名 that are the domain's own (services, facilities), never a resident.
_NOT_NAMES = frozenset({"マイナ", "アンデルセン"})


def _sudachi() -> Any:
    """Sudachi's tokenizer (split mode C, as the NLU's), opened once per thread on first use."""
    tokenizer = getattr(_local, "tokenizer", None)
    if tokenizer is None:
        from sudachipy import Dictionary, SplitMode

        tokenizer = Dictionary().create(mode=SplitMode.C)
        _local.tokenizer = tokenizer
    return tokenizer


def _katakana(text: str) -> str:
    return "".join(chr(ord(c) + 0x60) if "ぁ" <= c <= "ゖ" else c for c in text)


def _is_person(pos: Any) -> bool:
    return bool(pos[1] == "固有名詞" and pos[2] == "人名")


_FUNCTION_WORDS = (
    "助詞",
    "助動詞",
    "動詞",
    "形容詞",
    "副詞",
    "代名詞",
    "連体詞",
    "接続詞",
    "感動詞",
)


def _looks_like_name(run: str, surname: bool = False) -> bool:
    """Whether a run of kana (or a kanji word) reads as a person's name to Sudachi.

    Kana is looked up in both scripts (さとう, a common word, is サトウ, a surname), kanji by its
    reading; the run is a name when it is one 人名 word or a surname followed by a 人名 word, or
    (a space between) two content words of one script, of which one is a name.
    """
    tokenizer = _sudachi()

    def person(piece: str) -> Any:
        for form in (piece, _katakana(piece), _hiragana(piece)):
            pos = _single_pos(form)
            if pos is not None and _is_person(pos):
                return pos
        return None

    def noun(piece: str) -> bool:
        morphemes = list(tokenizer.tokenize(piece))
        return len(morphemes) == 1 and morphemes[0].part_of_speech()[0] == "名詞"

    parts = [part for part in re.split(r"[ 　]", run) if part]
    if len(parts) == 2:
        if len({_script(part[0]) for part in parts}) != 1:
            return False
        if _looks_like_name(parts[0]) and len(parts[1]) <= 4:
            return True  # a surname, a space, a short given name (ふくだ れん)
        for part in parts:
            morphemes = list(tokenizer.tokenize(part))
            if len(morphemes) == 1 and morphemes[0].part_of_speech()[0] in _FUNCTION_WORDS:
                return False
        return any(_looks_like_name(part) for part in parts)
    text = run.strip()
    if not text or text in _NOT_NAMES:
        return False
    if _KANJI.search(text):
        morphemes = list(tokenizer.tokenize(text))
        if len(morphemes) != 1 or morphemes[0].part_of_speech()[0] != "名詞":
            return False
        if len(text) > 1 and _common_kanji_word(text):
            return False  # 不安 reads フアン, a surname, but is a word; 林 alone may be either
        text = morphemes[0].reading_form()
        return bool(re.fullmatch(r"[ァ-ヴー]+", text)) and _surname(person(text))
    morphemes = list(tokenizer.tokenize(text))
    if not any(m.part_of_speech()[0] == "名詞" for m in morphemes):
        return False  # ordinary words (いらない, せっかく), not a name
    whole = person(text)
    if whole is not None and (not surname or _surname(whole)):
        return True  # (where only a surname or a full name is expected: not げんき, a 名)
    if len(morphemes) == 1 and _dictionary_word(morphemes[0]):
        return False  # アレルギー is a word, not a name
    for cut in range(2, len(text) - 1):
        left, right = person(text[:cut]), person(text[cut:])
        short = 2 <= len(text) - cut <= 4
        if _surname(left) and left[3] == "姓" and cut >= 3 and short and noun(text[cut:]):
            return True  # a surname and a short given name missing from the dictionary (ヒナ)
        if right is None:
            continue
        if left is not None or (right[3] == "名" and len(text) - cut >= 3 and cut <= 5):
            # A name followed by a name, or any short word before a given name of 3 kana
            # (ごとう + ゆうこ: not every surname is in the dictionary in every script).
            return True
    return False


_NOT_A_WORD_ID = 0x0FFFFFFF  # what Sudachi gives words it put together, not from its lexicon


def _dictionary_word(morpheme: Any) -> bool:
    return bool(morpheme.dictionary_id() >= 0 and morpheme.word_id() < _NOT_A_WORD_ID)


_SELF = ("わたし", "あたし", "ぼく", "おれ", "わたくし")
_GREETING_POS = ("感動詞", "接続詞", "副詞")


def _greeting(word: str) -> bool:
    """Whether `word` is a greeting or filler (もしもし, あの), not part of a name."""
    morphemes = list(_sudachi().tokenize(word))
    return len(morphemes) == 1 and morphemes[0].part_of_speech()[0] in _GREETING_POS


def _could_be_name(run: str) -> bool:
    """Whether a run given where a name is expected can be one.

    Not a function word (名前はいいです) nor a common kanji word (母の介護の代わり).
    """
    parts = [part for part in re.split(r"[ 　]", run) if part]
    morphemes = list(_sudachi().tokenize(parts[0]))
    if len(morphemes) == 1 and morphemes[0].part_of_speech()[0] in _FUNCTION_WORDS:
        return False
    return not (len(parts) == 1 and _common_kanji_word(parts[0]))


def _common_kanji_word(text: str) -> bool:
    """Whether `text` is one kanji word of the lexicon, not a name (保険証, not 久美子).

    Only kanji: kana given names are often words as well (ひな, きょうこ).
    """
    morphemes = list(_sudachi().tokenize(text))
    return (
        len(morphemes) == 1
        and _KANJI.match(text) is not None
        and _dictionary_word(morphemes[0])
        and morphemes[0].part_of_speech()[1] == "普通名詞"
    )


def _has_noun(text: str) -> bool:
    return any(m.part_of_speech()[0] == "名詞" for m in _sudachi().tokenize(text))


@functools.lru_cache(maxsize=8192)
def _single_pos(text: str) -> Tuple[str, ...] | None:
    """The part of speech of `text` when Sudachi reads it as one word (else None), cached."""
    morphemes = list(_sudachi().tokenize(text))
    return tuple(morphemes[0].part_of_speech()) if len(morphemes) == 1 else None


def _surname(pos: Any) -> bool:
    return pos is not None and pos[3] in ("姓", "一般")


def _hiragana(text: str) -> str:
    return "".join(chr(ord(c) - 0x60) if "ァ" <= c <= "ヶ" else c for c in text)


def _given_name_end(text: str, end: int) -> int:
    """Where the given name right after a surname ending at `end` ends (`end`: none)."""
    position = end
    if position < len(text) and text[position] in " 　":
        position += 1
    if position >= len(text):
        return end
    char = text[position]
    if _KANJI.match(char):
        run = re.match(r"[一-龥々〆ヶ]{1,3}", text[position:])
        if run and _common_kanji_word(run.group()):
            return end  # 阿部 保険証: a word, not a given name
    elif "ァ" <= char <= "ヴ":
        run = re.match(r"[ァ-ヴー]{1,8}", text[position:])
    elif "ぁ" <= char <= "ゖ":
        run = re.match(r"[ぁ-ゖー]{1,8}", text[position:])
        if run and _HIRAGANA_END.match(run.group()):
            return end  # 小野寺です, 桜井さん: what follows the surname is not a given name
        if run:
            cut = _HIRAGANA_END.search(run.group(), 2) if len(run.group()) > 2 else None
            if cut:
                return position + cut.start()
    else:
        return end
    return position + run.end() if run else end


def _script(char: str) -> str:
    if _KANJI.match(char):
        return "kanji"
    if "ァ" <= char <= "ヴ" or char == "ー":
        return "katakana"
    if "ぁ" <= char <= "ゖ":
        return "hiragana"
    return ""


def _name_spans(text: str) -> List[_Span]:
    spans: List[_Span] = []
    tokenizer = _sudachi()
    # Chunks overlap, so a name a chunk's end cuts is read whole by the next chunk.
    step = _SUDACHI_MAX_CHARS - _SUDACHI_OVERLAP
    for offset in range(0, max(1, len(text) - _SUDACHI_OVERLAP), step):
        piece = text[offset : offset + _SUDACHI_MAX_CHARS]
        morphemes = list(tokenizer.tokenize(piece))
        for index in range(len(morphemes)):
            span = _token_name(text, offset, morphemes, index)
            if span is not None and (span[0], span[1], DetailKind.NAME) not in spans:
                spans.append((span[0], span[1], DetailKind.NAME))
    for pattern in (_ROMAJI_NAME, _ROMAJI_FULL_NAME):
        for match in pattern.finditer(text):
            spans.append((match.start("v"), match.end("v"), DetailKind.NAME))
    for pattern in (_NAME_BEFORE, _NAME_AFTER):
        for match in pattern.finditer(text):
            start, end = match.span("v")
            run = text[start:end]
            if not run.strip():
                continue
            before = text[max(0, start - 6) : start]
            joined = start > 0 and _script(text[start - 1]) == _script(run[0]) != "kanji"
            if pattern is _NAME_AFTER and joined:
                continue  # the end of a longer word
            strong = (
                (pattern is _NAME_AFTER and text.startswith(_STRONG_AFTER, end))
                or (pattern is _NAME_BEFORE and _STRONG_BEFORE.search(before) is not None)
                or (
                    _STRONG_AROUND[0].search(before) is not None
                    and text.startswith(_STRONG_AROUND[1], end)
                )
            )
            parts = list(re.finditer(r"[^ 　]+", run))
            after_kana = start > 0 and _script(text[start - 1]) == "hiragana"
            if pattern is _NAME_AFTER and after_kana and not strong:
                continue  # …のが不安です: only a self-introduction after a particle
            if pattern is _NAME_AFTER and run.startswith(_SELF):
                continue  # わたしは…です: _NAME_BEFORE reads what follows わたしは
            if len(parts) == 2 and _greeting(parts[0].group()) and not _KANJI.search(run):
                # "もしもし まえだきょうこ": after a greeting, the name alone.
                start, run = start + parts[1].start(), parts[1].group()
                parts = parts[1:]
            if (
                strong
                and len(parts) == 2
                and len(parts[1].group()) > 1
                and _common_kanji_word(parts[1].group())
            ):
                end = start + parts[0].end()  # "氏名：阿部 保険証…": the name, not the next word
            if run in _KEEP_PLACES and not _PERSON_AFTER.match(text, end):
                continue  # 千葉です
            if strong and not _could_be_name(run):
                strong = False  # 名前はいいです, 母の介護の代わり: words, not names
            if strong or _looks_like_name(run, surname=True):
                spans.append((start, end, DetailKind.NAME))
    return spans


def _token_name(text: str, offset: int, morphemes: List[Any], index: int) -> Tuple[int, int] | None:
    """The name span a 人名 token starts (with the given name after a surname), if any."""
    morpheme = morphemes[index]
    pos = morpheme.part_of_speech()
    surface = morpheme.surface()
    if not _is_person(pos) or surface in _NOT_NAMES:
        return None
    if surface in _KEEP_PLACES and not _PERSON_AFTER.match(text, offset + morpheme.end()):
        return None  # 千葉です: the prefecture, unless 千葉さん, 千葉と申します
    previous = morphemes[index - 1] if index else None
    following = morphemes[index + 1] if index + 1 < len(morphemes) else None
    after_space = following
    if following is not None and not following.surface().strip() and index + 2 < len(morphemes):
        after_space = morphemes[index + 2]
    previous_person = previous is not None and _is_person(previous.part_of_speech())
    next_person = after_space is not None and _is_person(after_space.part_of_speech())
    next_end = offset + after_space.end() if after_space is not None else 0
    begin, end = offset + morpheme.begin(), offset + morpheme.end()
    previous_script = _script(previous.surface()[-1]) if previous is not None else ""
    if _KANJI.search(surface):
        if previous_script == "kanji" and not previous_person and _script(surface[0]) == "kanji":
            return None  # inside a longer kanji word (保 + 健師)
        inside_word = following is not None and (
            _script(following.surface()[0]) == "kanji"
            or following.part_of_speech()[0] in ("接尾辞", "動詞")
        )
        if len(surface) == 1 and inside_word and not next_person:
            return None  # a one-kanji "name" inside a (mistyped) word: 徹 + 回, 修 + 性
        if pos[3] == "姓":
            if next_person:
                end = next_end
            elif len(surface) > 1:
                end = _given_name_end(text, end)
        return begin, end
    if previous_script and previous_script == _script(surface[0]) and not previous_person:
        return None  # the tail of a longer kana word (れ + べる)
    if next_person:
        return begin, next_end
    if previous_person:
        return begin, end
    if pos[3] == "姓":
        extended = _given_name_end(text, end)
        if extended > end and _name_context(text, begin, extended):
            return begin, extended
    # A kana word tagged as a name counts only where a name is expected, and alone only as a
    # surname (わたしはげんきです: 元気, not a given name).
    return (begin, end) if _surname(pos) and _name_context(text, begin, end) else None


_CONTEXT_BEFORE = re.compile(
    r"(?:名前は|氏名は|名前[:、]|氏名|わたしは|私は|僕は|ぼくは|[母父妻夫娘]の)\s*$"
)
_PERSON_AFTER = re.compile(r"\s*(?:さん|様|と申し|とい|と言|って言)")
_CONTEXT_AFTER = re.compile(r"\s*(?:と申し|とい|と言|って言|っていい|です|さん|様|の家族|の代わり)")


def _name_context(text: str, begin: int, end: int) -> bool:
    before, after = text[max(0, begin - 4) : begin], text[end : end + 5]
    return bool(
        re.search(
            r"(?:名前は|氏名は|名前[:、]|氏名|わたしは|私は|僕は|ぼくは|[母父妻夫娘]の)\s*$", before
        )
        or _CONTEXT_AFTER.match(after)
    )


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


def _code_spans(text: str) -> List[Tuple[int, int]]:
    """Receipt codes in the text, however typed: a code is the assistant's, never personal.

    Its letters and digits can look like a value with a unit ("41kg") or a block number
    ("2130-6"); withdrawing by code needs it whole.
    """
    found = []
    for run in receipt_code.RUN.finditer(text):
        groups = list(_CODE_GROUP.finditer(run.group()))
        for first in range(len(groups)):
            joined = ""
            for last in range(first, len(groups)):
                joined += groups[last].group()
                if len(joined) > receipt_code.CODE_LENGTH:
                    break
                if len(joined) == receipt_code.CODE_LENGTH and receipt_code.is_valid(joined):
                    offset = run.start()
                    found.append((offset + groups[first].start(), offset + groups[last].end()))
    return found


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
    # Patterns read kanji numerals as digits (〇九〇, 一丁目); names read the copy as it is.
    numeric, numeric_starts, numeric_ends = _arabic(copy, starts, ends)

    def original(spans: List[_Span], where: str, s: List[int], e: List[int]) -> List[_Span]:
        found = []
        for start, end, kind in spans:
            # Whitespace at the edges of a span stays.
            while start < end and where[start].isspace():
                start += 1
            while end > start and where[end - 1].isspace():
                end -= 1
            if start < end:
                found.append((s[start], e[end - 1], kind))
        return found

    codes = [(starts[a], ends[b - 1]) for a, b in _code_spans(copy)]
    spans = _resolve(
        [
            span
            for span in original(_pattern_spans(numeric), numeric, numeric_starts, numeric_ends)
            + original(_name_spans(copy), copy, starts, ends)
            if not any(start < span[1] and span[0] < end for start, end in codes)
        ]
    )
    if not spans:
        return Masked(text, frozenset())
    out: List[str] = []
    last = 0
    kinds = set()
    for start, end, kind in spans:
        start = max(start, last)
        if start >= end:
            continue
        out.append(text[last:start])
        out.append(MARKERS[kind])
        last = end
        kinds.add(kind)
    out.append(text[last:])
    return Masked("".join(out), frozenset(kinds))
