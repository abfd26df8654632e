"""The benchmark's baseline differs from config.yml only in the front end and DIET's loader.

`make bench` compares the assistant with Rasa's stock set-up "with the same featurizers and
DIET/TED settings" (issue 7); if someone tunes DIET in config.yml and forgets the baseline, the
comparison would silently stop being fair.
"""

from __future__ import annotations

from typing import Any, Dict, List

import yaml

from tests.conftest import PROJECT_ROOT

STOCK_FRONT_END = ["SpacyNLP", "SpacyTokenizer", "SpacyFeaturizer"]
LIGHT_FRONT_END = ["bot.nlu.japanese.SudachiTokenizer", "bot.nlu.japanese.StaticVectorsFeaturizer"]


def _load(path: str) -> Dict[str, Any]:
    return dict(yaml.safe_load((PROJECT_ROOT / path).read_text(encoding="utf-8")))


# Same class and settings; ours only loads without re-tracing DIET's training step.
SAME_COMPONENT = {"bot.nlu.diet.FastLoadingDIETClassifier": "DIETClassifier"}


# Runs before either front end in both (issue 15: it adds each clause of a message to the batch).
BEFORE_FRONT_END = "bot.nlu.clauses.ClauseSplitter"


# Settings of ours that change only which examples share a training batch (the same model and
# loss; the scores may differ by a few sentences). Stock DIET has no such setting.
TRAINING_ONLY = {"bot.nlu.diet.FastLoadingDIETClassifier": {"length_bucket_batches"}}


def _split(pipeline: List[Dict[str, Any]], front: List[str]) -> List[Dict[str, Any]]:
    assert pipeline[0]["name"] == BEFORE_FRONT_END
    pipeline = pipeline[1:]
    names = [component["name"] for component in pipeline[: len(front)]]
    assert names == front
    compared = []
    for component in pipeline[len(front) :]:
        name = component["name"]
        skip = TRAINING_ONLY.get(name, set())
        settings = {key: value for key, value in component.items() if key not in skip}
        compared.append({**settings, "name": SAME_COMPONENT.get(name, name)})
    return compared


def test_baseline_is_config_with_the_stock_front_end() -> None:
    ours, stock = _load("config.yml"), _load("bench/baseline/config.yml")
    assert _split(ours["pipeline"], LIGHT_FRONT_END) == _split(stock["pipeline"], STOCK_FRONT_END)
    assert ours["policies"] == stock["policies"]
    assert ours["language"] == stock["language"] == "ja"


def test_both_front_ends_read_the_same_vectors_and_case() -> None:
    ours, stock = _load("config.yml"), _load("bench/baseline/config.yml")
    spacy_nlp, _, spacy_featurizer = stock["pipeline"][1:4]
    tokenizer, featurizer = ours["pipeline"][1:3]
    assert spacy_nlp["model"] == featurizer.get("model", "ja_ginza") == "ja_ginza"
    assert spacy_nlp.get("case_sensitive") is False
    assert tokenizer.get("case_sensitive", False) is False
    assert spacy_featurizer.get("pooling", "mean") == featurizer.get("pooling", "mean")
