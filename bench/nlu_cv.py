"""k-fold cross-validation of the NLU pipeline over data/ (`make bench-nlu`).

    .venv/bin/python bench/nlu_cv.py            # config.yml, 5 folds, rewrites the docs
    .venv/bin/python bench/nlu_cv.py --render   # only re-render the saved results
    .venv/bin/python bench/nlu_cv.py --config bench/baseline/config.yml \
        --out results/bench/nlu_cv-stock.json --no-docs
    .venv/bin/python bench/nlu_cv.py --config /tmp/trial.yml --only 0 \
        --out results/bench/nlu_cv-trial.json     # one fold: a quick, paired comparison

The training examples of `data/` are split into `--folds` stratified folds with a fixed seed, so
every run and every pipeline gets the same folds; for each fold a model is trained with Rasa on
the other folds (the pipeline's full epochs) and asked to parse every held-back message. Why not
`rasa test nlu --cross-validation`: its evaluation deep-copies every message that fell back, and
a message of the stock pipeline carries spaCy documents whose copy serialises the whole
vocabulary — about five seconds a message here, over an hour for one cross-validation. Parsing
through the loaded model (as the server does) costs milliseconds and measures the same thing.

Scores: intent accuracy and macro F1 (the intent before the fallback, as Rasa's evaluation counts
it), per-intent precision/recall/F1 with the intents each was taken for, and entity F1 over exact
(type, start, end) matches, micro-averaged and per entity type (`data_item` is the one the
issue's target names). The results go to `results/bench/nlu_cv.json`, with every misclassified
message (its fold, text, annotated and predicted intent) and every message whose entities differ
(the spans missed and the spans extra, with their text) for error analysis; with the default
`--docs`, the NLU section of `docs/benchmarks.md` and the cross-validation section of
`docs/nlu-report.md` are rewritten from them.

`--only 0` (or `--only 0 3`) trains and scores only those folds: the same folds as a whole run,
so two settings compared on fold 0 are compared on the same messages, in a fifth of the time. A
partial run is never written to the docs, and needs its own `--out`.

It used to run inside `make bench-assistant`, beside the soak; it has its own target so that the
figures are made with the full epochs and `make bench-assistant` fits in its 30 minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from report import write_section  # bench/report.py (the script's own folder)

ROOT = Path(__file__).resolve().parent.parent
SEED = 20211
RESULTS = ROOT / "results" / "bench" / "nlu_cv.json"
BENCHMARKS = ROOT / "docs" / "benchmarks.md"
NLU_REPORT = ROOT / "docs" / "nlu-report.md"
BENCH_MARKS = ("<!-- nlu_cv:start -->", "<!-- nlu_cv:end -->")
REPORT_MARKS = ("<!-- cv:start -->", "<!-- cv:end -->")
WEAKEST = 10
TARGETS = {"intent_accuracy": 0.85, "intent_macro_f1": 0.85, "data_item_f1": 0.85}


def top_intent(parse: dict[str, Any]) -> str:
    """The predicted intent before the fallback classifier replaced a low-confidence one."""
    for ranked in parse.get("intent_ranking") or []:
        if ranked.get("name") != "nlu_fallback":
            return str(ranked["name"])
    return str((parse.get("intent") or {}).get("name"))


def entity_spans(entities: list[dict[str, Any]]) -> set[tuple[str, int, int]]:
    """Entities as comparable (type, start, end) triples."""
    return {(str(e["entity"]), int(e["start"]), int(e["end"])) for e in entities}


def _spans_as_text(text: str, spans: set[tuple[str, int, int]]) -> list[list[str]]:
    """Each span as [type, the text it covers], in the order they occur."""
    return [[kind, text[start:end]] for kind, start, end in sorted(spans, key=lambda s: s[1:])]


def f1(true_positive: int, predicted: int, gold: int) -> dict[str, float]:
    """Precision, recall and F1 from counts."""
    precision = true_positive / predicted if predicted else 0.0
    recall = true_positive / gold if gold else 0.0
    score = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": score, "support": gold}


def scores(
    golds: list[str],
    predictions: list[str],
    entities: dict[str, list[int]],
) -> dict[str, Any]:
    """Intent accuracy, macro F1 and per-intent scores; entity F1, micro and per type.

    Args:
        golds: The annotated intent of each held-back message.
        predictions: The predicted intent of each, in the same order.
        entities: Per entity type, [true positives, predicted, gold] over all messages.

    Returns:
        The scores (JSON-serialisable).
    """
    from sklearn.metrics import accuracy_score, classification_report, f1_score

    report = classification_report(golds, predictions, output_dict=True, zero_division=0)
    confusions: dict[str, Counter[str]] = defaultdict(Counter)
    for gold, predicted in zip(golds, predictions, strict=True):
        if gold != predicted:
            confusions[gold][predicted] += 1
    per_intent = {
        name: {
            "precision": float(row["precision"]),
            "recall": float(row["recall"]),
            "f1": float(row["f1-score"]),
            "support": int(row["support"]),
            "confused_with": dict(confusions[name].most_common(3)),
        }
        for name, row in report.items()
        if isinstance(row, dict) and name in set(golds)
    }
    totals = [sum(counts[i] for counts in entities.values()) for i in range(3)]
    per_entity = {name: f1(*counts) for name, counts in sorted(entities.items())}
    return {
        "intent_accuracy": float(accuracy_score(golds, predictions)),
        "intent_macro_f1": float(f1_score(golds, predictions, average="macro", zero_division=0)),
        "entity_micro_f1": f1(*totals)["f1"],
        "data_item_f1": per_entity.get("data_item", {}).get("f1", 0.0),
        "intents": per_intent,
        "entities": per_entity,
    }


async def parse_all(agent: Any, texts: list[str]) -> list[dict[str, Any]]:
    """Parse each text with the loaded model."""
    return [await agent.parse_message(text) for text in texts]


def cross_validate(
    config: Path, folds: int, work: Path, only: set[int] | None = None
) -> dict[str, Any]:
    """Train and evaluate `folds` models; return the pooled scores and timings.

    Args:
        config: The pipeline to train.
        folds: How many stratified folds to split data/ into.
        work: A scratch folder for the folds' training files and models.
        only: If given, train and score only these folds (0-based).

    Returns:
        The pooled scores, the misclassified messages and the timings (JSON-serialisable).
    """
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
    entities: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])  # tp, predicted, gold
    errors: list[dict[str, Any]] = []
    entity_errors: list[dict[str, Any]] = []  # messages whose entity spans differ from the gold
    timings = []
    for fold, (train_ids, test_ids) in enumerate(splitter.split(examples, labels)):
        if only is not None and fold not in only:
            continue
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
            if golds[-1] != predictions[-1]:
                errors.append(
                    {
                        "fold": fold,
                        "text": message.get(TEXT),
                        "intent": golds[-1],
                        "predicted": predictions[-1],
                    }
                )
            want = entity_spans(message.get(ENTITIES) or [])
            got = entity_spans(parse.get("entities") or [])
            if want != got:
                entity_errors.append(
                    {
                        "fold": fold,
                        "text": message.get(TEXT),
                        "missed": _spans_as_text(message.get(TEXT), want - got),
                        "extra": _spans_as_text(message.get(TEXT), got - want),
                    }
                )
            for kind in {span[0] for span in want | got}:
                counts = entities[kind]
                counts[0] += len({s for s in want & got if s[0] == kind})
                counts[1] += len({s for s in got if s[0] == kind})
                counts[2] += len({s for s in want if s[0] == kind})
        timings.append(time.monotonic() - started)
        running = scores(golds, predictions, dict(entities))
        print(
            f"fold {fold + 1}/{folds}: {timings[-1]:.0f} s; so far intent accuracy "
            f"{running['intent_accuracy']:.3f}, macro F1 {running['intent_macro_f1']:.3f}, "
            f"data_item F1 {running['data_item_f1']:.3f}",
            flush=True,
        )
    return {
        "config": str(config.relative_to(ROOT)) if config.is_relative_to(ROOT) else str(config),
        "folds": folds,
        "only": sorted(only) if only is not None else None,
        "seed": SEED,
        "examples": len(examples),
        "scored": len(golds),
        **scores(golds, predictions, dict(entities)),
        "errors": errors,
        "entity_errors": entity_errors,
        "fold_seconds": timings,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "load_average": os.getloadavg()[0],
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
    }


def target_rows(result: dict[str, Any]) -> list[str]:
    """The issue's three cross-validation targets as Markdown table rows."""
    names = {
        "intent_accuracy": "intent accuracy",
        "intent_macro_f1": "intent macro F1",
        "data_item_f1": "`data_item` entity F1",
    }
    rows = ["| measure | target | measured | met |", "|---|---|---|---|"]
    for key, bar in TARGETS.items():
        value = float(result[key])
        rows.append(
            f"| {names[key]} | ≥ {bar:.2f} | {value:.3f} | {'yes' if value >= bar else '**no**'} |"
        )
    rows.append(f"| entity F1, all types (micro) | — | {result['entity_micro_f1']:.3f} | |")
    return rows


