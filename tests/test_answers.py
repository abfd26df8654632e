"""docs/answers.md against domain.yml, the catalogue and the seed (issue 13).

Every response and every catalogue entry shown to residents has a row; every passage quoted as
the seed's is in the seed word for word; every file named as the code behind a system rule
exists; and a few statements the answers make about this service are checked here.
"""

from __future__ import annotations

import re
from typing import Any, Dict, List, Tuple

import pytest
import yaml

from tests.conftest import PROJECT_ROOT

ANSWERS = PROJECT_ROOT / "docs" / "answers.md"
SEED = PROJECT_ROOT / "docs" / "seed" / "000_7f4f1a2e859553e1.txt"
CATALOG = PROJECT_ROOT / "backend" / "consent_service" / "catalog" / "catalog.yml"
HEADERS = ("response", "catalogue entry")
BASES = ("seed:", "system rule:", "demonstration", "the seed says nothing", "the seed does not")


def rows() -> List[Tuple[str, str]]:
    """(first column, second column) of every table row of docs/answers.md."""
    found = []
    for line in ANSWERS.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) >= 2 and not set(cells[0]) <= {"-"}:
            found.append((cells[0], "|".join(cells[1:])))
    return [(first, basis) for first, basis in found if first not in HEADERS]


def named(first_column: str) -> List[str]:
    return re.findall(r"`([^`]+)`", first_column)


@pytest.fixture(scope="module")
def domain() -> Dict[str, Any]:
    return dict(yaml.safe_load((PROJECT_ROOT / "domain.yml").read_text(encoding="utf-8")))


@pytest.fixture(scope="module")
def catalogue() -> Dict[str, Any]:
    return dict(yaml.safe_load(CATALOG.read_text(encoding="utf-8")))


def test_every_response_has_a_row(domain) -> None:
    listed = {name for first, _ in rows() for name in named(first)}
    assert sorted(set(domain["responses"]) - listed) == []


def test_every_row_names_its_basis() -> None:
    table = rows()
    assert table
    without = [first for first, basis in table if not any(b in basis for b in BASES)]
    assert without == []


def test_every_quoted_passage_is_in_the_seed() -> None:
    seed = re.sub(r"\s", "", SEED.read_text(encoding="utf-8"))
    quotes = re.findall(r"“([^”]+)”", ANSWERS.read_text(encoding="utf-8"))
    assert len(quotes) > 50
    missing = [q for q in quotes if re.sub(r"\s", "", q) not in seed]
    assert missing == []


def test_every_cited_file_exists() -> None:
    cited = set(re.findall(r"`((?:actions|bot|backend|data|tests)/[\w/.-]+)`", ANSWERS.read_text()))
    assert cited
    assert sorted(p for p in cited if not (PROJECT_ROOT / p).exists()) == []


def test_every_catalogue_entry_shown_to_residents_has_a_row(catalogue) -> None:
    listed = {name for first, _ in rows() for name in named(first)}
    entries = (
        [o["offer_id"] for o in catalogue["offers"]]
        + [r["id"] for r in catalogue["recipients"]]
        + [p["id"] for p in catalogue["purposes"]]
        + [o["approval"]["approval_id"] for o in catalogue["offers"] if o.get("approval")]
        + ["controller"]
    )
    assert sorted(set(entries) - listed) == []


def test_no_offer_asks_for_location_data(catalogue) -> None:
    """utter_location_data and utter_item_level_location say no offer asks for it."""
    assert all("location" not in o["items"] for o in catalogue["offers"])


def test_no_response_asks_for_a_my_number(domain) -> None:
    """utter_mynumber says the chat never asks for one."""
    mentioning = sorted(
        name
        for name, variations in domain["responses"].items()
        if any("マイナンバー" in v["text"] for v in variations)
    )
    assert mentioning == ["utter_mynumber"]


@pytest.mark.parametrize(
    "claim",
    [
        "ただちに提供が止まります",  # nothing in the seed or the code said so
        "国の有識者会議",  # the survey's own committee
        "子育て中の方からは",  # a planned use, not residents' words
        "だけを選びます",  # the seed: 選択することが可能
        "船橋市の「情報銀行」",  # the city runs no bank; the seed is a survey
        "窓口にご相談ください。",  # as a notification sign-up, which does not exist
        "健康づくり担当部署",  # the seed leaves the department open
        "が必要です",  # level-2 proposals stated as rules in force
        "が条件です",
    ],
)
def test_the_findings_of_issue_13_stay_fixed(domain, claim: str) -> None:
    if claim == "窓口にご相談ください。":
        texts = [v["text"] for v in domain["responses"]["utter_notifications"]]
    else:
        texts = [v["text"] for variations in domain["responses"].values() for v in variations]
    assert [t for t in texts if claim in t] == []


def test_the_answers_page_is_linked_from_the_readme() -> None:
    assert "docs/answers.md" in (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
