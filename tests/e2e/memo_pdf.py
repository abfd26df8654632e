"""The text of a PDF printed by Chromium (issue 18's memo test), without a PDF library.

Chromium (Skia) writes each font as a Type0 font (2-byte glyph codes) or, for synthetic bold, a
Type3 font (1-byte codes), each with a `/ToUnicode` CMap, and draws text with hex strings
(`<...> Tj`, `[<...> n <...>] TJ`) after `/Fn size Tf`. This
reads exactly that much: the objects, their Flate streams, each font's CMap, and the text
operators of the pages in order. Enough to check what a printed page says; not a general parser.
"""

from __future__ import annotations

import re
import zlib
from typing import Dict, Tuple

OBJECT = re.compile(rb"(\d+) 0 obj\s*(.*?)endobj", re.S)
STREAM = re.compile(rb"stream\r?\n(.*?)\r?\nendstream", re.S)
FONT_REF = re.compile(rb"/(\w+) (\d+) 0 R")
TO_UNICODE = re.compile(rb"/ToUnicode (\d+) 0 R")
BFCHAR = re.compile(rb"beginbfchar(.*?)endbfchar", re.S)
BFRANGE = re.compile(rb"beginbfrange(.*?)endbfrange", re.S)
HEX_PAIR = re.compile(rb"<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>")
HEX_RANGE = re.compile(rb"<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>")
TOKEN = re.compile(rb"/(\w+)\s+[\d.]+\s+Tf|<([0-9A-Fa-f]*)>")


def _utf16(hex_text: bytes) -> str:
    return bytes.fromhex(hex_text.decode()).decode("utf-16-be", "replace")


def _cmap(data: bytes) -> Dict[int, str]:
    table: Dict[int, str] = {}
    for block in BFCHAR.findall(data):
        for code, text in HEX_PAIR.findall(block):
            table[int(code, 16)] = _utf16(text)
    for block in BFRANGE.findall(data):
        for low, high, start in HEX_RANGE.findall(block):
            first = int(start, 16)
            for offset, code in enumerate(range(int(low, 16), int(high, 16) + 1)):
                table[code] = chr(first + offset)
    return table


def pdf_text(pdf: bytes) -> str:
    """The text the PDF's pages draw, in drawing order, without spaces or line breaks.

    Args:
        pdf: A PDF as Chromium's `page.pdf()` writes it.

    Returns:
        The text.
    """
    bodies: Dict[int, bytes] = {}
    streams: Dict[int, bytes] = {}
    for number, body in OBJECT.findall(pdf):
        bodies[int(number)] = body
        found = STREAM.search(body)
        if found:
            raw = found.group(1)
            try:
                streams[int(number)] = zlib.decompress(raw)
            except zlib.error:
                streams[int(number)] = raw
    fonts: Dict[bytes, Tuple[Dict[int, str], int]] = {}
    for body in bodies.values():
        for block in re.findall(rb"/Font\s*<<(.*?)>>", body, re.S):
            for name, number in FONT_REF.findall(block):
                font = bodies.get(int(number), b"")
                unicode_ref = TO_UNICODE.search(font)
                if unicode_ref:
                    width = 1 if b"/Type3" in font else 2
                    fonts[name] = (_cmap(streams.get(int(unicode_ref.group(1)), b"")), width)
    out = []
    for data in streams.values():
        if b"BT" not in data or b"Tf" not in data:
            continue
        table: Dict[int, str] = {}
        width = 2
        for font, hex_text in TOKEN.findall(data):
            if font:
                table, width = fonts.get(font, ({}, 2))
            else:
                codes = bytes.fromhex(hex_text.decode())
                out += [table.get(int.from_bytes(codes[i : i + width], "big"), "") for i in
                        range(0, len(codes) - width + 1, width)]  # fmt: skip
    return "".join(out)
