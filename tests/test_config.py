"""Settings of config.yml that must agree with each other.

The benchmark's stock baseline repeats them: tests/test_bench_baseline.py keeps its components
after the front end equal to these.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict

import yaml

from tests.conftest import PROJECT_ROOT


def component(config: Path, name: str) -> Dict[str, Any]:
    """The settings of the pipeline component whose name ends with `name`."""
    pipeline = yaml.safe_load(config.read_text(encoding="utf-8"))["pipeline"]
    [found] = [c for c in pipeline if str(c["name"]).split(".")[-1] == name]
    return dict(found)


def test_the_gazetteer_knows_when_the_fallback_classifier_will_not_understand() -> None:
    path = PROJECT_ROOT / "config.yml"
    fallback = component(path, "FallbackClassifier")
    gazetteer = component(path, "ItemGazetteer")
    assert gazetteer["fallback_threshold"] == fallback["threshold"]
    assert gazetteer["fallback_ambiguity_threshold"] == fallback["ambiguity_threshold"]
