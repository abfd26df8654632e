"""Check and report `rasa test nlu` results on the held-out test set.

Reads the JSON reports that `rasa test nlu --out DIR` writes and either gates on intent accuracy
(`--min-accuracy`) or writes the held-out section of the Markdown report (`--write
docs/nlu-report.md`), or both. The report has other writers: `make bench-nlu` writes its
cross-validation section and people keep the table of tried settings, so only the part between
the held-out markers is replaced.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from pathlib import Path
from typing import Any

WORST_INTENTS = 8
MARK_START, MARK_END = "<!-- heldout:start -->", "<!-- heldout:end -->"
HEADER = (
    "# NLU report\n\n"
    "How well the assistant understands residents: the held-out test set (`make nlu-report`) and "
    "the cross-validation of the training data (`make bench-nlu`).\n"
)


def load(path: Path) -> Any:
    """Read one JSON report.

    Args:
        path: The report file.

    Returns:
        The parsed JSON.
    """
    return json.loads(path.read_text(encoding="utf-8"))


def intent_scores(results: Path) -> dict[str, Any]:
    """Return the intent report (per-intent precision/recall/F1 and the averages)."""
    return dict(load(results / "intent_report.json"))


def entity_scores(results: Path, owned: frozenset[str] = frozenset()) -> list[dict[str, Any]]:
    """Each entity type's scores, from the component that gives that type.

    `rasa test nlu` writes one report per component that gave entities, each scored against all
    annotated types. `ItemGazetteer` gives the types in `owned` (DIET's are dropped there), DIET
    the rest; its report is named after the class (`FastLoadingDIETClassifier` in config.yml,
    `DIETClassifier` in the benchmark's baseline).

    Args:
        results: The `--out` folder of `rasa test nlu`.
        owned: The entity types `ItemGazetteer` gives.

    Returns:
        One row per type, sorted: name, source, precision, recall, f1, support.
    """
    reports = {"DIET": next(iter(sorted(results.glob("*DIETClassifier_report.json"))), None)}
    reports["ItemGazetteer"] = results / "ItemGazetteer_report.json"
    scores = {
        source: {
            name: row
            for name, row in dict(load(path)).items()
            if isinstance(row, dict) and not name.endswith(" avg")
        }
        for source, path in reports.items()
        if path is not None and path.exists()
    }
    names = sorted({name for rows in scores.values() for name in rows})
    rows = []
    for name in names:
        source = "ItemGazetteer" if name in owned and "ItemGazetteer" in scores else "DIET"
        row = scores.get(source, {}).get(name)
        if row is None:
            continue
        rows.append({"name": name, "source": source, **row})
    return rows


def gazetteer_types(config: Path) -> frozenset[str]:
    """The entity types `ItemGazetteer` gives in this pipeline config (none if it is absent)."""
    import yaml

    pipeline = (yaml.safe_load(config.read_text(encoding="utf-8")) or {}).get("pipeline") or []
    for component in pipeline:
        if str(component.get("name", "")).endswith("ItemGazetteer"):
            if "entities" in component:
                return frozenset(component["entities"])
            sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script
            from bot.nlu.item_gazetteer import ItemGazetteer

            return frozenset(ItemGazetteer.get_default_config()["entities"])
    return frozenset()


def render(results: Path, owned: frozenset[str] = frozenset()) -> str:
    """Render the held-out section of the Markdown report, markers included.

    Args:
        results: The `--out` folder of `rasa test nlu`.
        owned: The entity types `ItemGazetteer` gives (`gazetteer_types`).

    Returns:
        The section's text.
    """
    report = intent_scores(results)
    intents = {k: v for k, v in report.items() if isinstance(v, dict) and "f1-score" in v}
    intents = {k: v for k, v in intents.items() if not k.endswith(" avg")}
    errors_file = results / "intent_errors.json"
    errors = load(errors_file) if errors_file.exists() else []
    macro = report["macro avg"]
    lines = [
        MARK_START,
        "## Held-out test set",
        "",
        "Regenerate with `make nlu-report` (trains the model first if config, domain or data",
        "changed). Test set: `tests/nlu/` (never used for training); model: `config.yml`.",
        "",
        "| metric | value |",
        "|---|---|",
        f"| intent accuracy | {report['accuracy']:.3f} |",
        f"| intent macro F1 | {macro['f1-score']:.3f} |",
        f"| intent weighted F1 | {report['weighted avg']['f1-score']:.3f} |",
        f"| test utterances | {int(macro['support'])} |",
    ]
    entities = entity_scores(results, owned)
    if entities:
        macro = sum(row["f1-score"] for row in entities) / len(entities)
        lines.append(
            f"| entity macro F1 (each type from the component that gives it) | {macro:.3f} |"
        )
        for row in entities:
            name, source = row["name"], row["source"]
            lines.append(f"| entity F1, `{name}` ({source}) | {row['f1-score']:.3f} |")
    worst = sorted(intents.items(), key=lambda kv: (kv[1]["f1-score"], kv[0]))[:WORST_INTENTS]
    lines += [
        "",
        f"## The {WORST_INTENTS} weakest intents",
        "",
        "| intent | precision | recall | F1 | support | confused with |",
        "|---|---|---|---|---|---|",
    ]
    for name, score in worst:
        confused = Counter(
            e["intent_prediction"]["name"] for e in errors if e.get("intent") == name
        )
        with_ = ", ".join(f"{k} ({n})" for k, n in confused.most_common(3)) or "-"
        lines.append(
            f"| {name} | {score['precision']:.2f} | {score['recall']:.2f} | "
            f"{score['f1-score']:.2f} | {int(score['support'])} | {with_} |"
        )
    lines += ["", "## Misclassified test utterances", ""]
    if errors:
        lines += ["| utterance | expected | predicted (confidence) |", "|---|---|---|"]
        for error in sorted(errors, key=lambda e: e["intent"]):
            predicted = error["intent_prediction"]
            lines.append(
                f"| {error['text']} | {error['intent']} | "
                f"{predicted['name']} ({predicted['confidence']:.2f}) |"
            )
    else:
        lines.append("None.")
    lines += [
        "",
        "## All intents",
        "",
        "| intent | precision | recall | F1 | support |",
        "|---|---|---|---|---|",
    ]
    for name, score in sorted(intents.items()):
        lines.append(
            f"| {name} | {score['precision']:.2f} | {score['recall']:.2f} | "
            f"{score['f1-score']:.2f} | {int(score['support'])} |"
        )
    lines.append(MARK_END)
    return "\n".join(lines)


def write_report(section: str, path: Path) -> None:
    """Put the held-out section into `path`, keeping everything outside its markers.

    Args:
        section: The rendered section, markers included.
        path: The Markdown report (created with a header when missing).
    """
    current = path.read_text(encoding="utf-8") if path.exists() else HEADER
    pattern = re.compile(re.escape(MARK_START) + ".*?" + re.escape(MARK_END), re.S)
    updated = (
        pattern.sub(lambda _: section, current)
        if pattern.search(current)
        else current.rstrip("\n") + "\n\n" + section
    )
    path.write_text(updated.rstrip("\n") + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    """Run the gate and/or write the report.

    Args:
        argv: Command-line arguments (defaults to sys.argv).

    Returns:
        0 when every requested check passed, 1 otherwise.
    """
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("results", type=Path, help="the --out folder of `rasa test nlu`")
    parser.add_argument("--min-accuracy", type=float, help="fail below this intent accuracy")
    parser.add_argument("--write", type=Path, help="write the Markdown report here")
    parser.add_argument(
        "--config", type=Path, default=Path("config.yml"), help="the pipeline the model ran"
    )
    args = parser.parse_args(argv)
    accuracy = float(intent_scores(args.results)["accuracy"])
    if args.write:
        args.write.parent.mkdir(parents=True, exist_ok=True)
        write_report(render(args.results, gazetteer_types(args.config)), args.write)
        print(f"Wrote {args.write}")
    if args.min_accuracy is not None:
        verdict = "passes" if accuracy >= args.min_accuracy else "FAILS"
        print(f"Held-out intent accuracy {accuracy:.3f} {verdict} the bar of {args.min_accuracy}")
        if accuracy < args.min_accuracy:
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
