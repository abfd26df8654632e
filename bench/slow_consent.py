"""Other residents' turns while the consent service is slow for some (issue 20).

One real action server (`python -m bot.action_server`) talks to a stand-in consent service that
answers the consent lists of a few "stalled" residents only after `--delay` seconds (5 by
default: as long as the client's read timeout, so those calls are also retried) and everyone
else's at once. A few threads keep asking for the stalled residents' lists; meanwhile other
residents ask for theirs, one request after another, and their latency is measured — first with
no stalled resident (the baseline), then with them. The figures are written to this benchmark's
section of `docs/benchmarks.md`.

Run it with `.venv/bin/python bench/slow_consent.py` (about a minute). `--project-root DIR` runs
the action server of another tree (e.g. an export of an older commit) to compare with.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import hmac
import json
import os
import platform
import secrets
import statistics
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Dict, List

import requests
from report import write_section  # bench/report.py (the script's own folder)

ROOT = Path(__file__).resolve().parent.parent
sys.path.append(str(ROOT))  # scripts/harness.py: the project's one way to start its servers
from scripts import harness  # noqa: E402

REPORT = ROOT / "docs" / "benchmarks.md"
MARK_START, MARK_END = "<!-- slow_consent:start -->", "<!-- slow_consent:end -->"
ACTION_TOKEN = secrets.token_urlsafe(32)
CONSENT_TOKEN = secrets.token_urlsafe(32)
PSEUDONYM_KEY = secrets.token_hex(32)


def _subject(sender: str) -> str:
    return hmac.new(PSEUDONYM_KEY.encode(), f"rest:{sender}".encode(), hashlib.sha256).hexdigest()


class StandIn:
    """A consent service answering the stalled subjects' lists after `delay` seconds."""

    def __init__(self, delay: float) -> None:
        self.stalled: set[str] = set()
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                subject = self.path.split("/")[3] if self.path.count("/") >= 4 else ""
                if subject in stand_in.stalled:
                    time.sleep(delay)
                body = json.dumps([]).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def _call(sender: str) -> Dict[str, Any]:
    return {
        "next_action": "action_list_consents",
        "sender_id": sender,
        "tracker": {"sender_id": sender, "slots": {}, "latest_message": {}, "events": []},
        "domain": {},
        "version": "3.6.21",
    }


def _start_action_server(project: Path, consent_url: str, log: Path) -> tuple[harness.Process, str]:
    port = harness.free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(project),
        "ACTION_SERVER_TOKEN": ACTION_TOKEN,
        "CONSENT_API_TOKEN": CONSENT_TOKEN,
        "CONSENT_API_URL": consent_url,
        "SUBJECT_PSEUDONYM_KEY": PSEUDONYM_KEY,
    }
    spec = harness.actions_spec(
        port, env, log, command=[sys.executable, "-m", "bot.action_server"], cwd=project,
        timeout=120, truncate_log=True,
    )  # fmt: skip
    try:
        return harness.run_ready(spec), f"http://127.0.0.1:{port}"
    except harness.StartError as error:
        raise SystemExit(str(error)) from None


