"""Duplicate LINE deliveries, consent service and action server restarts, a PostgreSQL restart.

Runs on the production profile (two replicas behind nginx, PostgreSQL, Redis).
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.reliability.conftest import (
    RECORDED,
    VITALS,
    Resident,
    Stack,
    http_ok,
    wait_until,
)

pytestmark = pytest.mark.reliability


def test_duplicate_deliveries_get_one_answer_each(prod: Stack) -> None:
    line = prod.line
    events = [line.text_event(Resident(line).user, "情報銀行って何ですか？") for _ in range(10)]
    # Each event delivered three times at once: nginx spreads the copies over both replicas.
    with ThreadPoolExecutor(30) as pool:
        list(pool.map(lambda e: line.deliver([dict(e)]), [e for e in events for _ in range(3)]))
    for event in events:
        user = event["source"]["userId"]
        wait_until(
            lambda e=event, u=user: line.replies_for(e["replyToken"]) + len(line.pushes_to(u)) >= 1
        )
    time.sleep(2)  # late copies would have answered by now
    for event in events:
        user = event["source"]["userId"]
        assert line.replies_for(event["replyToken"]) + len(line.pushes_to(user)) == 1


def test_consent_service_restarts_during_submissions_one_consent_each(prod: Stack) -> None:
    residents = [Resident(prod.line) for _ in range(10)]
    with ThreadPoolExecutor(10) as pool:
        list(pool.map(lambda r: r.up_to_read_back(), residents))
    before = prod.consents()
    outcomes: dict[str, int] = {}
    lock = threading.Lock()

    def confirm(resident: Resident) -> None:
        # Says yes until the assistant says it recorded the consent (after an apology, again).
        for _ in range(10):
            answer = resident.say("はい")
            if any(RECORDED in t for t in answer.texts):
                with lock:
                    outcomes[resident.user] = outcomes.get(resident.user, 0) + 1
                return
            time.sleep(1)

    with ThreadPoolExecutor(10) as pool:
        futures = [pool.submit(confirm, r) for r in residents]
        time.sleep(0.05)
        prod.stack.kill("consent", signal.SIGKILL)  # mid-submission for some of them
        time.sleep(2)
        prod.stack.start_consent()
        for future in futures:
            future.result()

    assert len(outcomes) == 10 and set(outcomes.values()) == {1}
    after = prod.consents()
    new = {s: n - before.get(s, 0) for s, n in after.items() if n != before.get(s, 0)}
    assert len(new) == 10 and set(new.values()) == {1}


GOODBYE = "ご利用ありがとうございました"
NOT_UNDERSTOOD = "うまく理解できませんでした"


def test_a_new_conversation_starts_while_the_action_servers_are_down(prod: Stack) -> None:
    # `action_session_start` is a custom action: with no action server Rasa 3.6 would keep no
    # session start, and the first message would be answered with the fallback (bot/server.py).
    actions = [name for name in prod.stack.processes if name.startswith("actions-")]
    assert actions
    for name in actions:
        prod.stack.kill(name, signal.SIGKILL)
    resident = Resident(prod.line)
    try:
        answer = resident.say("さようなら")
    finally:
        for index in range(len(actions)):
            prod.stack.start_actions(index)
    assert any(GOODBYE in t for t in answer.texts), answer
    assert not any(NOT_UNDERSTOOD in t for t in answer.texts), answer
    # The same conversation goes on with the action servers back: the session had started.
    offers = resident.until_reachable(lambda: resident.say("同意の手続きをしたいです"))
    assert VITALS in offers.postbacks, offers


@pytest.mark.skipif(shutil.which("pg_ctlcluster") is None, reason="needs pg_ctlcluster (Debian)")
def test_postgresql_restart_mid_run_loses_nothing(prod: Stack) -> None:
    residents = [Resident(prod.line) for _ in range(8)]
    before = prod.consents()
    errors = []

    def converse(resident: Resident) -> None:
        try:
            resident.up_to_read_back()
            answer = resident.say("はい")
            for _ in range(10):
                if any(RECORDED in t for t in answer.texts):
                    return
                time.sleep(1)
                answer = resident.say("はい")
            errors.append(f"{resident.user}: never recorded")
        except BaseException as error:
            errors.append(f"{resident.user}: {error!r}")

    with ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(converse, r) for r in residents]
        wait_until(lambda: sum(r.turns for r in residents) >= 6, 120)
        restart = [str(shutil.which("pg_ctlcluster")), "15", "main", "restart"]
        subprocess.run(restart, check=True, timeout=120)
        for future in futures:
            future.result()

    assert errors == []
    assert http_ok(f"http://127.0.0.1:{prod.stack.ports.consent}/health")
    after = prod.consents()
    new = {s: n - before.get(s, 0) for s, n in after.items() if n != before.get(s, 0)}
    assert len(new) == 8 and set(new.values()) == {1}