def render_benchmarks(result: dict[str, Any]) -> str:
    """The NLU cross-validation section of docs/benchmarks.md."""
    minutes = sum(result["fold_seconds"]) / 60
    lines = [
        BENCH_MARKS[0],
        "## NLU: cross-validation of data/ (`bench/nlu_cv.py`)",
        "",
        f"Command: `make bench-nlu` ({minutes:.0f} minutes; load average "
        f"{result['load_average']:.1f} when it ended, other work shared the cores). Machine: "
        f"{result['machine']}; measured {result['date']}. Pipeline: `{result['config']}` with its "
        f"full epochs; {result['folds']} stratified folds of the {result['examples']} training "
        f"examples (seed {result['seed']}: the same folds every run), each fold's model parsing "
        "its held-back messages. Intents are counted before the fallback, as Rasa's evaluation "
        "does; entities as exact (type, start, end) matches. Per-intent figures and the tried "
        "settings: [nlu-report.md](nlu-report.md).",
        "",
        *target_rows(result),
        BENCH_MARKS[1],
    ]
    return "\n".join(lines)


def render_report(result: dict[str, Any]) -> str:
    """The cross-validation section of docs/nlu-report.md."""
    intents = result["intents"]
    weakest = sorted(intents.items(), key=lambda kv: (kv[1]["f1"], kv[0]))[:WEAKEST]
    lines = [
        REPORT_MARKS[0],
        "## Cross-validation of data/",
        "",
        f"Written by `make bench-nlu` (`bench/nlu_cv.py`), measured {result['date']}: "
        f"`{result['config']}`, {result['folds']} stratified folds (seed {result['seed']}) of "
        f"{result['examples']} examples.",
        "",
        *target_rows(result),
        "",
        "| entity type | precision | recall | F1 | support |",
        "|---|---|---|---|---|",
    ]
    for name, row in result["entities"].items():
        lines.append(
            f"| {name} | {row['precision']:.2f} | {row['recall']:.2f} | {row['f1']:.2f} | "
            f"{row['support']} |"
        )
    lines += [
        "",
        f"The {WEAKEST} weakest intents in cross-validation:",
        "",
        "| intent | precision | recall | F1 | support | taken for |",
        "|---|---|---|---|---|---|",
    ]
    for name, row in weakest:
        taken = ", ".join(f"{k} ({n})" for k, n in row["confused_with"].items()) or "-"
        lines.append(
            f"| {name} | {row['precision']:.2f} | {row['recall']:.2f} | {row['f1']:.2f} | "
            f"{row['support']} | {taken} |"
        )
    lines.append(REPORT_MARKS[1])
    return "\n".join(lines)


