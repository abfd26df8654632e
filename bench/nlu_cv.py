"""k-fold cross-validation of one NLU pipeline, evaluated the same way for every pipeline.

`bench/assistant.py` runs it for the stock and for our pipeline side by side (one process each):

    .venv/bin/python bench/nlu_cv.py --config config.yml --folds 5 --out cv-ours.json

The training examples of `data/` are split into `--folds` stratified folds (fixed seed, so both
pipelines get the same folds); for each fold a model is trained with Rasa on the other folds and
asked to parse every held-back message. Why not `rasa test nlu --cross-validation`: its
evaluation deep-copies every message that fell back, and a message of the stock pipeline carries
spaCy documents whose copy serialises the whole vocabulary — about five seconds a message here,
over an hour for one cross-validation. Parsing through the loaded model (as the server does)
costs milliseconds for either pipeline and measures the same thing.

Scores: intent accuracy and macro F1 (the intent before the fallback, as Rasa's evaluation
counts it), and entity F1 over exact (type, start, end) matches, micro-averaged.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SEED = 20211


def top_intent(parse: dict[str, Any]) -> str:
    """The predicted intent before the fallback classifier replaced a low-confidence one."""
    for ranked in parse.get("intent_ranking") or []:
        if ranked.get("name") != "nlu_fallback":
            return str(ranked["name"])
    return str((parse.get("intent") or {}).get("name"))


def entity_spans(entities: list[dict[str, Any]]) -> set[tuple[str, int, int]]:
    """Entities as comparable (type, start, end) triples."""
    return {(str(e["entity"]), int(e["start"]), int(e["end"])) for e in entities}


def scores(golds: list[str], predictions: list[str], entity_counts: list[int]) -> dict[str, float]:
    """Accuracy, macro F1 of intents and micro F1 of entities."""
    from sklearn.metrics import accuracy_score, f1_score

    true_positive, predicted, gold = entity_counts
    precision = true_positive / predicted if predicted else 0.0
    recall = true_positive / gold if gold else 0.0
    return {
        "intent_accuracy": float(accuracy_score(golds, predictions)),
        "intent_macro_f1": float(f1_score(golds, predictions, average="macro", zero_division=0)),
        "entity_micro_f1": (
            2 * precision * recall / (precision + recall) if precision + recall else 0.0
        ),
    }


async def parse_all(agent: Any, texts: list[str]) -> list[dict[str, Any]]:
    """Parse each text with the loaded model."""
    return [await agent.parse_message(text) for text in texts]


def cross_validate(config: Path, folds: int, work: Path) -> dict[str, Any]:
    """Train and evaluate `folds` models; return the pooled scores and timings."""
    from rasa.core.agent import Agent
    from rasa.model_training import train_nlu
    from rasa.shared.importers.rasa import RasaFileImporter
    from rasa.shared.nlu.constants import ENTITIES, INTENT, TEXT
    from rasa.shared.nlu.training_data.training_data import TrainingData
    from sklearn.model_selection import StratifiedKFold

    data = RasaFileImporter(
        training_data_paths=[str(ROOT / "data")], domain_path=str(ROOT / "domain.yml")
    ).get_nlu_data()
    examples = [m for m in data.intent_examples if m.get(TEXT)]
    labels = [m.get(INTENT) for m in examples]
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=SEED)
    golds: list[str] = []
    predictions: list[str] = []
    entity_counts = [0, 0, 0]  # true positives, predicted, gold
    timings = []
    for fold, (train_ids, test_ids) in enumerate(splitter.split(examples, labels)):
        started = time.monotonic()
        train = TrainingData(
            [examples[i] for i in train_ids],
            entity_synonyms=data.entity_synonyms,
            regex_features=data.regex_features,
            lookup_tables=data.lookup_tables,
        )
        train_file = work / f"fold{fold}.yml"
        train_file.write_text(train.nlu_as_yaml(), encoding="utf-8")
        model = train_nlu(str(config), str(train_file), str(work), fixed_model_name=f"fold{fold}")
        agent = Agent.load(str(model))
        parses = asyncio.run(parse_all(agent, [examples[i].get(TEXT) for i in test_ids]))
        for i, parse in zip(test_ids, parses, strict=True):
            message = examples[i]
            golds.append(str(message.get(INTENT)))
            predictions.append(top_intent(parse))
            want = entity_spans(message.get(ENTITIES) or [])
            got = entity_spans(parse.get("entities") or [])
            entity_counts[0] += len(want & got)
            entity_counts[1] += len(got)
            entity_counts[2] += len(want)
        timings.append(time.monotonic() - started)
        print(f"fold {fold + 1}/{folds}: {timings[-1]:.0f} s", flush=True)
    return {
        "folds": folds,
        "examples": len(examples),
        **scores(golds, predictions, entity_counts),
        "fold_seconds": timings,
    }


def main() -> int:
    """Run the cross-validation and write its scores as JSON."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with tempfile.TemporaryDirectory(prefix="nlu-cv-") as work:
        result = cross_validate(args.config.resolve(), args.folds, Path(work))
    args.out.write_text(json.dumps(result), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
