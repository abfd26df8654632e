"""Furigana for the web chat (issue 16): readings of the kanji in an answer, as structured data.

The web chat page can show a reading above every kanji word (its 「ふりがな」 switch). The readings
come from the server, from the Sudachi tokenizer the channel already has open for the intake
masking (`bot.privacy.masking`: split mode C, the NLU's dictionary), never from the browser. An
answer's text becomes a list of segments `[surface, reading]` whose surfaces joined give the
text back exactly; `reading` is hiragana for a run of kanji and None for everything else, so the
page builds `<ruby>` elements with DOM text nodes and never takes HTML from the server.

- Each morpheme is read separately, and its okurigana stay outside the ruby: 「預ける」 gives
  `["預", "あず"], ["ける", None]` (the reading is matched against the morpheme's kana).
- Sudachi merges a word with the bracketed gloss after it (「実証（デモ）」 is one morpheme read
  ジッショウ), so the text is cut at brackets, punctuation and line breaks before tokenizing.
- Where Sudachi's reading is wrong for this domain, `WORD_READINGS` (whole morphemes) and
  `_contextual` (a morpheme after a number or after の) correct it; tests/bot/test_furigana.py
  checks the domain's terms and every override.
- It lives beside the page, not in `bot/nlu/`: it is no part of the NLU pipeline, and a change
  here must not make `make model` retrain (scripts/train-if-changed.sh hashes `bot/nlu/`).
- Nothing is opened at import; the tokenizer is created on first use (per thread, as the
  masking's). Answers repeat, so results are kept in a small LRU cache — except texts with a
  receipt code, a date or a time, which may be about one resident's consent.
"""

from __future__ import annotations

import functools
import logging
import re
from typing import Any, Dict, List, Tuple

logger = logging.getLogger(__name__)

Segment = Tuple[str, str | None]

# Kanji (CJK unified ideographs and extension A, compatibility ideographs) and the marks that are
# read like kanji: 々 (repetition), 〆, ヶ (as in 3ヶ月).
_KANJI_CHARS = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3005\u3006\u30f6"
KANJI = re.compile(f"[{_KANJI_CHARS}]")
_RUNS = re.compile(f"[{_KANJI_CHARS}]+|[^{_KANJI_CHARS}]+")
# Where the text is cut before tokenizing: Sudachi would otherwise take a bracketed gloss into
# the word before it (「約款（きまり）」 read ヤッカン).
_CUT = re.compile(r"([\s（）()「」『』【】［］\[\]〈〉《》、。，．・：:；;！!？?／/＝=＋+…]+)")
_NUMBER = re.compile(r"[0-9０-９.．]+|[〇一二三四五六七八九十百千万]+")
# Texts that are not cached: with a receipt code, a date or a time (answers about one resident's
# consent); the cache is for the fixed wording of domain.yml's responses.
_UNCACHED = re.compile(
    r"[0-9A-Z]{4}-[0-9A-Z]{4}|[0-9０-９]{4}[-/年]|[0-9０-９]{1,2}[:：][0-9０-９]{2}"
)
# Days read natively after these numbers (みっか, はつか …); after any other number 日 is にち.
_NATIVE_DAYS = frozenset({2, 3, 4, 5, 6, 7, 8, 9, 10, 14, 20, 24})

# Whole morphemes Sudachi reads differently from how this domain's texts mean them.
WORD_READINGS: Dict[str, str] = {
    "口腔": "こうくう",  # the medical reading (口腔内細菌), not Sudachi's こうこう
}


def hiragana(text: str) -> str:
    """Katakana (ァ–ヶ) turned into hiragana; everything else unchanged.

    Args:
        text: Any text, e.g. Sudachi's `reading_form()`.

    Returns:
        The text with its katakana as hiragana (ー and ・ stay).
    """
    return "".join(chr(ord(c) - 0x60) if "ァ" <= c <= "ヶ" and c != "ヶ" else c for c in text)


def _tokenizer() -> Any:
    """The intake masking's Sudachi tokenizer (split mode C), opened once per thread."""
    from bot.privacy.masking import _sudachi

    return _sudachi()


def _number_value(text: str) -> float | None:
    ascii_digits = text.translate(str.maketrans("０１２３４５６７８９．", "0123456789."))
    try:
        return float(ascii_digits)
    except ValueError:
        return None


