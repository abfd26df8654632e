"""The labelling loop (issue 15): editors label what the assistant did not understand, the labels
are exported as Rasa NLU YAML with masked text only, and the running assistant is asked again.

The messages reach the console the way Rasa's do: published events through the consumer's
intake (`analytics.intake.facts`, masking included) into the analytics tables. The positive
answer of Rasa's `/model/parse` needs a running assistant: tests/e2e/test_staff_labels.py.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pyotp
import pytest
import yaml
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from consent_service.analytics import intake, store
from consent_service.analytics.tables import AnalyticsEvent
from consent_service.config import Settings
from consent_service.main import create_app
from consent_service.models import StaffAccessLog
from consent_service.staff import auth, labels
from consent_service.staff.masking import mask
from scripts.harness import free_port
from tests.backend.conftest import START, Clock

PASSWORD = "correct horse battery staple"
NOW = START  # 2026-11-30 12:00 in Japan
PHONE = "047-123-4567"
MISSED = f"データが間違ってたら直せる？電話は{PHONE}です"
OTHER = "取り消したらもう渡したデータはどうなるの"


closed_port = free_port  # a port nothing listens on (Rasa down)


@pytest.fixture
def console(settings: Settings, engine: Engine) -> Iterator[TestClient]:
    configured = settings.model_copy(
        update={
            "staff_rasa_url": f"http://127.0.0.1:{closed_port()}",
            "staff_mask_with_ginza": False,
        }
    )
    app = create_app(configured, engine=engine, clock=Clock(NOW))
    with TestClient(app, base_url="https://testserver") as client:
        yield client


def publish(client: TestClient, text: str, intent: str, minutes_ago: int = 60) -> int:
    """A resident's message as Rasa publishes it, stored by the consumer's intake; its row id."""
    at = (NOW - dt.timedelta(minutes=minutes_ago)).timestamp()
    event = {
        "event": "user", "sender_id": "rest-" + uuid.uuid4().hex[:8], "timestamp": at,
        "text": text, "input_channel": "rest", "message_id": uuid.uuid4().hex,
        "parse_data": {"intent": {"name": intent, "confidence": 0.31}},
    }  # fmt: skip
    row = intake.facts(event, mask)
    assert row is not None
    with client.app.state.sessionmaker() as session, session.begin():
        store.write(session, [row])
        return int(
            session.scalar(
                select(AnalyticsEvent.id).where(AnalyticsEvent.event_key == row["event_key"])
            )
        )


def add_user(client: TestClient, name: str, role: str) -> str:
    with client.app.state.sessionmaker() as session, session.begin():
        return auth.create_user(session, name, PASSWORD, role, NOW, client.app.state.settings)


def log_in(client: TestClient, name: str, role: str) -> str:
    """Log a new account of `role` in; return the session's CSRF token (from the labels page)."""
    secret = add_user(client, name, role)
    form = client.get("/staff/login").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', form).group(1)
    client.post(
        "/staff/login",
        data={"username": name, "password": PASSWORD, "code": pyotp.TOTP(secret).at(NOW),
              "csrf": csrf},
        follow_redirects=False,
    )  # fmt: skip
    page = client.get("/staff/labels")
    assert page.status_code == 200, page.text
    return re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)


def stored_labels(client: TestClient) -> list[labels.StaffLabel]:
    with client.app.state.sessionmaker() as session:
        found = labels.labels(session)
        session.expunge_all()
        return found


def access(client: TestClient, action: str) -> list[StaffAccessLog]:
    with client.app.state.sessionmaker() as session:
        query = select(StaffAccessLog).where(StaffAccessLog.action == action)
        return list(session.scalars(query))


def test_the_intent_list_is_the_packaged_file() -> None:
    intents = labels.label_intents()
    assert "ask_benefits" in intents and "ask_correct_data" in intents
    assert "nlu_fallback" not in intents and "personal_detail_removed" not in intents


def test_an_editor_labels_a_not_understood_message_masked_and_logged(console: TestClient) -> None:
    event_id = publish(console, MISSED, "nlu_fallback")
    csrf = log_in(console, "henshu", "editor")
    page = console.get("/staff/labels").text
    assert "データが間違ってたら直せる" in page and PHONE not in page
    assert 'action="/staff/labels"' in page and '<option value="ask_correct_data"' in page
    answer = console.post(
        "/staff/labels",
        data={"event_id": event_id, "intent": "ask_correct_data", "csrf": csrf,
              "text": "an unmasked text from the form " + PHONE},
        follow_redirects=False,
    )  # fmt: skip
    assert answer.status_code == 303 and "done=label" in answer.headers["location"]
    [label] = stored_labels(console)
    assert label.intent == "ask_correct_data" and label.labelled_by == "henshu"
    # copied from the analytics tables (masked), never the form's
    assert label.text == mask(MISSED) and PHONE not in label.text
    [logged] = access(console, "label")
    assert logged.username == "henshu"
    assert logged.target == f"event={event_id} intent=ask_correct_data"
    assert "直せる" not in logged.target  # the access log names the message, not its text
    shown = console.get("/staff/labels").text
    assert "未確認" in shown and "（ラベル：ask_correct_data）" in shown


