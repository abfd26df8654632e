"""The state replicas share: event claims and rate limits, in memory and in a real Redis."""

from __future__ import annotations

import asyncio
import os
import uuid
from typing import Any, AsyncIterator

import pytest

from bot.settings import Settings
from bot.shared_state import (
    DONE_SECONDS,
    Claim,
    MemoryState,
    RateLimit,
    RedisState,
    rate_verdict,
    wait_for_claim,
    within_budget,
)

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


@pytest.fixture(params=["memory", "redis"])
async def state(request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    if request.param == "memory":
        yield MemoryState(limit=100)
        return
    import redis.asyncio as redis

    client = redis.Redis.from_url(REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
    try:
        await client.ping()
    except Exception:
        await client.close()
        if os.environ.get("CI") == "true":
            pytest.fail(f"Redis is required in CI and not reachable at {REDIS_URL}")
        pytest.skip(f"Redis not reachable at {REDIS_URL}: start redis-server to run these")
    prefix = f"test-{uuid.uuid4().hex}"
    yield RedisState(client, prefix)
    keys = [key async for key in client.scan_iter(f"{prefix}:*")]
    if keys:
        await client.delete(*keys)
    await client.close()


async def test_an_event_is_claimed_once_then_done(state: Any) -> None:
    assert await state.claim("e1", 5) is Claim.NEW
    assert await state.claim("e1", 5) is Claim.BUSY
    await state.finish("e1")
    assert await state.claim("e1", 5) is Claim.DONE


async def test_a_released_event_can_be_claimed_again(state: Any) -> None:
    assert await state.claim("e2", 5) is Claim.NEW
    await state.release("e2")
    assert await state.claim("e2", 5) is Claim.NEW


async def test_a_kept_value_is_read_until_forgotten_or_expired(state: Any) -> None:
    await state.keep("k1", "答え", 5)
    await state.keep("k2", "別の答え", 0.2)
    assert await state.kept("k1") == "答え"
    await state.forget("k1")
    await state.forget("never-kept")  # forgetting nothing is no error
    assert await state.kept("k1") is None
    await asyncio.sleep(0.3)
    assert await state.kept("k2") is None


async def test_a_claim_of_a_dead_replica_expires(state: Any) -> None:
    assert await state.claim("e3", 0.3) is Claim.NEW
    assert await wait_for_claim(state, "e3", 0.3, poll=0.05) is Claim.NEW


async def test_a_copy_waits_for_the_first_and_is_then_skipped(state: Any) -> None:
    assert await state.claim("e4", 5) is Claim.NEW

    async def first_finishes() -> None:
        await asyncio.sleep(0.2)
        await state.finish("e4")

    finisher = asyncio.ensure_future(first_finishes())
    assert await wait_for_claim(state, "e4", 5, poll=0.05) is Claim.DONE
    await finisher


async def test_rate_limit_allows_tells_once_then_drops(state: Any) -> None:
    limit = RateLimit(state, messages=3, seconds=60)
    verdicts = [await limit.verdict("resident-a") for _ in range(6)]
    assert verdicts == ["ok", "ok", "ok", "tell", "drop", "drop"]
    assert await limit.verdict("resident-b") == "ok"


async def test_no_limit_when_zero(state: Any) -> None:
    limit = RateLimit(state, messages=0, seconds=60)
    assert {await limit.verdict("r") for _ in range(50)} == {"ok"}


def test_memory_state_is_bounded() -> None:
    memory = MemoryState(limit=3)

    async def fill() -> None:
        for n in range(10):
            await memory.claim(f"k{n}", 60)
            await memory.count(f"c{n}", 60)

    asyncio.run(fill())
    assert len(memory._claims) == 3 and len(memory._counts) == 3


class _Unreachable(MemoryState):
    async def count(self, key: str, seconds: int) -> int:
        raise ConnectionError("redis down")


async def test_rate_verdict_uses_the_settings_and_answers_when_redis_is_down() -> None:
    settings = Settings(rate_limit_messages=1, rate_limit_seconds=60)
    memory = MemoryState()
    assert [await rate_verdict(memory, settings, "line:a") for _ in range(3)] == [
        "ok", "tell", "drop",
    ]  # fmt: skip
    assert await rate_verdict(_Unreachable(), settings, "line:a") == "ok"


async def test_a_handled_event_is_remembered_a_day_by_default(state: Any) -> None:
    assert DONE_SECONDS == 86_400
    assert await state.claim("e5", 5) is Claim.NEW
    await state.finish("e5")
    assert await state.claim("e5", 5) is Claim.DONE
    if isinstance(state, RedisState):
        ttl = await state._redis.pttl(state._key("event", "e5"))
        assert 86_000_000 < ttl <= 86_400_000


async def test_a_handled_event_is_remembered_as_long_as_asked(state: Any) -> None:
    assert await state.claim("e6", 5) is Claim.NEW
    await state.finish("e6", 0.3)
    assert await state.claim("e6", 5) is Claim.DONE
    await asyncio.sleep(0.5)
    assert await state.claim("e6", 5) is Claim.NEW


async def test_offered_buttons_are_added_cleared_and_expire(state: Any) -> None:
    assert not await state.was_offered("s1", "/ask_data_levels")
    await state.offer("s1", ["/ask_data_levels", "/help"], 60)
    await state.offer("s1", ["/request_staff"], 60)  # a second message of the same answer
    for payload in ("/ask_data_levels", "/help", "/request_staff"):
        assert await state.was_offered("s1", payload)
    assert not await state.was_offered("s1", "/affirm")
    assert not await state.was_offered("s2", "/help")  # per session
    await state.clear_offers("s1")
    assert not await state.was_offered("s1", "/help")
    await state.offer("s3", ["/help"], 0.3)
    await asyncio.sleep(0.5)
    assert not await state.was_offered("s3", "/help")


async def test_offered_buttons_are_shared_by_the_replicas() -> None:
    import redis.asyncio as redis

    client = redis.Redis.from_url(REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
    try:
        await client.ping()
    except Exception:
        await client.close()
        if os.environ.get("CI") == "true":
            pytest.fail(f"Redis is required in CI and not reachable at {REDIS_URL}")
        pytest.skip(f"Redis not reachable at {REDIS_URL}")
    prefix = f"test-{uuid.uuid4().hex}"
    first, second = RedisState(client, prefix), RedisState(client, prefix)
    try:
        await first.offer("s", ["/help"], 60)
        assert await second.was_offered("s", "/help")
        await second.clear_offers("s")
        assert not await first.was_offered("s", "/help")
    finally:
        keys = [key async for key in client.scan_iter(f"{prefix}:*")]
        if keys:
            await client.delete(*keys)
        await client.close()


def test_memory_offers_are_bounded() -> None:
    memory = MemoryState(limit=3)

    async def fill() -> None:
        for n in range(10):
            await memory.offer(f"s{n}", ["/help"], 60)

    asyncio.run(fill())
    assert len(memory._offers) == 3


async def test_budget_counts_across_calls_and_answers_when_redis_is_down(state: Any) -> None:
    assert [await within_budget(state, "ip-a", 2, 60) for _ in range(4)] == [
        True, True, False, False,
    ]  # fmt: skip
    assert await within_budget(state, "ip-b", 2, 60)
    assert await within_budget(state, "ip-a", 0, 60)  # 0: no budget
    assert await within_budget(_Unreachable(), "ip-a", 1, 60)
