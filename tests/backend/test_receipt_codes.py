"""Receipt codes (issue 14): the format, look-up and withdrawal by code, the wrong-code limit."""

from __future__ import annotations

import datetime as dt
import itertools
import secrets
import threading
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import Engine, func, select, text

from consent_service import code_attempts, migrations, receipt_codes
from consent_service.__main__ import main as cli
from consent_service.audit import verify
from consent_service.config import Settings, get_settings
from consent_service.db import make_sessionmaker
from consent_service.main import create_app
from consent_service.models import AuditEntry, Receipt, ReceiptCodeFailure, UTCDateTime
from tests.backend.conftest import (
    AUDIT_KEY,
    AUTH,
    TOKEN,
    Clock,
    consent_body,
    post_consent,
    subject,
)

ALPHABET = receipt_codes.ALPHABET
symbols8 = st.text(alphabet=ALPHABET, min_size=8, max_size=8)


def plain(code: str) -> str:
    return code.replace("-", "")


def grouped(symbols: str) -> str:
    return f"{symbols[:4]}-{symbols[4:8]}-{symbols[8:]}"


# ---- the format ---------------------------------------------------------------------------


def test_the_alphabet_is_31_unambiguous_symbols() -> None:
    assert len(ALPHABET) == len(set(ALPHABET)) == 31
    assert all(c.isdigit() or c.isupper() for c in ALPHABET)
    assert not set("ILOUZ") & set(ALPHABET)
    assert all(31 % d for d in range(2, 31))  # prime: every weight 1..8 is invertible
    assert receipt_codes.CODE_SPACE == 31**8 == 852_891_037_441


def test_a_new_code_has_the_format_and_passes_its_check() -> None:
    for _ in range(200):
        code = receipt_codes.new_code()
        assert len(code) == 11 and code[4] == code[9] == "-"
        assert set(plain(code)) <= set(ALPHABET)
        assert receipt_codes.normalise(code) == code


def single_substitutions(code: str) -> Iterator[str]:
    symbols = plain(code)
    for position, symbol in itertools.product(range(9), ALPHABET):
        if symbols[position] != symbol:
            yield grouped(symbols[:position] + symbol + symbols[position + 1 :])


def adjacent_swaps(code: str) -> Iterator[str]:
    symbols = plain(code)
    for position in range(8):
        a, b = symbols[position], symbols[position + 1]
        if a != b:
            yield grouped(symbols[:position] + b + a + symbols[position + 2 :])


EDGE_CODES = [
    grouped(s + receipt_codes.check_symbol(s))
    for s in ["00000000", "YYYYYYYY", "0Y0Y0Y0Y", "123456789ABCDEFG"[:8], "ABCDEFGH"]
]


@pytest.mark.parametrize("code", EDGE_CODES + [receipt_codes.new_code() for _ in range(40)])
def test_every_single_substitution_and_adjacent_swap_is_caught(code: str) -> None:
    substitutions = list(single_substitutions(code))
    swaps = list(adjacent_swaps(code))
    assert len(substitutions) == 9 * 30
    assert [s for s in substitutions if receipt_codes.is_valid(s)] == []
    assert [s for s in swaps if receipt_codes.is_valid(s)] == []


@hypothesis_settings(max_examples=2000, deadline=None)
@given(
    symbols=symbols8,
    position=st.integers(0, 8),
    offset=st.integers(1, 30),
    swap_at=st.integers(0, 7),
)
def test_typos_never_make_another_valid_code(
    symbols: str, position: int, offset: int, swap_at: int
) -> None:
    code = symbols + receipt_codes.check_symbol(symbols)
    assert receipt_codes.is_valid(code)
    changed = ALPHABET[(ALPHABET.index(code[position]) + offset) % 31]
    assert not receipt_codes.is_valid(code[:position] + changed + code[position + 1 :])
    a, b = code[swap_at], code[swap_at + 1]
    swapped = code[:swap_at] + b + a + code[swap_at + 2 :]
    assert receipt_codes.is_valid(swapped) == (a == b)


