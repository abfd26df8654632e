"""docs/nlu-report.md has three writers: the held-out report, the cross-validation, and people.

`scripts/nlu_report.py --write` must replace only its own section, so that the cross-validation
section (`bench/nlu_cv.py`) and the hand-kept "Tried" table survive `make nlu-report`.
"""

from __future__ import annotations

import json
from pathlib import Path

from scripts import nlu_report


def _results(folder: Path) -> Path:
    score = {"precision": 0.9, "recall": 0.9, "f1-score": 0.9, "support": 10}
    report = {"greet": score, "accuracy": 0.9, "macro avg": score, "weighted avg": score}
    (folder / "intent_report.json").write_text(json.dumps(report), encoding="utf-8")
    return folder


def test_held_out_report_keeps_the_other_sections(tmp_path: Path) -> None:
    out = tmp_path / "nlu-report.md"
    out.write_text(
        "# NLU report\n\n## Tried\n\n| change | CV accuracy |\n|---|---|\n| epochs 80 | 0.9 |\n\n"
        "<!-- cv:start -->\nCV FIGURES\n<!-- cv:end -->\n\n"
        "<!-- heldout:start -->\nOLD HELD-OUT\n<!-- heldout:end -->\n",
        encoding="utf-8",
    )
    assert nlu_report.main([str(_results(tmp_path)), "--write", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    assert "| epochs 80 | 0.9 |" in text
    assert "CV FIGURES" in text
    assert "OLD HELD-OUT" not in text
    assert "| intent accuracy | 0.900 |" in text
    assert text.count("<!-- heldout:start -->") == 1


def test_held_out_report_starts_a_missing_file(tmp_path: Path) -> None:
    out = tmp_path / "docs" / "nlu-report.md"
    assert nlu_report.main([str(_results(tmp_path)), "--write", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    assert text.startswith("# NLU report")
    assert "<!-- heldout:start -->" in text and "<!-- heldout:end -->" in text
