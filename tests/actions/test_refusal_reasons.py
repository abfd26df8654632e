"""The action server's list of refusal reasons is the contract's table (docs/contract.md).

The consent service checks its own list against the same table (tests/backend/test_errors.py);
the two sides share no code, so the table is what keeps them in step.
"""

from __future__ import annotations

import re

from actions.consent_client import ConsentRefused, Refusal
from actions.linking import REDEEM_REFUSALS
from actions.withdrawal import CODE_REFUSALS
from tests.conftest import PROJECT_ROOT

CONTRACT = PROJECT_ROOT / "docs" / "contract.md"
ROW = re.compile(r"^\| `([a-z0-9_]+)` \| ([0-9, ]+|other) \|")


def _doc_reasons() -> list[str]:
    text = CONTRACT.read_text(encoding="utf-8")
    section = text.split("### Error reasons", 1)[1].split("\n#", 1)[0]
    return [m.group(1) for line in section.splitlines() if (m := ROW.match(line))]


def test_the_clients_reasons_are_the_contracts_table() -> None:
    assert [r.value for r in Refusal] == _doc_reasons()


def test_the_answers_keyed_by_reason_name_only_reasons_of_the_contract() -> None:
    assert set(REDEEM_REFUSALS) <= {r.value for r in Refusal}
    assert set(CODE_REFUSALS) <= {r.value for r in Refusal}


def test_a_refusal_knows_its_reason_or_says_it_is_not_in_the_contract() -> None:
    assert ConsentRefused(409, "already_linked").known is Refusal.ALREADY_LINKED
    assert ConsentRefused(500, "http_500").known is None