@pytest.mark.parametrize(
    "typed",
    [
        "K7Q2-M9XD-{c}",
        "k7q2-m9xd-{c}",
        "K7Q2M9XD{c}",
        " k7q2 m9xd {c} ",
        "Ｋ７Ｑ２－Ｍ９ＸＤ－{C}",
        "ｋ７ｑ２ーｍ９ｘｄー{C}",
        "K7Q2‐M9XD—{c}",
    ],
)
def test_codes_are_read_as_residents_type_them(typed: str) -> None:
    check = receipt_codes.check_symbol("K7Q2M9XD")
    full_width_check = chr(ord(check) + 0xFEE0)
    text_ = typed.replace("{c}", check.lower() if "k7q2" in typed else check)
    text_ = text_.replace("{C}", full_width_check)
    assert receipt_codes.normalise(text_) == f"K7Q2-M9XD-{check}"


@hypothesis_settings(max_examples=500, deadline=None)
@given(
    symbols=symbols8,
    separators=st.lists(
        st.sampled_from(["", "", "-", " ", "ー", "－", "‐", "　"]), min_size=10, max_size=10
    ),
    lower=st.lists(st.booleans(), min_size=9, max_size=9),
    wide=st.lists(st.booleans(), min_size=9, max_size=9),
)
def test_any_spelling_of_a_code_reads_as_the_code(
    symbols: str, separators: list[str], lower: list[bool], wide: list[bool]
) -> None:
    code = symbols + receipt_codes.check_symbol(symbols)
    typed = separators[0]
    for i, symbol in enumerate(code):
        symbol = symbol.lower() if lower[i] else symbol
        typed += (chr(ord(symbol) + 0xFEE0) if wide[i] else symbol) + separators[i + 1]
    assert receipt_codes.normalise(typed) == grouped(code)


@pytest.mark.parametrize(
    "typed",
    ["", "K7Q2-M9XD", "K7Q2-M9XD-33", "K7Q2-M9XO-3", "I7Q2-M9XD-3", "K7Q2_M9XD_3", "x" * 500],
)
def test_what_is_not_a_code_is_invalid(typed: str) -> None:
    assert not receipt_codes.is_valid(typed)


def test_look_alike_letters_are_not_mapped_to_digits() -> None:
    # "0" typed as "O" must not silently become another code: it is invalid.
    good = grouped("00000000" + receipt_codes.check_symbol("00000000"))
    assert receipt_codes.is_valid(good)
    assert not receipt_codes.is_valid(good.replace("0", "O"))


def test_codes_come_from_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []

    def recording(n: int) -> int:
        calls.append(n)
        return 5

    monkeypatch.setattr(secrets, "randbelow", recording)

    class NoRows:
        def execute(self, _query: object) -> NoRows:
            return self

        def first(self) -> None:
            return None

    code = receipt_codes.issue(NoRows())  # type: ignore[arg-type]
    assert calls == [31] * 8
    assert plain(code)[:8] == "55555555"


# ---- the API ------------------------------------------------------------------------------


def consent(client: TestClient, terms_version: str, who: str = "resident", **kwargs: object):
    response = post_consent(client, consent_body(terms_version, who=who, **kwargs))  # type: ignore[arg-type]
    assert response.status_code == 201, response.text
    return response.json()


def look_up(client: TestClient, code: str, who: str = "asker"):
    return client.get(f"/v1/receipt-codes/{code}", params={"requester": subject(who)}, headers=AUTH)


def withdraw(client: TestClient, code: str, who: str = "asker", key: str | None = None):
    headers = {**AUTH, "Idempotency-Key": key or uuid.uuid4().hex}
    body = {"requester": subject(who), "channel": "line"}
    return client.post(f"/v1/receipt-codes/{code}/withdraw", json=body, headers=headers)


def test_every_receipt_carries_a_unique_code(client: TestClient, terms_version: str) -> None:
    first = consent(client, terms_version, who="a")
    second = consent(client, terms_version, who="b")
    codes = [first["receipt"]["receipt_code"], second["receipt"]["receipt_code"]]
    assert all(receipt_codes.normalise(c) == c for c in codes)
    assert codes[0] != codes[1]
    listed = client.get(f"/v1/subjects/{subject('a')}/consents", headers=AUTH).json()
    assert [c["receipt_code"] for c in listed] == [codes[0]]
    assert listed[0]["withdrawal_receipt_code"] is None


