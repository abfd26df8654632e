"""No number any aggregate view or export shows gives a suppressed ("<5") cell away.

On generated data with known truth, an attacker asks every view and export for many overlapping
date ranges and each channel, and collects every number shown. Each number is a sum of the
truth's finest cells (one day, one channel, one category). The attacker is given more than the
console shows (which finest cells are zero) and then combines every exactly shown number
linearly (differences of overlapping ranges, totals minus their rows, funnel columns against each
other): no "<5" may be in their span. Every shown number must also be true.
"""

from __future__ import annotations

import csv
import datetime as dt
import html
import io
import re
from collections import Counter
from collections.abc import Iterator

import pyotp
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from consent_service.config import Settings
from consent_service.main import create_app
from consent_service.staff import auth
from tests.backend.conftest import Clock
from tests.staff_tracker import RANDOM_FIRST_DAY, build_random, feed

PASSWORD = "correct horse battery staple"
NOW = dt.datetime(2026, 11, 24, 3, 0, tzinfo=dt.UTC)  # Tuesday: 2-22 November are published
LAST_DAY = RANDOM_FIRST_DAY + dt.timedelta(days=20)
STARTS = [RANDOM_FIRST_DAY + dt.timedelta(days=d) for d in (0, 3, 7, 9, 14, 18)]
ENDS = [RANDOM_FIRST_DAY + dt.timedelta(days=d) for d in (2, 6, 10, 13, 17, 20)]
RANGES = sorted({(s, e) for s in STARTS for e in ENDS if s <= e} | {(d, d) for d in STARTS})
CHANNEL_FILTERS = ["all", "LINE", "web", "REST"]
ALL_CHANNELS = ["LINE", "web", "REST"]
FUNNEL_COLUMNS = ["explained", "asked", "consulted", "not_yet", "will_not", "recorded", "withdrawn"]
P = (1 << 61) - 1  # linear algebra modulo a large prime


# ---- the truth ---------------------------------------------------------------------------


def finest_cells(truth: list[dict]) -> Counter:
    """The truth's finest cells: conversations, messages and funnel outcomes per day."""
    cells: Counter = Counter()
    for conv in truth:
        cells[("conv", conv["day"], conv["channel"])] += 1
        for day, intent in conv["messages"]:
            cells[("msg", intent, day, conv["channel"])] += 1
        for level, outcome in conv["outcomes"].items():
            cells[("funnel", level, conv["channel"], conv["day"], outcome)] += 1
    return cells


def in_column(outcome: tuple, column: str) -> bool:
    explained, asked, answer, recorded, withdrawn = outcome
    if column in ("consulted", "not_yet", "will_not"):
        return answer == column
    return {"explained": explained, "asked": asked, "recorded": recorded,
            "withdrawn": withdrawn}[column]  # fmt: skip


def days(first: dt.date, last: dt.date) -> list[dt.date]:
    return [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]


# ---- what the console shows --------------------------------------------------------------


class Shown:
    """One number as shown, and the set of finest cells it is the sum of."""

    def __init__(self, text: str, cells: frozenset, where: str) -> None:
        self.text, self.cells, self.where = html.unescape(text).strip(), cells, where

    def bounds(self) -> tuple[int, int]:
        if self.text == "<5":
            return 1, 4
        if "〜" in self.text:
            low, high = self.text.split("〜")
            return int(low), int(high)
        return int(self.text), int(self.text)


@pytest.fixture
def console(
    settings: Settings, engine: Engine, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[TestClient, list[dict]]]:
    tracker, truth = build_random(tmp_path_factory.mktemp("random") / "rasa.db")
    configured = settings.model_copy(update={"staff_login_ip_attempts": 1000})
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
        yield client, truth


def period(label: str) -> list[dt.date]:
    """A CSV row's period: a day, or a week written `first/last`."""
    first, _, last = label.partition("/")
    return days(dt.date.fromisoformat(first), dt.date.fromisoformat(last or first))


def pick(
    keys: list,
    kind: str,
    span: set[dt.date],
    chans: list[str],
    intent: str | None = None,
    level: int | None = None,
    column: str = "",
) -> frozenset:
    """The finest cells of one kind in some days and channels (and intent, or funnel column)."""
    chosen = []
    for k in keys:
        if k[0] != kind:
            continue
        if kind == "conv":
            ok = k[1] in span and k[2] in chans
        elif kind == "msg":
            ok = intent in (None, k[1]) and k[2] in span and k[3] in chans
        else:
            ok = k[1] == level and k[2] in chans and k[3] in span and in_column(k[4], column)
        if ok:
            chosen.append(k)
    return frozenset(chosen)


def read_csv(client: TestClient, url: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(client.get(url).content.decode("utf-8-sig"))))


