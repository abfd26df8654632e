from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from scripts import init_env, nlu_report


def write_results(folder: Path, accuracy: float) -> Path:
    score = {"precision": accuracy, "recall": accuracy, "f1-score": accuracy, "support": 10}
    report = {
        "greet": score,
        "ask_points": {**score, "f1-score": 0.5},
        "accuracy": accuracy,
        "macro avg": score,
        "weighted avg": score,
    }
    (folder / "intent_report.json").write_text(json.dumps(report), encoding="utf-8")
    errors = [
        {
            "text": "ポイントはもらえる？",
            "intent": "ask_points",
            "intent_prediction": {"name": "ask_benefits", "confidence": 0.6},
        }
    ]
    (folder / "intent_errors.json").write_text(json.dumps(errors), encoding="utf-8")
    return folder


@pytest.mark.parametrize(("accuracy", "code"), [(0.95, 0), (0.90, 0), (0.89, 1)])
def test_accuracy_gate(tmp_path: Path, accuracy: float, code: int) -> None:
    results = write_results(tmp_path, accuracy)
    assert nlu_report.main([str(results), "--min-accuracy", "0.90"]) == code


def test_report_names_the_weak_intent_and_its_confusion(tmp_path: Path) -> None:
    results = write_results(tmp_path, 0.95)
    out = tmp_path / "docs" / "report.md"
    assert nlu_report.main([str(results), "--write", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    assert "| intent accuracy | 0.950 |" in text
    assert "| ask_points | 0.95 | 0.95 | 0.50 | 10 | ask_benefits (1) |" in text
    assert "| ポイントはもらえる？ | ask_points | ask_benefits (0.60) |" in text


def test_init_env_writes_private_random_secrets_once(tmp_path: Path) -> None:
    first, second = tmp_path / "a.env", tmp_path / "b.env"
    init_env.main(first)
    init_env.main(second)
    text = first.read_text(encoding="utf-8")
    assert stat.S_IMODE(first.stat().st_mode) == 0o600
    token = next(line for line in text.splitlines() if line.startswith("CONSENT_API_TOKEN="))
    assert len(token) > len("CONSENT_API_TOKEN=") + 30
    assert token not in second.read_text(encoding="utf-8")
    first.write_text("KEEP=1\n", encoding="utf-8")
    init_env.main(first)
    assert first.read_text(encoding="utf-8") == "KEEP=1\n"
