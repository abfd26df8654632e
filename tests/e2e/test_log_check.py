"""The check of the e2e run's logs (tests/e2e/log_check.py) finds what it must, and only that.

A unit test (no servers): the e2e session itself runs the check when it ends.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e import log_check

CANARY = "私の血圧は158/96で既往歴は糖尿病ですab12cd"
CLEAN = (
    "2026-12-01 INFO rasa.core.processor - Predicted next action 'utter_greet'\n"
    "sender 3f9a0c1e9b2d4e6f8a7c5b3d1e0f2a4c6e8b0d2f4a6c8e0b2d4f6a8c0e2b4d6f (pseudonym)\n"
)


@pytest.mark.parametrize(
    ("line", "findings"),
    [
        (
            f"DEBUG received message '{CANARY}'",
            ["the canary message", "the canary's blood pressure"],
        ),
        ("DEBUG slot value 158/96", ["the canary's blood pressure"]),
        ("DEBUG sender_id=U0123456789abcdef0123456789abcdef", ["a raw LINE user id"]),
    ],
)
def test_each_leak_is_found_in_any_log(tmp_path: Path, line: str, findings: list[str]) -> None:
    clean, leaky = tmp_path / "rasa.log", tmp_path / "actions.log"
    clean.write_text(CLEAN, encoding="utf-8")
    leaky.write_text(CLEAN + line + "\n", encoding="utf-8")
    assert log_check.leaks([clean, leaky], CANARY) == [f"actions.log: {f}" for f in findings]


def test_clean_logs_pass(tmp_path: Path) -> None:
    log = tmp_path / "consent.log"
    log.write_text(CLEAN, encoding="utf-8")
    assert log_check.leaks([log], CANARY) == []


def test_the_assistant_fixture_runs_the_check_after_the_session() -> None:
    source = (Path(__file__).parent / "conftest.py").read_text(encoding="utf-8")
    after_yield = source[source.index("yield running") :]
    assert "log_check.send_canaries(" in after_yield and "log_check.leaks(" in after_yield


def test_raw_personal_details_the_tests_sent_are_leaks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 19: details a test listed with `forbid` are found in any log, named by kind."""
    monkeypatch.setattr(log_check, "FORBIDDEN", [])
    log_check.forbid("phone", ["047-436-2981"])
    log = tmp_path / "rasa.log"
    log.write_text(CLEAN + "DEBUG message '電話は047-436-2981です'\n", encoding="utf-8")
    assert log_check.leaks([log], CANARY) == ["rasa.log: a raw phone"]
    log.write_text(CLEAN + "DEBUG message '電話は［電話番号］です'\n", encoding="utf-8")
    assert log_check.leaks([log], CANARY) == []
    log_check.forbid("name", ["高橋美咲"])  # in JSON written ASCII-only, as Rasa writes events
    log.write_text(CLEAN + json.dumps({"text": "高橋美咲です"}) + "\n", encoding="utf-8")
    assert log_check.leaks([log], CANARY) == ["rasa.log: a raw name"]


@pytest.mark.parametrize(
    "spelling",
    [
        "U0123456789abcdef0123456789abcdef".upper(),  # upper-case: RAW_LINE_ID misses it
        "0123456789abcdef0123456789abcdef",  # without the leading U
    ],
)
def test_the_subscribers_line_ids_are_leaks_in_any_spelling(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spelling: str
) -> None:
    """Issue 17: ids the notice sender opened, however a log would spell them."""
    monkeypatch.setattr(log_check, "FORBIDDEN", [])
    log = tmp_path / "sender.log"
    log.write_text(CLEAN + f"DEBUG multicast to {spelling}\n", encoding="utf-8")
    assert log_check.leaks([log], CANARY) == []
    log_check.forbid_line_users(["U0123456789abcdef0123456789abcdef"])
    assert log_check.leaks([log], CANARY) == ["sender.log: a raw LINE user id"]