def write_docs(result: dict[str, Any]) -> None:
    """Rewrite this benchmark's sections of docs/benchmarks.md and docs/nlu-report.md."""
    write_section(render_benchmarks(result), BENCHMARKS, *BENCH_MARKS)
    write_section(render_report(result), NLU_REPORT, *REPORT_MARKS)


def main() -> int:
    """Run the cross-validation (or re-render saved results) and write its scores."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--config", type=Path, default=ROOT / "config.yml")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--out", type=Path, help=f"the JSON (default {RESULTS}; --only needs one)")
    parser.add_argument("--render", action="store_true", help="only re-render saved results")
    parser.add_argument("--no-docs", dest="docs", action="store_false", help="JSON only")
    parser.add_argument(
        "--only", type=int, nargs="+", metavar="FOLD", help="train and score only these folds"
    )
    args = parser.parse_args()
    if args.only and not all(0 <= fold < args.folds for fold in args.only):
        parser.error(f"--only takes fold numbers from 0 to {args.folds - 1}")
    if args.only and not args.render and (args.out is None or args.out.resolve() == RESULTS):
        # a partial run must not overwrite the whole run's results the docs are rendered from
        parser.error("--only needs --out (a file other than the whole run's results)")
    args.out = args.out or RESULTS
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if args.render:
        result = json.loads(args.out.read_text(encoding="utf-8"))
    else:
        with tempfile.TemporaryDirectory(prefix="nlu-cv-") as work:
            only = set(args.only) if args.only else None
            result = cross_validate(args.config.resolve(), args.folds, Path(work), only)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, ensure_ascii=False), encoding="utf-8")
    if args.docs and result.get("only"):
        print("a partial run (--only): the docs are left as they are", file=sys.stderr)
    elif args.docs:
        write_docs(result)
    for row in target_rows(result)[2:]:
        print(row)
    return 0


if __name__ == "__main__":
    sys.exit(main())