def test_a_replayed_consent_answer_has_the_same_code(
    client: TestClient, terms_version: str
) -> None:
    body = consent_body(terms_version)
    first = post_consent(client, body, key="same").json()
    again = post_consent(client, body, key="same").json()
    assert again["receipt"]["receipt_code"] == first["receipt"]["receipt_code"]


def test_a_look_up_shows_only_the_offer_and_status(client: TestClient, terms_version: str) -> None:
    created = consent(client, terms_version)
    code = created["receipt"]["receipt_code"]
    typed = "ｰ".join([code[:4].lower(), code[5:9], code[10:]])
    response = look_up(client, typed)
    assert response.status_code == 200, response.text
    offers = {o["offer_id"]: o for o in client.get("/v1/offers", headers=AUTH).json()}
    assert response.json() == {
        "receipt_code": code,
        "kind": "consent",
        "offer_id": "city_health_vitals",
        "offer_title_ja": offers["city_health_vitals"]["title_ja"],
        "status": "active",
    }
    assert subject() not in response.text and created["consent_id"] not in response.text


def test_wrong_and_unknown_codes_have_their_own_answers(
    client: TestClient, terms_version: str
) -> None:
    code = consent(client, terms_version)["receipt"]["receipt_code"]
    typo = code[:3] + ("0" if code[3] != "0" else "1") + code[4:]
    response = look_up(client, typo)
    assert (response.status_code, response.json()["reason"]) == (422, "invalid_receipt_code")
    unknown = grouped("ABCDEFGH" + receipt_codes.check_symbol("ABCDEFGH"))
    assert unknown != code
    response = look_up(client, unknown)
    assert (response.status_code, response.json()["reason"]) == (404, "unknown_receipt_code")
    response = withdraw(client, unknown)
    assert (response.status_code, response.json()["reason"]) == (404, "unknown_receipt_code")
    response = withdraw(client, typo)
    assert (response.status_code, response.json()["reason"]) == (422, "invalid_receipt_code")


def test_withdrawal_by_code_keeps_the_consents_subject_and_records_the_requester(
    client: TestClient, terms_version: str, engine: Engine, settings: Settings
) -> None:
    created = consent(client, terms_version, who="owner")
    code = created["receipt"]["receipt_code"]
    response = withdraw(client, code.lower(), who="someone-on-line")
    assert response.status_code == 200, response.text
    answer = response.json()
    assert (answer["consent_id"], answer["status"]) == (created["consent_id"], "withdrawn")
    receipt = answer["receipt"]
    assert receipt["kind"] == "withdrawal"
    assert receipt["pii_principal_id"] == subject("owner")
    withdrawal_code = receipt["receipt_code"]
    assert receipt_codes.is_valid(withdrawal_code) and withdrawal_code != code
    listed = client.get(f"/v1/subjects/{subject('owner')}/consents", headers=AUTH).json()
    assert listed[0]["status"] == "withdrawn"
    assert listed[0]["withdrawal_receipt_code"] == withdrawal_code
    assert (
        client.get(f"/v1/subjects/{subject('someone-on-line')}/consents", headers=AUTH).json() == []
    )
    factory = make_sessionmaker(engine, settings.audit_key())
    with factory() as session:
        entry = session.execute(
            select(AuditEntry).where(AuditEntry.event_type == "consent.withdrawn")
        ).scalar_one()
        assert entry.payload["subject_id"] == subject("owner")
        assert entry.payload["by"] == "receipt_code"
        assert entry.payload["requester"] == subject("someone-on-line")
        assert entry.payload["channel"] == "line"
        assert verify(session).ok
    # Either code now shows the withdrawn consent; withdrawing again changes nothing.
    assert look_up(client, code).json()["status"] == "withdrawn"
    assert look_up(client, withdrawal_code).json()["kind"] == "withdrawal"
    again = withdraw(client, withdrawal_code)
    assert again.status_code == 200
    assert again.json()["receipt"]["receipt_code"] == withdrawal_code
    with factory() as session:
        count = select(func.count()).select_from(AuditEntry)
        withdrawn = count.where(AuditEntry.event_type == "consent.withdrawn")
        assert session.execute(withdrawn).scalar_one() == 1


