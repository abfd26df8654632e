"""CSV exports never hand a spreadsheet a formula (CSV injection, OWASP)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Iterator

import pyotp
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from consent_service.config import Settings
from consent_service.main import create_app
from consent_service.staff import auth, exports
from tests.backend.conftest import Clock
from tests.staff_tracker import DAY1, FORMULAS, build_hostile, feed

PASSWORD = "correct horse battery staple"
NOW = dt.datetime(2026, 11, 24, 3, 0, tzinfo=dt.UTC)
# What Excel, LibreOffice and Google Sheets take for the start of a formula.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "＝", "＋", "－", "＠")


@pytest.fixture
def console(
    settings: Settings, engine: Engine, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestClient]:
    tracker = build_hostile(tmp_path_factory.mktemp("hostile") / "rasa.db")
    configured = settings
    app = create_app(configured, engine=engine, clock=Clock(NOW))
    with TestClient(app, base_url="https://testserver") as client:
        feed(engine, tracker)  # through the consumer of Rasa's event broker
        with app.state.sessionmaker() as session, session.begin():
            secret = auth.create_user(session, "kanri", PASSWORD, "admin", NOW, configured)
        form = client.get("/staff/login").text
        csrf = re.search(r'name="csrf" value="([^"]+)"', form).group(1)
        client.post(
            "/staff/login",
            data={"username": "kanri", "password": PASSWORD,
                  "code": pyotp.TOTP(secret).at(NOW), "csrf": csrf},
        )  # fmt: skip
        yield client


def cells(client: TestClient, name: str) -> list[str]:
    response = client.get(f"/staff/export/{name}.csv?start={DAY1}&end={DAY1}")
    assert response.status_code == 200
    return [c for row in csv.reader(io.StringIO(response.content.decode("utf-8-sig"))) for c in row]


@pytest.mark.parametrize("name", ["overview", "intents", "fallbacks"])
def test_no_exported_cell_starts_like_a_formula(console: TestClient, name: str) -> None:
    exported = cells(console, name)
    assert exported
    dangerous = [c for c in exported if c.lstrip(" \u3000").startswith(FORMULA_START)]
    assert dangerous == []


def test_the_hostile_texts_are_exported_as_text(console: TestClient) -> None:
    response = console.get(f"/staff/export/fallbacks.csv?start={DAY1}&end={DAY1}")
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    examples = [row[1] for row in rows[1:]]
    assert len(examples) >= 3  # grouped by similarity after masking, still several groups
    assert all(example.startswith("'") for example in examples), examples
    # An intent that is not an intent name (a formula sent as "/=cmd|…") is masked at the
    # consumer's intake (analytics/intake.py) and so exported as the mark, never as the formula.
    intents = cells(console, "intents")
    assert "［伏せ字］" in intents
    assert not [c for c in intents if "cmd|" in c]


@pytest.mark.parametrize("text", [*FORMULAS, "-5", "@", "＝"])
def test_cell_prefixes_what_starts_like_a_formula(text: str) -> None:
    assert exports.cell(text) == "'" + text


@pytest.mark.parametrize("text", ["情報銀行って何?", "<5", "11〜14", "12", "a=b", "ask_info_bank"])
def test_cell_leaves_ordinary_text_alone(text: str) -> None:
    assert exports.cell(text) == text
