"""The REST channel's body check: malformed bodies get 4xx before Rasa sees them."""

from __future__ import annotations

import json

import pytest

from bot.channels.rest import body_problem


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b'{"sender": "a", "message": "hello"}', None),
        (b'{"message": "no sender is Rasa\'s default"}', None),
        (b"", (400, "malformed_body")),
        (b"{not json", (400, "malformed_body")),
        (b"\xff\xfe", (400, "malformed_body")),
        (b"[1, 2]", (400, "malformed_body")),
        (b'"text"', (400, "malformed_body")),
        (b'{"sender": 1, "message": "x"}', (400, "invalid_sender")),
        (b'{"sender": "", "message": "x"}', (400, "invalid_sender")),
        (b'{"sender": "a"}', (400, "invalid_message")),
        (b'{"sender": "a", "message": ["x"]}', (400, "invalid_message")),
        (b'{"sender": "a", "message": "x", "metadata": 3}', (400, "malformed_body")),
        (json.dumps({"sender": "a", "message": "あ" * 5001}).encode(), (413, "message_too_long")),
    ],
)
def test_body_problem(raw: bytes, expected: tuple[int, str] | None) -> None:
    assert body_problem(raw) == expected
