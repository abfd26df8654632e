"""Shared screens (issue #14): 「会話を終わる」 revokes a web chat session on every replica.

Drives the channel's handlers with the harness of tests/bot/test_webchat_channel.py; the
revocation list itself is tested in memory and in a real Redis.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from typing import Any, AsyncIterator, List

import pytest

from bot.shared_state import MemoryState, RedisState
from tests.bot.test_webchat_channel import WebChat, settings

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


async def open_redis() -> Any:
    """A `RedisState` under a fresh prefix (skipped without Redis, failed in CI)."""
    import redis.asyncio as redis

    client = redis.Redis.from_url(REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
    try:
        await client.ping()
    except Exception:
        await client.close()
        if os.environ.get("CI") == "true":
            pytest.fail(f"Redis is required in CI and not reachable at {REDIS_URL}")
        pytest.skip(f"Redis not reachable at {REDIS_URL}: start redis-server to run these")
    return RedisState(client, f"test-{uuid.uuid4().hex}")


async def close_redis(state: RedisState) -> None:
    keys = [key async for key in state._redis.scan_iter(f"{state._prefix}:*")]
    if keys:
        await state._redis.delete(*keys)
    await state._redis.close()


@pytest.fixture
async def redis_state() -> AsyncIterator[RedisState]:
    state = await open_redis()
    yield state
    await close_redis(state)


@pytest.fixture(params=["memory", "redis"])
async def state(request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    if request.param == "memory":
        yield MemoryState(limit=100)
        return
    opened = await open_redis()
    yield opened
    await close_redis(opened)


class Replica(WebChat):
    """The harness, also recording the sockets the channel closed."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.closed: List[str] = []

        async def disconnect(sid: str, namespace: Any = None, **_: Any) -> None:
            self.closed.append(sid)

        self.sio.disconnect = disconnect

    async def token(self) -> str:
        return str(json.loads((await self.new_token()).body)["token"])

    async def join(self, sid: str, token: str) -> bool:
        return bool(await self.handler("connect")(sid, {}, {"token": token}))

    async def end(self, sid: str) -> Any:
        return await self.handler("session_end")(sid, None)


async def test_the_revocation_list_forgets_nothing_before_its_time(state: Any) -> None:
    assert await state.is_revoked("s1") is False
    await state.revoke("s1", 5)
    assert await state.is_revoked("s1") is True
    assert await state.is_revoked("s2") is False


async def test_a_revocation_expires_with_the_token(state: Any) -> None:
    await state.revoke("s3", 0.2)
    assert await state.is_revoked("s3") is True
    time.sleep(0.4)
    assert await state.is_revoked("s3") is False


async def test_redis_keeps_a_revocation_for_the_token_s_remaining_lifetime(
    redis_state: RedisState,
) -> None:
    state = redis_state
    first = Replica(state=state)
    token = await first.token()
    assert await first.join("a", token)
    assert (await first.end("a")) == {"ended": True}
    session, expires, _ = token.split(".")
    ttl = await state._redis.pttl(state._key("revoked", session))
    remaining = (int(expires) - time.time()) * 1000
    assert remaining < ttl <= remaining + 61_000  # the token's lifetime, a minute's margin


async def test_an_ended_session_is_refused_on_every_replica(state: Any) -> None:
    first, second = Replica(state=state), Replica(state=state)
    token = await first.token()
    assert await first.join("a", token) and await second.join("b", token)
    await second.utter("b", {"message": "こんにちは"})
    assert second.texts == ["こんにちは"]

    assert (await first.end("a")) == {"ended": True}
    assert ("session_ended", {}, token.split(".")[0]) in first.emitted  # every tab is told

    # the socket still open on the other replica is told and closed at its next message
    await second.utter("b", {"message": "まだ使える？"})
    assert second.texts == ["こんにちは"]
    assert ("session_ended", {}, "b") in second.emitted and second.closed == ["b"]
    await second.handler("session_start")("b", None)
    await second.handler("session_resume")("b", None)
    assert second.texts == ["こんにちは"]
    # and the token connects nowhere any more
    assert not await first.join("c", token)
    assert not await second.join("d", token)
    # a new session from the same page works
    assert await second.join("e", await second.token())


async def test_ending_without_a_session_ends_nothing() -> None:
    chat = Replica()
    assert (await chat.end("nobody")) == {"ended": False}


class Broken(MemoryState):
    async def is_revoked(self, key: str) -> bool:
        raise ConnectionError("redis down")

    async def revoke(self, key: str, seconds: float) -> None:
        raise ConnectionError("redis down")


async def test_a_session_that_cannot_be_checked_is_not_used() -> None:
    shared = MemoryState()
    working, broken = Replica(state=shared), Replica(state=Broken())
    token = await working.token()
    assert await working.join("a", token)
    assert not await broken.join("b", token)  # refused, not an error
    broken.sessions["a"] = working.sessions["a"]  # the socket moved to the broken replica
    await broken.utter("a", {"message": "こんにちは"})
    assert broken.texts == [] and ("busy", {}, "a") in broken.emitted
    assert broken.closed == []  # the page is not wiped for an outage
    assert (await broken.end("a")) == {"ended": False}  # the page is told it did not work


async def test_a_resumed_session_reaches_rasa_as_session_resumed() -> None:
    chat = Replica(settings())
    assert await chat.join("a", await chat.token())
    await chat.handler("session_resume")("a", None)
    assert chat.texts == ["/session_resumed"]


def test_a_typed_session_resumed_is_only_text() -> None:
    from bot.channels.guard import typed_text

    assert typed_text("/session_resumed") == "／session_resumed"
    assert typed_text("/confirm_same_person") == "／confirm_same_person"