def _measure(url: str, residents: int, requests_each: int) -> List[float]:
    """Latencies (seconds) of `residents` threads asking `requests_each` times, one by one."""
    latencies: List[float] = []
    lock = threading.Lock()
    headers = {"Authorization": f"Bearer {ACTION_TOKEN}"}

    def resident(index: int) -> None:
        # A new connection per request: Sanic closes idle keep-alive connections (5 s), and a
        # request sent on one it is closing would fail rather than measure anything.
        for n in range(requests_each):
            started = time.perf_counter()
            answer = requests.post(
                f"{url}/webhook", json=_call(f"other-{index}-{n}"), headers=headers, timeout=120
            )
            took = time.perf_counter() - started
            answer.raise_for_status()
            with lock:
                latencies.append(took)

    threads = [threading.Thread(target=resident, args=(i,)) for i in range(residents)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies


def _stall(
    url: str, stand_in: StandIn, count: int, stop: threading.Event
) -> List[threading.Thread]:
    headers = {"Authorization": f"Bearer {ACTION_TOKEN}"}

    def stalled(index: int) -> None:
        sender = f"stalled-{index}"
        stand_in.stalled.add(_subject(sender))
        while not stop.is_set():
            # Only the other residents' answers are measured; these may fail.
            with contextlib.suppress(requests.RequestException):
                requests.post(f"{url}/webhook", json=_call(sender), headers=headers, timeout=120)

    threads = [threading.Thread(target=stalled, args=(i,), daemon=True) for i in range(count)]
    for thread in threads:
        thread.start()
    return threads


def _run(
    project: Path, args: argparse.Namespace, requests_each: int
) -> tuple[List[float], List[float]]:
    """Latencies of the other residents without, then with, stalled residents."""
    stand_in = StandIn(args.delay)
    log = Path(tempfile.gettempdir()) / f"slow-consent-{os.getpid()}.log"
    process, url = _start_action_server(project, stand_in.url, log)
    try:
        _measure(url, 1, 5)  # warm-up: imports, the first pool thread
        baseline = _measure(url, args.residents, requests_each)
        stop = threading.Event()
        _stall(url, stand_in, args.stalled, stop)
        while len(stand_in.stalled) < args.stalled:
            time.sleep(0.01)
        time.sleep(args.delay / 2)  # the stalled calls are in flight before measuring
        slowed = _measure(url, args.residents, requests_each)
        stop.set()
    finally:
        process.stop()  # SIGKILL after 30 s: a loop held by a blocking call does not stop
    return baseline, slowed


def _row(tree: str, label: str, latencies: List[float]) -> str:
    ms = sorted(x * 1000 for x in latencies)
    p95 = ms[min(len(ms) - 1, round(0.95 * len(ms)) - 1)]
    return (
        f"| {tree} | {label} | {len(ms)} | {statistics.median(ms):.1f} | {p95:.1f} | {ms[-1]:.1f} |"
    )


def main() -> None:
    """Measure and write the section."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--delay", type=float, default=5.0, help="the stalled answers' delay (s)")
    parser.add_argument("--stalled", type=int, default=4, help="residents waiting on the service")
    parser.add_argument("--residents", type=int, default=4, help="other residents measured")
    parser.add_argument("--requests", type=int, default=50, help="requests per other resident")
    parser.add_argument("--project-root", type=Path, default=ROOT, help="tree to run actions of")
    parser.add_argument(
        "--before", type=Path, default=None, help="also measure this tree (an older export)"
    )
    parser.add_argument(
        "--before-requests", type=int, default=3, help="requests per resident on --before"
    )
    parser.add_argument("--no-write", action="store_true", help="print, do not write the doc")
    args = parser.parse_args()

    baseline, slowed = _run(args.project_root.resolve(), args, args.requests)
    rows = [
        "| tree | other residents' `action_list_consents` | requests | p50 ms | p95 ms | max ms |",
        "|---|---|---|---|---|---|",
        _row("this", "consent service answering everyone at once", baseline),
        _row("this", f"while {args.stalled} residents wait on {args.delay:g} s answers", slowed),
    ]
    if args.before is not None:
        old_baseline, old_slowed = _run(args.before.resolve(), args, args.before_requests)
        rows += [
            _row("before", "consent service answering everyone at once", old_baseline),
            _row(
                "before",
                f"while {args.stalled} residents wait on {args.delay:g} s answers",
                old_slowed,
            ),
        ]
    command = "`.venv/bin/python bench/slow_consent.py`"
    if args.before is not None:
        command = (
            "`git archive <commit> | tar -x -C /tmp/before && .venv/bin/python "
            "bench/slow_consent.py --before /tmp/before`"
        )
    before_note = (
        f" ({args.before_requests} on the tree before, whose turns took seconds)"
        if args.before is not None
        else ""
    )
    section = "\n".join(
        [
            MARK_START,
            "## Action server: other residents while the consent service is slow "
            "(`bench/slow_consent.py`)",
            "",
            f"Command: {command}. Machine: {platform.machine()}, {os.cpu_count()} cores, "
            f"Python {platform.python_version()}; measured {dt.date.today().isoformat()}.",
            "",
            f"One action server; a stand-in consent service answers {args.stalled} residents' "
            f"consent lists after {args.delay:g} s (the client's read timeout is 5 s, so those "
            f"calls are retried too) and everyone else's at once. {args.residents} other "
            f"residents each ask {args.requests} times{before_note}, one request after another.",
            "",
            *rows,
            MARK_END,
        ]
    )
    if args.no_write:
        print(section)
    else:
        write_section(section, REPORT, MARK_START, MARK_END)
        print("\n".join(rows))


if __name__ == "__main__":
    main()
