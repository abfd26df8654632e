"""The fake LINE platform's multicast (tests/line_fake.py): LINE's OpenAPI, its retry key rules
and the faults tests inject (issue 17's notice sender is tested against it)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.line_fake import MULTICAST, FakeLineApi, multicast_counts

TOKEN = "unit-line-access-token"
ALICE, BOB = "U" + "a" * 32, "U" + "b" * 32
TEXT = {"type": "text", "text": "健診のお知らせです。"}


@pytest.fixture
def fake() -> Iterator[FakeLineApi]:
    with FakeLineApi(TOKEN) as running:
        yield running


def multicast(
    fake: FakeLineApi, key: str | None, body: Any = None, token: str = TOKEN
) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"}
    if key is not None:
        headers["X-Line-Retry-Key"] = key
    body = {"to": [ALICE, BOB], "messages": [TEXT]} if body is None else body
    return requests.post(fake.url + MULTICAST, json=body, headers=headers, timeout=10)


def test_a_valid_multicast_is_delivered_and_recorded_with_its_headers(fake: FakeLineApi) -> None:
    key = str(uuid.uuid4())
    answer = multicast(fake, key)
    assert answer.status_code == 200 and answer.json() == {}
    assert answer.headers["x-line-request-id"]
    [call] = fake.sent(MULTICAST)
    assert call.problems == [] and call.status == 200
    assert call.headers["x-line-retry-key"] == key and call.headers["authorization"]
    [delivery] = fake.delivered
    assert (delivery.retry_key, delivery.to, delivery.messages) == (key, [ALICE, BOB], [TEXT])
    assert multicast_counts(fake.delivered) == {ALICE: 1, BOB: 1}


def test_an_accepted_retry_key_gets_409_and_delivers_nothing_again(fake: FakeLineApi) -> None:
    key = str(uuid.uuid4())
    first = multicast(fake, key)
    again = multicast(fake, key.upper())  # the same UUID
    assert again.status_code == 409
    assert again.headers["x-line-accepted-request-id"] == first.headers["x-line-request-id"]
    assert len(fake.delivered) == 1 and [c.status for c in fake.sent(MULTICAST)] == [200, 409]
    assert multicast(fake, str(uuid.uuid4())).status_code == 200  # a new key is a new request
    assert multicast_counts(fake.delivered) == {ALICE: 2, BOB: 2}


@pytest.mark.parametrize(
    ("key", "body", "token", "problem"),
    [
        (None, None, TOKEN, "multicast without a UUID X-Line-Retry-Key"),
        ("not-a-uuid", None, TOKEN, "multicast without a UUID X-Line-Retry-Key"),
        ("k", {"to": [ALICE], "messages": []}, TOKEN, "['messages']"),
        ("k", {"to": [], "messages": [TEXT]}, TOKEN, "['to']"),
        ("k", {"to": [ALICE] * 501, "messages": [TEXT]}, TOKEN, "['to']"),
        ("k", {"to": [ALICE], "messages": [{"type": "text"}]}, TOKEN, "'text' is a required"),
        ("k", {"to": ["alice"], "messages": [TEXT]}, TOKEN, "not a user id"),
        ("k", {"to": [ALICE, ALICE], "messages": [TEXT]}, TOKEN, "names a user twice"),
        ("k", None, "wrong-token", "missing or wrong Authorization"),
    ],
)
def test_an_invalid_multicast_is_refused_and_delivers_nothing(
    fake: FakeLineApi, key: str | None, body: Any, token: str, problem: str
) -> None:
    key = str(uuid.uuid4()) if key == "k" else key
    answer = multicast(fake, key, body, token)
    assert answer.status_code == 400
    [call] = fake.sent(MULTICAST)
    assert any(problem in p for p in call.problems), call.problems
    assert fake.delivered == [] and fake.accepted == {}


def test_a_retry_key_on_an_api_that_takes_none_is_a_problem(fake: FakeLineApi) -> None:
    answer = requests.post(
        fake.url + "/v2/bot/message/reply",
        json={"replyToken": "r", "messages": [TEXT]},
        headers={"Authorization": f"Bearer {TOKEN}", "X-Line-Retry-Key": str(uuid.uuid4())},
        timeout=10,
    )
    assert answer.status_code == 400
    assert fake.sent()[0].problems == [
        "X-Line-Retry-Key on /v2/bot/message/reply, which does not take one"
    ]


def test_429_once_is_not_accepted_and_the_same_key_is_delivered_later(fake: FakeLineApi) -> None:
    fake.fail_multicast(429, retry_after=3)
    key = str(uuid.uuid4())
    refused = multicast(fake, key)
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "3"
    assert fake.delivered == []
    assert multicast(fake, key).status_code == 200
    assert multicast_counts(fake.delivered) == {ALICE: 1, BOB: 1}


def test_a_fault_after_n_calls_with_the_answer_lost(fake: FakeLineApi) -> None:
    """The second call is delivered but answered 500: its retry gets 409, nobody gets it twice."""
    fake.fail_multicast(500, after=1, accept=True)
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    assert multicast(fake, first).status_code == 200
    assert multicast(fake, second, {"to": [BOB], "messages": [TEXT]}).status_code == 500
    assert multicast(fake, second, {"to": [BOB], "messages": [TEXT]}).status_code == 409
    assert multicast_counts(fake.delivered) == {ALICE: 1, BOB: 2}  # one per accepted key
    assert [d.retry_key for d in fake.deliveries_to(BOB)] == [first, second]


def test_a_held_call_is_delivered_before_its_answer(fake: FakeLineApi) -> None:
    hold = fake.hold_multicast(after=1)
    answers: list[int] = []
    assert multicast(fake, str(uuid.uuid4())).status_code == 200
    key = str(uuid.uuid4())
    caller = threading.Thread(target=lambda: answers.append(multicast(fake, key).status_code))
    caller.start()
    assert hold.reached.wait(10)
    assert answers == [] and fake.delivered[-1].retry_key == key  # accepted, not yet answered
    hold.release()
    caller.join(10)
    assert answers == [200]
    assert multicast(fake, key).status_code == 409


def test_a_held_call_that_is_not_accepted_delivers_nothing(fake: FakeLineApi) -> None:
    hold = fake.hold_multicast(accept=False)
    hold.release()  # answered at once: 500, nothing accepted
    key = str(uuid.uuid4())
    assert multicast(fake, key).status_code == 500 and fake.delivered == []
    assert multicast(fake, key).status_code == 200 and len(fake.delivered) == 1


def test_a_409_does_not_use_up_an_injected_fault(fake: FakeLineApi) -> None:
    key = str(uuid.uuid4())
    assert multicast(fake, key).status_code == 200
    fake.fail_multicast(429)
    assert multicast(fake, key).status_code == 409  # LINE fails nothing it already accepted
    assert multicast(fake, str(uuid.uuid4())).status_code == 429
