"""Benchmark of the web chat's furigana (`bot.webchat.furigana`): its cost per answer.

The web chat sends every answer with the readings of its kanji (issue 16), made on the server by
the Sudachi tokenizer the channel already has open. Measured over the text of every response
variation in domain.yml (default and plain): µs of this thread's CPU per answer the first time a
text is seen (one Sudachi tokenization per piece, alignment of the readings) and when the text is
already in the module's LRU cache (answers repeat), and how many bytes the readings add to the
`bot_uttered` message. Rewrites its section of docs/benchmarks.md. Needs the Rasa side's
environment:

    .venv/bin/python bench/furigana.py
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from report import write_section  # bench/report.py (the script's own folder)

ROOT = Path(__file__).resolve().parent.parent
MARK_START, MARK_END = "<!-- furigana:start -->", "<!-- furigana:end -->"


def percentile(values: list[float], share: float) -> float:
    """The value below which `share` of `values` lie."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def measure(rounds: int) -> dict[str, Any]:
    """Time the readings of every response text, uncached and cached."""
    sys.path.insert(0, str(ROOT))
    import yaml

    from bot.webchat import furigana as readings

    domain = yaml.safe_load((ROOT / "domain.yml").read_text(encoding="utf-8"))
    texts = [
        str(variant["text"])
        for variants in domain["responses"].values()
        for variant in variants
        if variant.get("text")
    ]
    start = time.perf_counter()
    readings.furigana("情報銀行に預ける")  # opens Sudachi's dictionary (once per thread)
    first_ms = 1000 * (time.perf_counter() - start)
    uncached: list[float] = []
    cached: list[float] = []
    for _ in range(rounds):
        readings._cached.cache_clear()
        for text in texts:
            begin = time.thread_time_ns()
            readings.furigana(text)
            uncached.append((time.thread_time_ns() - begin) / 1000)
        for text in texts:
            begin = time.thread_time_ns()
            readings.with_furigana({"text": text})
            cached.append((time.thread_time_ns() - begin) / 1000)
    sizes = [
        (
            len(json.dumps({"text": text}, ensure_ascii=False).encode()),
            len(json.dumps(readings.with_furigana({"text": text}), ensure_ascii=False).encode()),
        )
        for text in texts
    ]
    return {
        "texts": len(texts),
        "chars": statistics.fmean(len(text) for text in texts),
        "rounds": rounds,
        "first_ms": first_ms,
        "uncached": uncached,
        "cached": cached,
        "bytes_before": statistics.fmean(before for before, _ in sizes),
        "bytes_after": statistics.fmean(after for _, after in sizes),
        "load": os.getloadavg()[0],
    }


def render(results: dict[str, Any], command: str) -> str:
    """The Markdown section of docs/benchmarks.md."""
    rows = []
    for name in ("uncached", "cached"):
        values = results[name]
        rows.append(
            f"| {name} | {statistics.fmean(values):.0f} | {percentile(values, 0.5):.0f} | "
            f"{percentile(values, 0.95):.0f} | {max(values):.0f} |"
        )
    uncached_p95 = percentile(results["uncached"], 0.95)
    return "\n".join(
        [
            MARK_START,
            "## Web chat furigana (`bench/furigana.py`)",
            "",
            f"Command: `{command}`. Machine: {platform.machine()}, {os.cpu_count()} cores, "
            f"Python {platform.python_version()}; measured {time.strftime('%Y-%m-%d')} (load "
            f"average {results['load']:.1f} when the run began).",
            "",
            "`bot.webchat.furigana.with_furigana` runs in the web chat channel on every answer it "
            "sends (docs/webchat.md): Sudachi tokenizes the text cut at brackets and "
            "punctuation, and each morpheme's reading is aligned with its kana. Measured on the "
            f"{results['texts']} response texts of domain.yml (default and plain variations, "
            f"{results['chars']:.0f} characters on average), {results['rounds']} passes; µs of "
            "the thread's CPU time per answer, the first time a text is seen (uncached) and "
            "once it is in the module's LRU cache of 1,024 texts (answers repeat, so most are; "
            "texts with a receipt code, a date or a time are never cached).",
            "",
            "| answer text | mean µs | p50 | p95 | max |",
            "|---|---|---|---|---|",
            *rows,
            "",
            f"The first call of a thread opens Sudachi's dictionary ({results['first_ms']:.0f} ms) "
            "unless the intake masking, which shares the tokenizer, already did. The readings "
            f"make the `bot_uttered` message {results['bytes_after']:.0f} bytes on average "
            f"instead of {results['bytes_before']:.0f} (JSON, UTF-8).",
            "",
            f"Reading: at most {uncached_p95 / 1000:.2f} ms of CPU for 95% of new answers and "
            "tens of µs for repeated ones, against a turn whose p50 is tens of milliseconds: "
            + (
                "it does not move the latency targets."
                if uncached_p95 < 2000
                else "large enough to check against the latency targets with `make bench`."
            ),
            MARK_END,
        ]
    )


def main() -> int:
    """Run the benchmark and rewrite its section of docs/benchmarks.md."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5, help="passes over the texts")
    parser.add_argument("--report", type=Path, default=ROOT / "docs" / "benchmarks.md")
    args = parser.parse_args()
    results = measure(args.rounds)
    print(
        f"uncached mean {statistics.fmean(results['uncached']):.0f} µs, "
        f"cached mean {statistics.fmean(results['cached']):.0f} µs"
    )
    write_section(
        render(results, ".venv/bin/python bench/furigana.py"), args.report, MARK_START, MARK_END
    )
    print(f"Wrote {args.report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
