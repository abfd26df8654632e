"""The staff labelling loop (issue 15), Rasa's side: what `make staff-labels` writes is training
data `rasa data validate --fail-on-warnings` accepts beside `data/`, and the console's intent list
is the domain's.

The export is made by the consent service's own command in its own environment
(`.venv-backend`), from labels stored by its own functions on a throw-away SQLite database; the
validation is Rasa's command line, on a temporary copy of `data/` with the exported file added.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest
import yaml

from scripts.staff_label_intents import NOT_LABELS, TARGET, label_intents, render
from tests.conftest import PROJECT_ROOT

BACKEND_PYTHON = PROJECT_ROOT / ".venv-backend" / "bin" / "python"
RASA = PROJECT_ROOT / ".venv" / "bin" / "rasa"

# Labels as staff would give them: texts as the analytics tables keep them (the consumer's
# masking applied to what a resident typed), with brackets, a colon, a hash, quotes and a
# leading dash; one text labelled twice (the newer label wins); one new topic.
LABEL_SCRIPT = textwrap.dedent(
    """
    import datetime as dt, sys, uuid
    from sqlalchemy import select
    from consent_service.analytics import intake, store
    from consent_service.analytics.tables import AnalyticsEvent
    from consent_service.config import get_settings
    from consent_service.db import make_engine, make_sessionmaker
    from consent_service.main import prepare_database
    from consent_service.staff import labels
    from consent_service.staff.masking import mask

    LABELS = [
        ("私の健診結果を市に渡すと何がもらえるの", "ask_benefits"),
        ("データが間違ってたら直せる？電話は047-123-4567", "ask_correct_data"),
        ("[ポイント](data_item)って: 何 # に使えるの \\"本当に\\"", "ask_points"),
        ("- 取り消したら、もう渡したデータはどうなっちゃうの", "greet"),
        ("- 取り消したら、もう渡したデータはどうなっちゃうの", "ask_after_withdrawal"),
        ("市役所の駐車場は何台とめられる？", None),
    ]
    now = dt.datetime.now(dt.timezone.utc)
    settings = get_settings()
    engine = make_engine(settings.database_url)
    prepare_database(engine, settings, now)
    factory = make_sessionmaker(engine)
    intents = labels.label_intents()
    for number, (text, intent) in enumerate(LABELS):
        event = {"event": "user", "sender_id": f"rest-{number}", "timestamp": now.timestamp(),
                 "text": text, "input_channel": "rest", "message_id": uuid.uuid4().hex,
                 "parse_data": {"intent": {"name": "nlu_fallback", "confidence": 0.2}}}
        row = intake.facts(event, mask)
        with factory() as session, session.begin():
            store.write(session, [row])
            event_id = session.scalar(
                select(AnalyticsEvent.id).where(AnalyticsEvent.event_key == row["event_key"]))
            labels.record(session, event_id, intent, "駐車場の案内" if intent is None else "",
                          "henshu", now + dt.timedelta(seconds=number), intents)
    engine.dispose()
    """
)


def backend_env(work: Path) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(PROJECT_ROOT / "backend"),
        "CONSENT_DATABASE_URL": f"sqlite+pysqlite:///{work / 'consent.db'}",
        "CONSENT_API_TOKEN": "staff-labels-test-token-" + "0" * 32,
    }


def validate(data: Path) -> subprocess.CompletedProcess[str]:
    """`make validate`'s command on another data folder."""
    return subprocess.run(
        [str(RASA), "data", "validate", "--fail-on-warnings", "--config", "config.yml",
         "--domain", "domain.yml", "--data", str(data)],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def test_the_consoles_intent_list_is_the_domains() -> None:
    assert TARGET.read_text(encoding="utf-8") == render(label_intents()), (
        "stale: run .venv/bin/python scripts/staff_label_intents.py"
    )
    domain = yaml.safe_load((PROJECT_ROOT / "domain.yml").read_text(encoding="utf-8"))
    assert set(label_intents()) == set(domain["intents"]) - NOT_LABELS


@pytest.mark.skipif(not BACKEND_PYTHON.exists(), reason="make venv-backend builds it")
def test_the_export_passes_rasa_data_validate(tmp_path: Path) -> None:
    env = backend_env(tmp_path)
    subprocess.run([str(BACKEND_PYTHON), "-c", LABEL_SCRIPT], env=env, check=True,
                   capture_output=True, text=True, timeout=300)  # fmt: skip
    data = tmp_path / "data"
    shutil.copytree(PROJECT_ROOT / "data", data)
    out = data / "nlu" / "staff_labels.yml"
    out.unlink(missing_ok=True)
    written = subprocess.run(
        [str(BACKEND_PYTHON), "-m", "consent_service", "staff", "export-labels", "--out", str(out)],
        env=env, capture_output=True, text=True, timeout=300, cwd=PROJECT_ROOT,
    )  # fmt: skip
    assert written.returncode == 0, written.stderr
    assert "Wrote 4 labelled examples" in written.stdout
    text = out.read_text(encoding="utf-8")
    assert "047-123-4567" not in text and "4567" not in text  # masked texts only
    examples = {b["intent"]: b["examples"] for b in yaml.safe_load(text)["nlu"]}
    assert set(examples) == {"ask_benefits", "ask_correct_data", "ask_points",
                             "ask_after_withdrawal"}  # fmt: skip
    assert "市役所の駐車場" in text and "駐車場" not in str(examples)  # a new topic: a comment
    result = validate(data)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    # The same check refuses a file Rasa cannot use: the validation is no formality.
    out.write_text(text.replace("- intent: ask_points", "- intent: ask_parking"), "utf-8")
    assert validate(data).returncode != 0


def test_the_consoles_confidence_floor_is_the_fallback_threshold() -> None:
    """STAFF_LABEL_MIN_CONFIDENCE's default is config.yml's FallbackClassifier threshold.

    Read as text: the two environments never import each other (tests/test_separation.py).
    """
    pipeline = yaml.safe_load((PROJECT_ROOT / "config.yml").read_text(encoding="utf-8"))["pipeline"]
    [threshold] = [c["threshold"] for c in pipeline if c["name"] == "FallbackClassifier"]
    settings = (PROJECT_ROOT / "backend" / "consent_service" / "config.py").read_text("utf-8")
    found = re.search(r"staff_label_min_confidence: float = Field\(\s*default=([0-9.]+)", settings)
    assert found is not None and float(found.group(1)) == float(threshold)


def test_no_intent_only_a_channel_sends_is_offered_as_a_label() -> None:
    # e.g. `session_resumed` (a page resuming a session) was once offered for residents' words.
    from bot.channels.system_intents import SYSTEM_INTENTS

    offered = set(label_intents())
    assert "greet" in offered  # residents type greetings too
    assert not offered & (set(SYSTEM_INTENTS) - {"greet"})
    assert "nlu_fallback" not in offered