def test_labelling_needs_the_editor_or_admin_role(console: TestClient) -> None:
    event_id = publish(console, MISSED, "nlu_fallback")
    csrf = log_in(console, "etsuran", "viewer")
    page = console.get("/staff/labels").text
    assert "データが間違ってたら直せる" in page and 'action="/staff/labels"' not in page
    answer = console.post(
        "/staff/labels",
        data={"event_id": event_id, "intent": "ask_correct_data", "csrf": csrf},
        follow_redirects=False,
    )
    assert answer.status_code == 302 and answer.headers["location"] == "/staff/labels"
    checked = console.post("/staff/labels/check", data={"csrf": csrf}, follow_redirects=False)
    assert checked.status_code == 302
    assert stored_labels(console) == [] and access(console, "label") == []
    assert access(console, "label_check") == []


def test_counter_staff_see_no_labels(console: TestClient) -> None:
    publish(console, MISSED, "nlu_fallback")
    secret = add_user(console, "madoguchi", "counter")
    form = console.get("/staff/login").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', form).group(1)
    console.post(
        "/staff/login",
        data={"username": "madoguchi", "password": PASSWORD,
              "code": pyotp.TOTP(secret).at(NOW), "csrf": csrf},
    )  # fmt: skip
    answer = console.get("/staff/labels", follow_redirects=False)
    assert answer.status_code == 302 and answer.headers["location"] == "/staff/counter"


def test_an_admin_may_label_too(console: TestClient) -> None:
    event_id = publish(console, MISSED, "nlu_fallback")
    csrf = log_in(console, "kanri", "admin")
    console.post("/staff/labels", data={"event_id": event_id, "intent": "ask_correct_data",
                                        "csrf": csrf})  # fmt: skip
    assert [label.labelled_by for label in stored_labels(console)] == ["kanri"]


def test_labelling_needs_the_sessions_csrf_token(console: TestClient) -> None:
    event_id = publish(console, MISSED, "nlu_fallback")
    log_in(console, "henshu", "editor")
    for csrf in ("", "forged-token"):
        answer = console.post(
            "/staff/labels",
            data={"event_id": event_id, "intent": "ask_correct_data", "csrf": csrf},
            follow_redirects=False,
        )
        assert answer.status_code in (303, 422)
    assert stored_labels(console) == [] and access(console, "label") == []


def test_only_not_understood_messages_and_known_intents(console: TestClient) -> None:
    understood = publish(console, "情報銀行って何ですか", "ask_info_bank")
    missed = publish(console, MISSED, "nlu_fallback")
    csrf = log_in(console, "henshu", "editor")
    refused = console.post(
        "/staff/labels",
        data={"event_id": understood, "intent": "greet", "csrf": csrf},
        follow_redirects=False,
    )
    assert "error=message" in refused.headers["location"]
    unknown = console.post(
        "/staff/labels",
        data={"event_id": missed, "intent": "drop_tables", "csrf": csrf},
        follow_redirects=False,
    )
    assert "error=intent" in unknown.headers["location"]
    absent = console.post("/staff/labels", data={"event_id": 999999, "intent": "greet",
                                                 "csrf": csrf}, follow_redirects=False)  # fmt: skip
    assert "error=message" in absent.headers["location"]
    assert stored_labels(console) == []
    assert "意図が一覧にありません" in console.get(unknown.headers["location"]).text


def test_a_new_label_replaces_the_old_and_a_new_topic_notes_masked(console: TestClient) -> None:
    event_id = publish(console, MISSED, "nlu_fallback")
    csrf = log_in(console, "henshu", "editor")
    console.post("/staff/labels", data={"event_id": event_id, "intent": "ask_correct_data",
                                        "csrf": csrf})  # fmt: skip
    console.post(
        "/staff/labels",
        data={"event_id": event_id, "intent": "__new_topic__", "csrf": csrf,
              "note": f"訂正の方法を案内したい（{PHONE}）"},
    )  # fmt: skip
    [label] = stored_labels(console)
    assert label.new_topic and label.intent is None
    assert "訂正の方法を案内したい" in label.note and PHONE not in label.note
    assert [e.target for e in access(console, "label")][-1] == f"event={event_id} intent=new_topic"


