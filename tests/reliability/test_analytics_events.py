"""The staff console's analytics under faults (issue 20): Rasa's event broker on RabbitMQ.

Runs on the production profile: two replicas publish every event through the Pika event broker
to a RabbitMQ node of the test's own (`ThrowAwayRabbitMQ`: the machine's RabbitMQ is a shared
service, never stopped), and `python -m consent_service consume` stores them in the consent
database. While residents keep talking, the consumer is SIGKILLed, then RabbitMQ is SIGKILLed,
and both are started again: in the end the analytics tables hold exactly the user and bot
events of Rasa's trackers — none lost, none twice.
"""

from __future__ import annotations

import signal
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Tuple

import pytest
from sqlalchemy import create_engine, text

from tests.reliability.conftest import Resident, Stack, wait_until

pytestmark = pytest.mark.reliability
QUESTIONS = ["情報銀行って何ですか？", "レベル2の情報って何？", "ありがとう"]
Key = Tuple[str, str, float]
# A resident's pace: under the channel's rate limit (RATE_LIMIT_MESSAGES 20 per 60 s, per
# resident), beyond which LINE messages are dropped unanswered by design.
PACE_SECONDS = 3.2


def _events(url: str, query: str) -> Counter[Key]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(text(query)).all()
    finally:
        engine.dispose()
    return Counter((str(sender), str(kind), round(float(at), 6)) for sender, kind, at in rows)


def in_trackers(prod: Stack) -> Counter[Key]:
    """The residents' and the assistant's messages in Rasa's tracker store."""
    return _events(
        prod.rasa_db_url,
        "SELECT sender_id, type_name, timestamp FROM events WHERE type_name IN ('user', 'bot')",
    )


def in_analytics(prod: Stack) -> Counter[Key]:
    """The same, as the consumer stored them for the staff console."""
    try:
        return _events(
            prod.consent_db_url,
            "SELECT sender, kind, timestamp FROM analytics_events WHERE kind IN ('user', 'bot')",
        )
    except Exception:  # not migrated yet
        return Counter()


def test_killing_the_consumer_and_rabbitmq_loses_no_event(prod: Stack) -> None:
    assert prod.rabbitmq is not None
    residents = [Resident(prod.line) for _ in range(4)]
    stop = threading.Event()
    turns = Counter[str]()

    def talk(resident: Resident) -> None:
        while not stop.is_set():
            resident.say(QUESTIONS[turns[resident.user] % len(QUESTIONS)])
            turns[resident.user] += 1
            time.sleep(PACE_SECONDS)

    with ThreadPoolExecutor(len(residents)) as pool:
        futures = [pool.submit(talk, r) for r in residents]

        def answered(more: int, since: int) -> bool:
            for future in futures:  # a resident left unanswered fails here, with the reason
                if future.done():
                    future.result()
            return sum(turns.values()) >= since + more

        wait_until(lambda: answered(4, 0) and len(in_analytics(prod)) > 0, 120)
        prod.stack.kill("consumer", signal.SIGKILL)  # mid-run: events wait in the queue
        seen = sum(turns.values())
        wait_until(lambda: answered(4, seen), 120)
        prod.rabbitmq.kill()  # RabbitMQ gone: the replicas keep what they cannot publish
        seen = sum(turns.values())
        wait_until(lambda: answered(4, seen), 120)  # residents still answered
        prod.rabbitmq.start()  # the same data folder: the durable queue and its messages
        prod.stack.start_consumer()
        seen = sum(turns.values())
        wait_until(lambda: answered(4, seen), 120)
        stop.set()
        for future in futures:
            future.result(timeout=120)
    expected = in_trackers(prod)
    assert expected
    senders = {sender for sender, _, _ in expected}
    assert len(senders) == len(residents)
    wait_until(lambda: in_analytics(prod) == expected, 180)
    time.sleep(3)  # re-published or redelivered copies would have arrived by now
    assert in_analytics(prod) == expected