def test_withdrawal_by_code_honours_the_idempotency_key(
    client: TestClient, terms_version: str
) -> None:
    code = consent(client, terms_version)["receipt"]["receipt_code"]
    first = withdraw(client, code, key="k1")
    assert withdraw(client, code, key="k1").json() == first.json()
    other = withdraw(client, code, who="another-asker", key="k1")
    assert (other.status_code, other.json()["reason"]) == (422, "idempotency_key_reused")
    missing = client.post(
        f"/v1/receipt-codes/{code}/withdraw",
        json={"requester": subject(), "channel": "web"},
        headers=AUTH,
    )
    assert missing.status_code == 422


def test_a_collision_draws_again(
    client: TestClient, terms_version: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    taken = consent(client, terms_version, who="a")["receipt"]["receipt_code"]
    wanted = "ABCDEFGH"
    draws = iter([ALPHABET.index(s) for s in plain(taken)[:8] + wanted])
    monkeypatch.setattr(secrets, "randbelow", lambda n: next(draws))
    second = consent(client, terms_version, who="b")["receipt"]["receipt_code"]
    assert plain(second)[:8] == wanted
    assert next(draws, None) is None  # the colliding code was drawn, then a new one


# ---- the wrong-code limit -----------------------------------------------------------------


@pytest.fixture
def limited(settings: Settings, engine: Engine, clock: Clock) -> Iterator[TestClient]:
    tight = settings.model_copy(
        update={
            "receipt_code_failures_per_requester": 3,
            "receipt_code_failures_per_client": 5,
            "receipt_code_window_seconds": 600,
        }
    )
    with TestClient(create_app(tight, engine=engine, clock=clock)) as test_client:
        yield test_client


UNKNOWN = [grouped(s + receipt_codes.check_symbol(s)) for s in ["AAAAAAAA", "BBBBBBBB"]]


def test_a_requester_gets_a_limited_number_of_wrong_codes(
    limited: TestClient, clock: Clock
) -> None:
    terms = limited.get("/v1/terms", headers=AUTH).json()["version"]
    code = consent(limited, terms)["receipt"]["receipt_code"]
    assert look_up(limited, UNKNOWN[0], who="guesser").status_code == 404
    assert look_up(limited, "NOT-A-CODE", who="guesser").status_code == 422
    # The right code does not count, nor does it reset the count.
    assert look_up(limited, code, who="guesser").status_code == 200
    assert look_up(limited, UNKNOWN[1], who="guesser").status_code == 404
    # Three wrong codes used up: even the right one is refused now, without being looked at.
    blocked = look_up(limited, code, who="guesser")
    assert (blocked.status_code, blocked.json()["reason"]) == (429, "too_many_wrong_codes")
    assert withdraw(limited, code, who="guesser").status_code == 429
    # Someone else is not blocked; after the window, the guesser is not either.
    assert look_up(limited, code, who="other").status_code == 200
    clock.advance(seconds=601)
    assert look_up(limited, code, who="guesser").status_code == 200


def test_the_client_as_a_whole_gets_a_limited_number_of_wrong_codes(
    limited: TestClient,
) -> None:
    for n in range(5):
        assert look_up(limited, UNKNOWN[0], who=f"guesser-{n}").status_code == 404
    blocked = look_up(limited, UNKNOWN[0], who="a-new-requester")
    assert (blocked.status_code, blocked.json()["reason"]) == (429, "too_many_wrong_codes")


def test_refused_attempts_do_not_count(limited: TestClient, engine: Engine) -> None:
    for _ in range(10):
        look_up(limited, UNKNOWN[0], who="guesser")
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT count(*) FROM receipt_code_failures")).scalar_one()
    assert rows == 3


def test_concurrent_guesses_cannot_exceed_the_limit(
    settings: Settings, engine: Engine, clock: Clock
) -> None:
    migrations.upgrade(engine)
    factory = make_sessionmaker(engine, settings.audit_key())
    limits = code_attempts.Limits(dt.timedelta(minutes=10), per_requester=4, per_client=100)
    passed: list[int] = []
    refused: list[int] = []
    barrier = threading.Barrier(12)

    def guess() -> None:
        barrier.wait()
        try:
            passed.append(
                code_attempts.begin(
                    factory, client="c", requester="r", limits=limits, now=clock.now
                )
            )
        except code_attempts.TooManyWrongCodes:
            refused.append(1)

    threads = [threading.Thread(target=guess) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(passed) + len(refused) == 12
    # Each attempt is recorded before it counts, so a burst may even refuse all of them; what
    # must hold is that no more than the limit pass.
    assert len(passed) <= 4
    # Refused attempts are not kept: guessing one at a time afterwards reaches exactly the
    # limit, never more.
    later = 0
    for _ in range(6):
        try:
            code_attempts.begin(factory, client="c", requester="r", limits=limits, now=clock.now)
            later += 1
        except code_attempts.TooManyWrongCodes:
            pass
    assert len(passed) + later == 4


def test_old_failures_are_deleted_at_start_and_by_the_retention_command(
    limited: TestClient,
    settings: Settings,
    engine: Engine,
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    look_up(limited, UNKNOWN[0], who="old")
    clock.advance(seconds=settings.receipt_code_window_seconds + 1)
    look_up(limited, UNKNOWN[0], who="new")

    def requesters() -> list[str]:
        with engine.connect() as connection:
            rows = connection.execute(select(ReceiptCodeFailure.requester)).all()
        return sorted(r for (r,) in rows)

    assert requesters() == sorted([subject("old"), subject("new")])
    with TestClient(create_app(settings, engine=engine, clock=clock)):
        pass
    assert requesters() == [subject("new")]
    monkeypatch.setenv("CONSENT_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("CONSENT_API_TOKEN", TOKEN)
    monkeypatch.setenv("CONSENT_AUDIT_KEY", AUDIT_KEY)
    get_settings.cache_clear()
    try:
        assert cli(["retention"]) == 0  # the test clock is hours before the real time
    finally:
        get_settings.cache_clear()
    assert requesters() == []
    assert "Deleted 1 failed receipt-code look-ups" in capsys.readouterr().out


# ---- the migration ------------------------------------------------------------------------


def test_the_migration_gives_existing_receipts_codes(engine: Engine) -> None:
    migrations.upgrade(engine, "0004")
    aware = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    at = aware if engine.dialect.name == "postgresql" else aware.replace(tzinfo=None)
    statements = [
        "INSERT INTO recipients VALUES ('r', '市', 'city')",
        "INSERT INTO purposes VALUES ('p', '目的', '')",
        "INSERT INTO offers (offer_id, recipient_id, purpose_id, title_ja, description_ja) "
        "VALUES ('o', 'r', 'p', 'テスト', '')",
        "INSERT INTO terms VALUES ('t', '約款', 'x', :at)",
    ]
    consents = sa.table(
        "consents",
        *(sa.column(name) for name in ("consent_id", "subject_id", "offer_id", "item_set")),
        *(sa.column(name) for name in ("status", "channel", "terms_version", "receipt_id")),
        sa.column("item_ids", sa.JSON),
        sa.column("created_at", UTCDateTime()),
    )
    receipts = sa.table(
        "receipts",
        *(sa.column(name) for name in ("receipt_id", "consent_id", "kind")),
        sa.column("body", sa.JSON),
        sa.column("created_at", UTCDateTime()),
    )
    with engine.begin() as connection:
        for statement in statements:
            connection.execute(text(statement), {"at": at})
        connection.execute(
            consents.insert().values(
                consent_id="c",
                subject_id="s",
                offer_id="o",
                item_set="",
                status="active",
                channel="web",
                terms_version="t",
                receipt_id="r1",
                item_ids=[],
                created_at=aware,
            )
        )
        for receipt_id in ("r1", "r2", "r3"):
            connection.execute(
                receipts.insert().values(
                    receipt_id=receipt_id,
                    consent_id="c",
                    kind="consent",
                    body={"receipt_id": receipt_id},
                    created_at=aware,
                )
            )
    migrations.upgrade(engine)
    with engine.connect() as connection:
        rows = connection.execute(select(Receipt.receipt_code, Receipt.body)).all()
    codes = [code for code, _ in rows]
    assert len(codes) == len(set(codes)) == 3
    assert all(receipt_codes.normalise(code) == code for code in codes)
    assert all(body["receipt_code"] == code for code, body in rows)
