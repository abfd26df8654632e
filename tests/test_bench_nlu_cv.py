"""The cross-validation script's own bookkeeping (bench/nlu_cv.py); its figures are benchmarks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_a_one_fold_trial_must_name_its_own_output() -> None:
    # Without --out it would overwrite results/bench/nlu_cv.json, which the docs are made from.
    run = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "nlu_cv.py"), "--only", "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2 and "--only needs --out" in run.stderr


def test_entity_errors_name_the_text_of_each_span() -> None:
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        from nlu_cv import _spans_as_text
    finally:
        sys.path.remove(str(ROOT / "bench"))
    text = "血圧と体重を預けたい"
    spans = {("data_item", 3, 5), ("data_item", 0, 2)}
    assert _spans_as_text(text, spans) == [["data_item", "血圧"], ["data_item", "体重"]]
