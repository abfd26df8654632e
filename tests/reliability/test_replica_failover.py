"""A Rasa replica dies while 20 residents give consent on LINE; the other replica carries on.

Each resident goes through a whole level-1 consent (ask, choose the offer, confirm) — a
conversation whose later steps depend on the state of the earlier ones. One replica is killed
(SIGKILL) once a third of all messages are answered. Every message must get an answer, and every
resident exactly one consent: nothing lost, nothing done twice.
"""

from __future__ import annotations

import signal
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.reliability.conftest import RECORDED, Resident, Stack, wait_until

pytestmark = pytest.mark.reliability

RESIDENTS = 20
TURNS_EACH = 3


def test_killing_a_replica_loses_no_message_and_no_conversation(prod: Stack) -> None:
    residents = [Resident(prod.line) for _ in range(RESIDENTS)]
    finals = {}
    errors = []
    lock = threading.Lock()

    def converse(resident: Resident) -> None:
        try:
            resident.up_to_read_back()
            finals[resident.user] = resident.say("はい")
        except BaseException as error:  # recorded and asserted below, with the others
            with lock:
                errors.append(f"{resident.user}: {error!r}")

    with ThreadPoolExecutor(RESIDENTS) as pool:
        futures = [pool.submit(converse, r) for r in residents]
        wait_until(lambda: sum(r.turns for r in residents) >= RESIDENTS * TURNS_EACH // 3, 180)
        prod.stack.kill("rasa-0", signal.SIGKILL)
        for future in futures:
            future.result()

    assert errors == []
    assert sum(r.turns for r in residents) == RESIDENTS * TURNS_EACH
    for resident in residents:
        assert any(RECORDED in t for t in finals[resident.user].texts), finals[resident.user]
    consents = prod.consents()
    assert len(consents) == RESIDENTS and set(consents.values()) == {1}
    assert "rasa-0" not in prod.stack.processes and prod.stack.processes["rasa-1"].poll() is None
