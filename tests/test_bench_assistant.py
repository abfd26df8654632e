"""The assistant benchmark's bookkeeping of kept models (bench/assistant.py), not its figures."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    sys.path.insert(0, str(ROOT / "bench"))  # assistant imports its folder's report.py
    try:
        spec = importlib.util.spec_from_file_location(
            "bench_assistant", ROOT / "bench" / "assistant.py"
        )
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # its dataclass looks its module up there
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(ROOT / "bench"))
    return module


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project with every kind of file a model is or is not trained from."""
    files = {
        "config.yml": "pipeline: []\n",
        "domain.yml": "version: '3.1'\n",
        "requirements/rasa.lock": "rasa==3.6.21\n",
        "data/nlu/a.yml": "nlu: []\n",
        "bot/nlu/component.py": "X = 1\n",
        "bot/privacy/masking.py": "Y = 1\n",
        "bot/channels/line.py": "Z = 1\n",
        "docs/a.md": "text\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text, encoding="utf-8")
    return tmp_path


@pytest.mark.parametrize(
    "changed",
    ["config.yml", "domain.yml", "requirements/rasa.lock", "data/nlu/a.yml",
     "bot/nlu/component.py", "bot/privacy/masking.py", "data/nlu/new.yml"],
)  # fmt: skip
def test_the_fingerprint_changes_with_every_input_of_a_training(
    bench: ModuleType, project: Path, changed: str
) -> None:
    before = bench.fingerprint(project / "config.yml", project)
    with (project / changed).open("a", encoding="utf-8") as stream:
        stream.write("# changed\n")
    assert bench.fingerprint(project / "config.yml", project) != before


@pytest.mark.parametrize("changed", ["bot/channels/line.py", "docs/a.md"])
def test_the_fingerprint_ignores_what_a_training_does_not_read(
    bench: ModuleType, project: Path, changed: str
) -> None:
    before = bench.fingerprint(project / "config.yml", project)
    (project / changed).write_text("changed\n", encoding="utf-8")
    assert bench.fingerprint(project / "config.yml", project) == before


def record(bench: ModuleType, project: Path) -> dict[str, Any]:
    """The record of a model trained from `project` as it is now, on this machine."""
    return {"fingerprint": bench.fingerprint(project / "config.yml", project),
            "machine": bench.machine_kind(), "seconds": 1500.0, "model_bytes": len(b"model"),
            "trained": "2026-12-03 10:00 UTC"}  # fmt: skip


def keep(kept: Path, label: str, content: Any) -> None:
    kept.mkdir(exist_ok=True)
    (kept / f"{label}.tar.gz").write_bytes(b"model")
    text = content if isinstance(content, str) else json.dumps(content)
    (kept / f"{label}.json").write_text(text, encoding="utf-8")


def test_a_kept_model_is_used_only_while_its_inputs_are_unchanged(
    bench: ModuleType, project: Path
) -> None:
    kept, config = project / "kept", project / "config.yml"
    keep(kept, "ours", record(bench, project))
    training = bench.kept_training("ours", config, kept, project)
    assert training == {**record(bench, project), "model": str(kept / "ours.tar.gz"), "kept": True}
    (project / "data" / "nlu" / "a.yml").write_text("nlu: [changed]\n", encoding="utf-8")
    assert bench.kept_training("ours", config, kept, project) is None


@pytest.mark.parametrize(
    "change",
    [{"machine": "another processor × 8"}, {"model_bytes": 6}, {"trained": None}],
    ids=["another machine", "another file", "incomplete"],
)
def test_a_model_from_elsewhere_or_with_a_broken_record_is_trained_again(
    bench: ModuleType, project: Path, change: dict[str, Any]
) -> None:
    changed = {**record(bench, project), **change}
    keep(project / "kept", "ours", {k: v for k, v in changed.items() if v is not None})
    assert bench.kept_training("ours", project / "config.yml", project / "kept", project) is None


def test_a_failed_training_leaves_no_record_to_reuse(
    bench: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kept = tmp_path / "kept"
    keep(kept, "ours", {"fingerprint": "of the model before"})

    def fails(*_: Any, **__: Any) -> None:
        raise subprocess.CalledProcessError(1, "rasa train")

    monkeypatch.setattr(bench.subprocess, "run", fails)
    (tmp_path / "work").mkdir()
    with pytest.raises(subprocess.CalledProcessError):
        bench.train("ours", ROOT / "config.yml", tmp_path / "work", kept)
    assert not (kept / "ours.json").exists()


@pytest.mark.parametrize("record", ["{not json", "[]", {"seconds": 1.0}])
def test_an_unreadable_or_foreign_record_means_training_again(
    bench: ModuleType, project: Path, record: Any
) -> None:
    keep(project / "kept", "stock", record)
    assert bench.kept_training("stock", project / "config.yml", project / "kept", project) is None


def test_no_model_no_record_means_training(bench: ModuleType, project: Path) -> None:
    assert bench.kept_training("ours", project / "config.yml", project / "kept", project) is None


def results(bench: ModuleType, kept: bool) -> dict[str, Any]:
    """Saved results of a run, with the figures render() reads."""
    turn = {"p50_ms": 50.0, "p95_ms": 60.0, "p99_ms": 70.0, "turns_per_second": 10.0,
            "generator_cpu_ms_per_turn": 1.0, "errors": 0}  # fmt: skip
    rss = {"rasa": 800 * 2**20, "actions": 50 * 2**20}
    stacks = {}
    for label in ("stock", "ours"):
        stack: dict[str, Any] = {
            "training": {"seconds": 1800.0, "model_bytes": 2**20, "kept": kept,
                         "trained": "2026-12-03 10:00 UTC"},
            "cold_start_s": 10.0,
            "rss_after_start": rss,
            "parse": turn,
            "held_out": {"intent_accuracy": 0.95, "intent_macro_f1": 0.95},
        }  # fmt: skip
        for residents in (*bench.LEVELS, bench.SATURATION):
            stack[f"faq_{residents}"] = stack[f"consent_{residents}"] = turn
        stacks[label] = stack
    soak = {"turns": 10, "errors": 0, "rss_after": rss, "samples": []}
    return {
        "plan": {"level_seconds": 10.0, "parse_rounds": 1, "soak_seconds": 600.0,
                 "soak_residents": 4, "soak_pause": 2.0},
        "machine": {"cpu": "cpu", "cores": 2, "memory_gib": 24, "os": "linux", "rasa": "3.6.21",
                    "date": "2026-12-03"},
        "stacks": stacks,
        "soak": {"stock": soak, "ours": soak},
        "measuring_minutes": 20.0,
        "total_minutes": 20.0 if kept else 80.0,
    }  # fmt: skip


def test_the_thirty_minutes_are_the_measuring_and_training_is_said_apart(
    bench: ModuleType,
) -> None:
    trained = bench.render(results(bench, kept=False), "make bench-assistant")
    assert "| `make bench-assistant` with its models kept | < 30 min | 20 min | yes |" in trained
    assert "(80 minutes, 20 of them measuring)" in trained
    assert "This run also trained stock and ours from an empty cache (60 minutes" in trained
    reused = bench.render(results(bench, kept=True), "make bench-assistant")
    assert "This run also trained" not in reused
    assert (
        "| training time (empty cache; kept models trained 2026-12-03 10:00 UTC) "
        "| 30.0 min (kept) | 30.0 min (kept) | 1.00× |"
    ) in reused


def test_results_saved_before_models_were_kept_still_render(bench: ModuleType) -> None:
    old = results(bench, kept=False)
    old.pop("measuring_minutes")
    for stack in old["stacks"].values():
        stack["training"].pop("kept")
    old["total_minutes"] = 85.0
    assert bench.measuring_minutes(old) == pytest.approx(25.0)  # 85 - 2 × 30
    text = bench.render(old, "make bench")
    assert "| `make bench-assistant` less its two trainings (derived" in text
    assert "| < 30 min | 25 min | yes |" in text
    assert "results/bench/models/" not in text  # the old script kept nothing