def test_the_export_is_rasa_nlu_yaml_of_masked_texts(console: TestClient) -> None:
    first = publish(console, MISSED, "nlu_fallback")
    second = publish(console, OTHER, "nlu_fallback")
    third = publish(console, "[ポイント](data_item)は何に使える？", "nlu_fallback")
    csrf = log_in(console, "henshu", "editor")
    for event_id, intent, note in [(first, "ask_correct_data", ""),
                                   (second, "__new_topic__", f"取り消し後のデータ {PHONE}"),
                                   (third, "ask_points", "")]:  # fmt: skip
        console.post("/staff/labels", data={"event_id": event_id, "intent": intent, "csrf": csrf,
                                            "note": note})  # fmt: skip
    with console.app.state.sessionmaker() as session:
        text = labels.export_yaml(session, labels.label_intents(), NOW)
    assert PHONE not in text and "4567" not in text
    data = yaml.safe_load(text)
    assert data["version"] == "3.1"
    examples = {block["intent"]: block["examples"] for block in data["nlu"]}
    assert set(examples) == {"ask_correct_data", "ask_points"}
    assert examples["ask_correct_data"] == f"- {mask(MISSED)}\n"
    # no entity annotation; NFKC made the question mark ASCII
    assert examples["ask_points"] == "- ［ポイント］（data_item）は何に使える?\n"
    assert OTHER not in str(data)  # a new topic is no example ...
    assert f'#   new topic: "{OTHER}"\n' in text  # ... but a comment
    # ... without the staff's note: notes are for staff, never training data
    assert "取り消し後のデータ" not in text
    with console.app.state.sessionmaker() as session:  # an intent gone from the domain
        assert "no longer in the domain" in labels.export_yaml(session, ["ask_points"], NOW)


def test_the_export_without_labels_is_still_valid(console: TestClient) -> None:
    with console.app.state.sessionmaker() as session:
        data = yaml.safe_load(labels.export_yaml(session, labels.label_intents(), NOW))
    assert data == {"version": "3.1", "nlu": []}


def test_the_cli_writes_the_export(
    console: TestClient, settings: Settings, tmp_path: Path, monkeypatch
) -> None:
    from consent_service.__main__ import main as cli
    from consent_service.config import get_settings

    event_id = publish(console, MISSED, "nlu_fallback")
    csrf = log_in(console, "henshu", "editor")
    console.post("/staff/labels", data={"event_id": event_id, "intent": "ask_correct_data",
                                        "csrf": csrf})  # fmt: skip
    monkeypatch.setenv("CONSENT_DATABASE_URL", settings.consent_database_url)
    monkeypatch.setenv("CONSENT_API_TOKEN", settings.consent_api_token.get_secret_value())
    get_settings.cache_clear()
    out = tmp_path / "staff_labels.yml"
    try:
        assert cli(["staff", "export-labels", "--out", str(out)]) == 0
        assert cli(["staff", "export-labels"]) == 2
    finally:
        get_settings.cache_clear()
    data = yaml.safe_load(out.read_text(encoding="utf-8"))
    assert data["nlu"] == [{"intent": "ask_correct_data", "examples": f"- {mask(MISSED)}\n"}]


def test_recheck_fails_soft_when_rasa_is_down(console: TestClient) -> None:
    event_id = publish(console, MISSED, "nlu_fallback")
    csrf = log_in(console, "henshu", "editor")
    console.post("/staff/labels", data={"event_id": event_id, "intent": "ask_correct_data",
                                        "csrf": csrf})  # fmt: skip
    answer = console.post("/staff/labels/check", data={"csrf": csrf})
    assert answer.status_code == 200
    assert "アシスタント（Rasa）に問い合わせできませんでした" in answer.text
    assert "未確認" in answer.text
    [label] = stored_labels(console)
    assert label.checked_at is None
    [logged] = access(console, "label_check")
    assert logged.target.startswith("rasa_unavailable ConnectError")
    assert console.post("/staff/labels/check", data={"csrf": "forged"}).status_code == 200
    assert len(access(console, "label_check")) == 1  # without the token nothing is asked


