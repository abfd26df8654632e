from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path
from typing import Dict, Iterator

import pytest

from bot import startup
from scripts import harness, init_env, nlu_report
from tests.conftest import PROJECT_ROOT


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


@pytest.fixture
def umask_022() -> Iterator[None]:
    """A developer's usual umask; init_env sets 0077 on this process, given back afterwards."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def _values(path: Path) -> Dict[str, str]:
    pairs = (line.split("=", 1) for line in path.read_text(encoding="utf-8").splitlines())
    return {k: v for k, v in (p for p in pairs if len(p) == 2) if not k.startswith("#")}


def test_init_env_writes_private_random_secrets_once(tmp_path: Path, umask_022: None) -> None:
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
    assert first.read_text(encoding="utf-8").startswith("KEEP=1\n")


def test_init_env_generates_the_rasa_api_and_action_server_tokens(
    tmp_path: Path, umask_022: None
) -> None:
    path = tmp_path / ".env"
    init_env.main(path)
    values = _values(path)
    for name in ("RASA_API_TOKEN", "ACTION_SERVER_TOKEN", "CONSENT_API_TOKEN"):
        assert startup.strong_token(values[name]), name
    assert values["RASA_API_TOKEN"] != values["ACTION_SERVER_TOKEN"]


def test_init_env_adds_missing_tokens_to_an_existing_file_and_keeps_the_rest(
    tmp_path: Path, umask_022: None
) -> None:
    path = tmp_path / ".env"
    path.write_text(
        "# mine\nCONSENT_API_TOKEN=kept-as-it-is\nRASA_API_TOKEN=\nCITY_CONTACT_NAME=窓口\n",
        encoding="utf-8",
    )
    path.chmod(0o644)
    init_env.main(path)
    values = _values(path)
    assert values["CONSENT_API_TOKEN"] == "kept-as-it-is"
    assert values["CITY_CONTACT_NAME"] == "窓口"
    assert startup.strong_token(values["RASA_API_TOKEN"])
    assert startup.strong_token(values["ACTION_SERVER_TOKEN"])
    assert path.read_text(encoding="utf-8").count("RASA_API_TOKEN=") == 1
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = path.read_text(encoding="utf-8")
    init_env.main(path)
    assert path.read_text(encoding="utf-8") == again  # nothing more to add


def test_init_env_makes_var_private(tmp_path: Path, umask_022: None) -> None:
    init_env.main(tmp_path / ".env")
    assert stat.S_IMODE((tmp_path / "var").stat().st_mode) == 0o700
    (tmp_path / "var").chmod(0o755)
    (tmp_path / "var" / "log").mkdir(mode=0o755)
    init_env.main(tmp_path / ".env")
    assert stat.S_IMODE((tmp_path / "var").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "var" / "log").stat().st_mode) == 0o700
    assert os.umask(0o022) == 0o077  # what it creates afterwards is private too


@pytest.mark.parametrize("script", ["run.sh", "shell.sh"])
def test_dev_scripts_create_private_files_and_never_pass_tokens_as_arguments(
    script: str,
) -> None:
    lines = (PROJECT_ROOT / "scripts" / script).read_text(encoding="utf-8").splitlines()
    commands = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    first_creating = next(i for i, c in enumerate(commands) if c.startswith("mkdir"))
    assert "umask 077" in commands[:first_creating]
    assert "chmod 700 var var/log" in commands
    expanded = re.compile(r"\$\{?\w*TOKEN")
    assert not any("--auth-token" in c or expanded.search(c) for c in commands)  # never in `ps`


def test_dev_rasa_is_started_with_its_api_closed_by_token_and_the_chat_on_loopback() -> None:
    # run.sh starts the servers through scripts/harness.py's dev set
    assert "-m scripts.harness run" in (PROJECT_ROOT / "scripts" / "run.sh").read_text("utf-8")
    rasa = next(
        s for s in harness.dev_specs(harness.DevPorts(), {}, Path("log")) if s.name == "rasa"
    )
    run = " ".join(rasa.argv)
    shell = (PROJECT_ROOT / "scripts" / "shell.sh").read_text(encoding="utf-8")
    # bot.server refuses --enable-api without a strong RASA_API_TOKEN (tests/bot/test_server.py)
    assert "-m bot.server run" in run and "--enable-api" in run
    assert "--interface 127.0.0.1" in run
    assert not any("TOKEN" in arg for spec in harness.dev_specs(harness.DevPorts(), {}, Path("log"))
                   for arg in spec.argv)  # fmt: skip
    assert "-m bot.server shell" in shell and "--interface 127.0.0.1" in shell


def test_init_env_generates_the_consent_services_admin_token_and_audit_key(
    tmp_path: Path, umask_022: None
) -> None:
    path = tmp_path / ".env"
    path.write_text("CONSENT_API_TOKEN=kept-as-it-is\n", encoding="utf-8")  # an older file
    init_env.main(path)
    values = _values(path)
    for name in ("CONSENT_ADMIN_TOKEN", "CONSENT_AUDIT_KEY"):
        assert startup.strong_token(values[name]), name
    assert values["CONSENT_ADMIN_TOKEN"] != values["CONSENT_AUDIT_KEY"]


def _entity_report(folder: Path, name: str, f1_by_type: Dict[str, float]) -> None:
    rows = {
        kind: {"precision": f1, "recall": f1, "f1-score": f1, "support": 10}
        for kind, f1 in f1_by_type.items()
    }
    rows["micro avg"] = {"precision": 0.5, "recall": 0.5, "f1-score": 0.5, "support": 20}
    (folder / f"{name}_report.json").write_text(json.dumps(rows), encoding="utf-8")


def test_each_entity_type_is_scored_from_the_component_that_gives_it(tmp_path: Path) -> None:
    results = write_results(tmp_path, 0.95)
    _entity_report(results, "FastLoadingDIETClassifier", {"data_item": 0.0, "receipt_code": 0.9})
    _entity_report(results, "ItemGazetteer", {"data_item": 1.0, "receipt_code": 0.0})
    config = tmp_path / "config.yml"
    config.write_text(
        "pipeline:\n  - name: bot.nlu.item_gazetteer.ItemGazetteer\n    entities: [data_item]\n",
        encoding="utf-8",
    )
    out = tmp_path / "report.md"
    argv = [str(results), "--write", str(out), "--config", str(config)]
    assert nlu_report.main(argv) == 0
    text = out.read_text(encoding="utf-8")
    assert "| entity F1, `data_item` (ItemGazetteer) | 1.000 |" in text
    assert "| entity F1, `receipt_code` (DIET) | 0.900 |" in text
    assert "| entity macro F1 (each type from the component that gives it) | 0.950 |" in text


def test_the_gazetteer_types_come_from_the_config_or_its_defaults(tmp_path: Path) -> None:
    config = tmp_path / "config.yml"
    config.write_text("pipeline:\n  - name: bot.nlu.item_gazetteer.ItemGazetteer\n", "utf-8")
    assert "data_item" in nlu_report.gazetteer_types(config)
    config.write_text("pipeline:\n  - name: DIETClassifier\n", "utf-8")
    assert nlu_report.gazetteer_types(config) == frozenset()
    assert nlu_report.gazetteer_types(PROJECT_ROOT / "config.yml") == frozenset(
        {"data_item", "data_level", "family_doctor_answer"}
    )
