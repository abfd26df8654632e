"""The cross-validation script's own bookkeeping (bench/nlu_cv.py); its figures are benchmarks."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("out", [[], ["--out", "results/bench/nlu_cv.json"]])
def test_a_one_fold_trial_must_name_its_own_output(out: list[str]) -> None:
    # It would overwrite results/bench/nlu_cv.json, which the docs are made from.
    run = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "nlu_cv.py"), "--only", "0", *out],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert run.returncode == 2 and "--only needs --out" in run.stderr


def test_entity_errors_name_the_text_of_each_span() -> None:
    sys.path.insert(0, str(ROOT / "bench"))  # nlu_cv imports its folder's report.py
    try:
        spec = importlib.util.spec_from_file_location("bench_nlu_cv", ROOT / "bench" / "nlu_cv.py")
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(ROOT / "bench"))
    text = "血圧と体重を預けたい"
    spans = {("data_item", 3, 5), ("data_item", 0, 2)}
    assert module._spans_as_text(text, spans) == [["data_item", "血圧"], ["data_item", "体重"]]
