"""Write the staff console's list of intents a message can be labelled with (issue 15).

The console (consent service, `.venv-backend`) never imports Rasa or reads the domain: it reads
`backend/consent_service/staff/label_intents.txt`, one intent a line, which this script writes
from `domain.yml`'s intents — all of them except `nlu_fallback` and those only the channels send
(never a resident's words). `tests/test_staff_labels_yaml.py` fails when the file is stale.

    .venv/bin/python scripts/staff_label_intents.py          # rewrite the file
    .venv/bin/python scripts/staff_label_intents.py --check  # exit 1 when stale
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import List

import yaml

ROOT = Path(__file__).resolve().parents[1]
DOMAIN = ROOT / "domain.yml"
TARGET = ROOT / "backend" / "consent_service" / "staff" / "label_intents.txt"
if str(ROOT) not in sys.path:  # run as `python scripts/staff_label_intents.py`
    sys.path.insert(0, str(ROOT))

from bot.channels.system_intents import GREET, SYSTEM_INTENTS  # noqa: E402

# Not something a resident's message could be: the fallback itself, and the intents the channels
# send on their own (bot/channels/system_intents.py) — except `greet`, which residents also type.
NOT_LABELS = frozenset({"nlu_fallback", *SYSTEM_INTENTS}) - {GREET}
HEADER = (
    "# Intents a staff editor may label a not-understood message with (issue 15).\n"
    "# Written by `.venv/bin/python scripts/staff_label_intents.py` from domain.yml; do not edit.\n"
)


def label_intents(domain: Path = DOMAIN) -> List[str]:
    """The domain's intents a resident's message can be labelled with, in the domain's order.

    Args:
        domain: The domain file.

    Returns:
        Intent names.
    """
    data = yaml.safe_load(domain.read_text(encoding="utf-8"))
    names = [next(iter(i)) if isinstance(i, dict) else str(i) for i in data["intents"]]
    return [name for name in names if name not in NOT_LABELS]


def render(intents: List[str]) -> str:
    """The file's text."""
    return HEADER + "".join(f"{name}\n" for name in intents)


def main(argv: List[str] | None = None) -> int:
    """Write (or with --check, compare) the list file; the exit code is 1 when stale."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="only compare, do not write")
    args = parser.parse_args(argv)
    wanted = render(label_intents())
    if args.check:
        current = TARGET.read_text(encoding="utf-8") if TARGET.exists() else ""
        if current != wanted:
            print(f"{TARGET} is stale: run .venv/bin/python scripts/staff_label_intents.py")
            return 1
        return 0
    TARGET.write_text(wanted, encoding="utf-8")
    print(f"Wrote {TARGET}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