def collect(client: TestClient, cells: Counter) -> list[Shown]:
    """Every number of every view and export, for every range and channel filter."""
    keys = list(cells)
    shown: list[Shown] = []
    for start, end in RANGES:
        for channel in CHANNEL_FILTERS:
            chans = ALL_CHANNELS if channel == "all" else [channel]
            query = f"start={start}&end={end}&channel={channel}"
            page = client.get(f"/staff/?{query}").text
            found = re.search(r"集計期間：(\d{4}-\d\d-\d\d)〜(\d{4}-\d\d-\d\d)", page)
            first, last = (
                (dt.date.fromisoformat(found[1]), dt.date.fromisoformat(found[2]))
                if found
                else (start, end)  # a console without weeks counts the asked days
            )
            span = set(days(first, last))
            where = f"{query} ->"
            total = re.search(r"期間中の会話 (\S+) 件", page)
            assert total, page
            conv_total = pick(keys, "conv", span, chans)
            shown.append(Shown(total[1], conv_total, f"{where} overview total"))
            rows = read_csv(client, f"/staff/export/overview.csv?{query}")
            for row in rows[1:]:
                row_days = span if row[0] == "total" else set(period(row[0]))
                for column, value in zip(rows[0][1:], row[1:], strict=True):
                    name, _, what = column.partition(" ")
                    if what == "conversations":
                        chosen = pick(keys, "conv", row_days, [name])
                        shown.append(Shown(value, chosen, f"{where} overview.csv {row[0]} {name}"))
            for intent, value in read_csv(client, f"/staff/export/intents.csv?{query}")[1:]:
                chosen = pick(keys, "msg", span, chans, intent=intent)
                shown.append(Shown(value, chosen, f"{where} intents.csv {intent}"))
            fallbacks = client.get(f"/staff/fallbacks?{query}").text
            counts = re.search(r"期間中のメッセージ (\S+) 件のうち (\S+) 件", fallbacks)
            assert counts, fallbacks
            messages = pick(keys, "msg", span, chans)
            missed = pick(keys, "msg", span, chans, intent="nlu_fallback")
            shown.append(Shown(counts[1], messages, f"{where} fallbacks messages"))
            shown.append(Shown(counts[2], missed, f"{where} fallbacks missed"))
            weekly = r'<tr><th scope="row">(\d{4}-\d\d-\d\d)</th><td>([^<]+)</td></tr>'
            for monday, value in re.findall(weekly, fallbacks):
                week = set(period(f"{monday}/{dt.date.fromisoformat(monday) + dt.timedelta(6)}"))
                chosen = pick(keys, "msg", week, chans, intent="nlu_fallback")
                shown.append(Shown(value, chosen, f"{where} fallbacks week {monday}"))
            table = client.get(f"/staff/funnel?{query}").text.split("</table>")[0]
            for level, chan, rest in re.findall(
                r"<tr><td>レベル(\d)</td><td>(\w+)</td>(.*?)</tr>", table, re.S
            ):
                values = re.findall(r"<td>([^<]*)</td>", rest)
                assert len(values) == len(FUNNEL_COLUMNS), rest
                for column, value in zip(FUNNEL_COLUMNS, values, strict=True):
                    chosen = pick(keys, "funnel", span, [chan], level=int(level), column=column)
                    shown.append(Shown(value, chosen, f"{where} funnel {level} {chan} {column}"))
    return shown


# ---- the attacker ------------------------------------------------------------------------


class Span:
    """The linear span of sparse integer vectors (modulo P), growing one vector at a time."""

    def __init__(self) -> None:
        self.rows: dict[object, dict[object, int]] = {}  # pivot → row with 1 at its pivot

    def reduce(self, vector: dict[object, int]) -> dict[object, int]:
        vector = dict(vector)
        for pivot, row in self.rows.items():
            factor = vector.get(pivot, 0)
            if factor:
                for key, value in row.items():
                    new = (vector.get(key, 0) - factor * value) % P
                    if new:
                        vector[key] = new
                    else:
                        vector.pop(key, None)
        return vector

    def add(self, vector: dict[object, int]) -> None:
        rest = self.reduce(vector)
        if rest:
            pivot = next(iter(rest))
            inverse = pow(rest[pivot], P - 2, P)
            self.rows[pivot] = {k: v * inverse % P for k, v in rest.items()}


def test_no_suppressed_cell_can_be_recovered(console: tuple[TestClient, list[dict]]) -> None:
    client, truth = console
    cells = finest_cells(truth)
    shown = collect(client, cells)
    assert len(shown) > 1000

    # every number shown is true
    wrong = []
    for number in shown:
        value = sum(cells[k] for k in number.cells)
        low, high = number.bounds()
        if not low <= value <= high:
            wrong.append(f"{number.where}: shows {number.text}, is {value}")
    assert wrong == []

    # the attacker knows which finest cells are zero, and every exactly shown number
    def vector(number: Shown) -> dict[object, int]:
        return {k: 1 for k in number.cells if cells[k]}

    suppressed = [n for n in shown if n.text == "<5"]
    exact = [n for n in shown if n.bounds()[0] == n.bounds()[1]]
    assert len(suppressed) > 50 and len(exact) > 200  # the data has both kinds
    known = Span()
    for number in {n.cells: n for n in exact}.values():
        known.add(vector(number))
    recovered = [
        f"{n.where} (is {sum(cells[k] for k in n.cells)})"
        for n in {n.cells: n for n in suppressed}.values()
        if not known.reduce(vector(n))
    ]
    assert recovered == [], f"{len(recovered)} suppressed numbers recovered, e.g. {recovered[:5]}"


def test_ranges_are_whole_completed_weeks(console: tuple[TestClient, list[dict]]) -> None:
    client, _ = console
    page = client.get(
        f"/staff/?start={RANDOM_FIRST_DAY + dt.timedelta(days=3)}&end={LAST_DAY}"
    ).text
    assert "集計期間：2026-11-02〜2026-11-22" in page  # widened to Monday … Sunday
    # the week of NOW (23-29 November) is not over: the newest published week is shown instead
    assert "集計期間：2026-11-16〜2026-11-22" in client.get("/staff/?start=2026-11-23").text