def _contextual(surface: str, reading: str, previous: str) -> str:
    """Sudachi's reading corrected by the morpheme before it (hiragana in, hiragana out)."""
    if _NUMBER.fullmatch(previous or ""):
        value = _number_value(previous)
        native = value is not None and value.is_integer() and int(value) in _NATIVE_DAYS
        if surface == "日" and not native:
            return "にち"  # 90日 きゅうじゅうにち, 7.5日 (Sudachi: か)
        if surface == "日間" and not native:
            return "にちかん"
        if surface == "分":
            return "ふん"  # 10分 (a count of minutes), not ぶん
    if surface == "方" and previous == "の":
        return "かた"  # 高齢の方, ほかの方: a person, not a direction
    return reading


def split_reading(surface: str, reading: str) -> List[Segment]:
    """One morpheme as segments: its kanji runs with their readings, its kana without.

    The morpheme's kana are matched in its reading, so okurigana and kana between kanji stay
    outside the ruby (「取り消し」 → 取/と, り, 消/け, し). When the reading cannot be matched
    (digits, letters, an irregular reading) the whole morpheme carries the whole reading.

    Args:
        surface: The morpheme as written; it contains at least one kanji.
        reading: Its reading in hiragana.

    Returns:
        Segments whose surfaces joined are `surface`.
    """
    runs = _RUNS.findall(surface)
    if len(runs) == 1:
        return [(surface, reading)]
    pattern = "".join(
        "(.+?)" if KANJI.match(run) else f"({re.escape(hiragana(run))})" for run in runs
    )
    matched = re.fullmatch(pattern, reading)
    if matched is None:
        return [(surface, reading)]
    return [
        (run, matched.group(index + 1) if KANJI.match(run) else None)
        for index, run in enumerate(runs)
    ]


def _piece_segments(piece: str) -> List[Segment]:
    segments: List[Segment] = []
    previous = ""
    for morpheme in _tokenizer().tokenize(piece):
        surface = morpheme.surface()
        if KANJI.search(surface):
            reading = WORD_READINGS.get(surface) or hiragana(morpheme.reading_form())
            reading = _contextual(surface, reading, previous)
            if reading and not KANJI.search(reading) and reading != surface:
                segments.extend(split_reading(surface, reading))
            else:  # Sudachi has no reading for it (an unknown word): shown as it is
                segments.append((surface, None))
        else:
            segments.append((surface, None))
        previous = surface
    return segments


def _merged(segments: List[Segment]) -> List[Segment]:
    """Neighbouring segments without a reading joined into one (a shorter message)."""
    out: List[Segment] = []
    for surface, reading in segments:
        if not surface:
            continue
        if reading is None and out and out[-1][1] is None:
            out[-1] = (out[-1][0] + surface, None)
        else:
            out.append((surface, reading))
    return out


def _segments(text: str) -> Tuple[Segment, ...]:
    segments: List[Segment] = []
    for piece in _CUT.split(text):
        if not piece:
            continue
        if _CUT.fullmatch(piece) or not KANJI.search(piece):
            segments.append((piece, None))
        else:
            segments.extend(_piece_segments(piece))
    return tuple(_merged(segments))


@functools.lru_cache(maxsize=1024)
def _cached(text: str) -> Tuple[Segment, ...]:
    return _segments(text)


def furigana(text: str) -> List[Segment]:
    """The text as segments `(surface, reading)`: hiragana over kanji, None elsewhere.

    Args:
        text: An answer of the assistant.

    Returns:
        Segments whose surfaces joined are exactly `text`.
    """
    if _UNCACHED.search(text):  # not kept in memory after the answer
        return list(_segments(text))
    return list(_cached(text))


def with_furigana(message: Dict[str, Any]) -> Dict[str, Any]:
    """A `bot_uttered` message with the readings of its text added under "furigana".

    The page shows them only when the resident switches furigana on. If the readings cannot be
    made, the message goes out without them (the answer matters more than its readings).

    Args:
        message: The message the web chat emits, with a "text" (or none).

    Returns:
        The message, with "furigana": a list of `[surface, reading or null]`.
    """
    text = message.get("text")
    if not isinstance(text, str) or not KANJI.search(text):
        return message
    try:
        segments = furigana(text)
    except Exception as error:
        logger.error("Furigana not made: %s", type(error).__name__)
        return message
    return {**message, "furigana": [[surface, reading] for surface, reading in segments]}
