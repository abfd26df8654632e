"""One vocabulary of refusals: errors.Reason, its statuses, and the table in docs/contract.md."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from consent_service import errors, rules
from consent_service.errors import NOT_IN_PATH, PATH_REASONS, STATUS, Reason, Refused, error_body

CONTRACT = Path(__file__).resolve().parents[2] / "docs" / "contract.md"
ROW = re.compile(r"^\| `([a-z0-9_]+)` \| ([0-9, ]+|other) \|")
BACKEND = Path(errors.__file__).resolve().parent


def _doc_table() -> dict[str, set[int]]:
    text = CONTRACT.read_text(encoding="utf-8")
    section = text.split("### Error reasons", 1)[1].split("\n#", 1)[0]
    table: dict[str, set[int]] = {}
    for line in section.splitlines():
        match = ROW.match(line)
        if match:
            cell = match.group(2)
            table[match.group(1)] = set() if cell == "other" else {int(s) for s in cell.split(", ")}
    return table


def test_the_contract_table_is_the_vocabulary_with_its_statuses() -> None:
    expected = {
        reason.value: ({STATUS[reason]} if reason in STATUS else set())
        | ({NOT_IN_PATH} if reason in PATH_REASONS else set())
        for reason in Reason
    }
    assert _doc_table() == expected


def test_every_rule_is_a_reason_of_the_vocabulary() -> None:
    assert {r.value for r in rules.Reason} <= {r.value for r in Reason}
    assert all(STATUS[Reason(r.value)] == 422 for r in rules.Reason)


def test_the_domain_code_raises_only_reasons_of_the_vocabulary() -> None:
    """No status codes chosen and no bare reason strings in the domain code or the routes."""
    sources = [BACKEND / name for name in ("consents.py", "links.py", "main.py")]
    sources += sorted((BACKEND / "api").glob("*.py"))
    for source in sources:
        text = source.read_text(encoding="utf-8")
        assert "ServiceError" not in text, source
        assert not re.search(r"Refused\(\s*\d", text), source
        assert not re.search(r"\"reason\":\s*\"", text), source  # bodies come from error_body


def test_a_refusal_takes_its_status_from_the_table() -> None:
    assert Refused(Reason.ALREADY_LINKED, "x").status == 409
    assert Refused(Reason.UNKNOWN_OFFER, "x").status == 422
    assert Refused(Reason.UNKNOWN_OFFER, "x", in_path=True).status == 404
    with pytest.raises(ValueError):
        Refused(Reason.ALREADY_LINKED, "x", in_path=True)
    with pytest.raises(ValueError):
        Refused("no_such_reason", "x")  # type: ignore[arg-type]


def test_the_one_error_body_shape() -> None:
    assert error_body(Reason.NOT_LINKED, "m") == {"reason": "not_linked", "message": "m"}
    assert error_body(Reason.ALREADY_CONSENTED, "m", "c1") == {
        "reason": "already_consented",
        "message": "m",
        "consent_id": "c1",
    }
