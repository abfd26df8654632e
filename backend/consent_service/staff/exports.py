"""CSV exports that a spreadsheet opens as text, never as formulas.

A cell beginning with = + - @ (or their full-width forms ＝＋－＠, which spreadsheets also
accept), a tab or a carriage return is read as a formula by Excel, LibreOffice and Google Sheets
(CSV injection: `=HYPERLINK(...)`, `=cmd|...`). Every cell of every export goes through
:func:`cell`, which prefixes such a cell with an apostrophe as OWASP recommends; the csv module
quotes the rest.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from typing import Any

FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n", "＝", "＋", "－", "＠")
# Blanks a spreadsheet may skip before reading a formula.
_LEADING_BLANKS = " \u3000\u00a0"


def cell(value: Any) -> str:
    """One CSV cell, neutralised when a spreadsheet would take it for a formula.

    Args:
        value: Anything printable.

    Returns:
        The text, prefixed with "'" when it (after leading blanks) starts like a formula.
    """
    text = str(value)
    if text.lstrip(_LEADING_BLANKS).startswith(FORMULA_START) or text.startswith(FORMULA_START):
        return "'" + text
    return text


def to_csv(rows: Iterable[Iterable[Any]]) -> bytes:
    """Rows as UTF-8 CSV with a BOM (so Excel reads Japanese), every cell neutralised.

    Args:
        rows: The header and the data rows.

    Returns:
        The file's bytes.
    """
    out = io.StringIO()
    writer = csv.writer(out)
    for row in rows:
        writer.writerow([cell(value) for value in row])
    return out.getvalue().encode("utf-8-sig")