def test_understood_compares_the_label_and_the_confidence() -> None:
    label = labels.StaffLabel(intent="ask_points", note="", text="x")
    assert label.understood(0.55) is None  # not checked yet
    label.checked_at = NOW
    label.parsed_intent, label.parsed_confidence = "ask_points", 0.9
    assert label.understood(0.55) is True
    label.parsed_confidence = 0.5
    assert label.understood(0.55) is False
    label.parsed_intent, label.parsed_confidence = "nlu_fallback", 0.9
    assert label.understood(0.55) is False
    assert labels.StaffLabel(intent=None, checked_at=NOW).understood(0.55) is None


def test_the_models_answers_are_kept_with_the_labels_and_shown(console: TestClient) -> None:
    """What 再確認 stores once Rasa answered (the call itself: tests/e2e/test_staff_labels.py)."""
    first = publish(console, MISSED, "nlu_fallback")
    second = publish(console, OTHER, "nlu_fallback")
    csrf = log_in(console, "henshu", "editor")
    for event_id, intent in [(first, "ask_correct_data"), (second, "ask_after_withdrawal")]:
        console.post("/staff/labels", data={"event_id": event_id, "intent": intent, "csrf": csrf})
    with console.app.state.sessionmaker() as session:
        assert labels.to_check(session) == sorted([mask(MISSED), OTHER])
    answers = {
        mask(MISSED): labels.Parsed("ask_correct_data", 0.91),
        OTHER: labels.Parsed("nlu_fallback", 0.55),
    }
    with console.app.state.sessionmaker() as session, session.begin():
        assert labels.store_answers(session, answers, NOW) == 2
    page = console.get("/staff/labels").text
    assert "理解できるようになりました（ask_correct_data 0.91）" in page
    assert "まだ理解できません（nlu_fallback 0.55）" in page
    # labelled again after the texts were read: the old answer is not kept for the new intent
    console.app.state.clock.now = NOW + dt.timedelta(minutes=5)
    console.post("/staff/labels", data={"event_id": second, "intent": "ask_retention",
                                        "csrf": csrf})  # fmt: skip
    with console.app.state.sessionmaker() as session, session.begin():
        assert labels.store_answers(session, answers, NOW) == 1
    assert "未確認" in console.get("/staff/labels").text


def test_viewing_the_labels_is_in_the_access_log(console: TestClient) -> None:
    publish(console, MISSED, "nlu_fallback")
    log_in(console, "etsuran", "viewer")  # opens the labels page once
    console.get("/staff/labels?start=2026-11-29&end=2026-11-30")
    logged = access(console, "view_labels")
    assert [e.username for e in logged] == ["etsuran", "etsuran"]
    assert logged[-1].target == "2026-11-29..2026-11-30 all"
    assert "直せる" not in " ".join(e.target for e in logged)


def test_labels_go_with_the_analytics_retention(console: TestClient) -> None:
    """A label copies a message's text: it is deleted with the message (or when as old)."""
    from consent_service.analytics import consumer

    old = publish(console, MISSED, "nlu_fallback", minutes_ago=60)
    recent = publish(console, OTHER, "nlu_fallback", minutes_ago=10)
    csrf = log_in(console, "henshu", "editor")
    for event_id in (old, recent):
        console.post("/staff/labels", data={"event_id": event_id, "intent": "ask_correct_data",
                                            "csrf": csrf})  # fmt: skip
    factory = console.app.state.sessionmaker
    later = NOW + dt.timedelta(days=30, minutes=-30)  # the cutoff: between the two messages
    consumer.Retention(factory, days=30, clock=lambda: later)()
    assert [label.analytics_event_id for label in stored_labels(console)] == [recent]
    with factory() as session, session.begin():  # a label as old as the retention goes too
        assert labels.purge(session, NOW + dt.timedelta(minutes=1)) == 1
    assert stored_labels(console) == []


def test_the_retention_command_deletes_old_labels(
    console: TestClient, settings: Settings, monkeypatch
) -> None:
    from consent_service.__main__ import main as cli
    from consent_service.config import get_settings

    old = publish(console, MISSED, "nlu_fallback", minutes_ago=60 * 24 * 30)
    csrf = log_in(console, "henshu", "editor")
    console.post("/staff/labels", data={"event_id": old, "intent": "ask_correct_data",
                                        "csrf": csrf})  # fmt: skip
    assert len(stored_labels(console)) == 1
    monkeypatch.setenv("CONSENT_DATABASE_URL", settings.consent_database_url)
    monkeypatch.setenv("CONSENT_API_TOKEN", settings.consent_api_token.get_secret_value())
    monkeypatch.setenv("ANALYTICS_RETENTION_DAYS", "7")
    get_settings.cache_clear()
    try:
        assert cli(["retention"]) == 0
    finally:
        get_settings.cache_clear()
    assert stored_labels(console) == []
