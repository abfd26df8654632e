"""What the channels share between Rasa replicas: handled LINE events, rate limits, buttons.

With `REDIS_URL` unset (`make run`, one process) it lives in this process, bounded. With it set
(the production profile, several replicas behind nginx) it lives in Redis, so that:

- a LINE event is answered once, whichever replica LINE's redelivery or nginx's retry reaches:
  the replica handling it holds a short claim (`LINE_EVENT_CLAIM_SECONDS`); a copy arriving
  meanwhile waits for the claim to become "done" (then it is skipped) or to expire (the replica
  died: the copy is handled); a handled event's id is remembered for
  `LINE_EVENT_REMEMBER_SECONDS` (24 h), so a copy or replay within that time is skipped;
- a resident's messages count against one limit (`RATE_LIMIT_MESSAGES` per
  `RATE_LIMIT_SECONDS`) across replicas, and so do the web chat's new sessions per client;
- the payloads of the buttons the web chat last offered a session are known to every replica
  (for `WEBCHAT_OFFERED_BUTTONS_SECONDS`), so a button pressed after a fail-over still works and
  a payload never offered is only text;
- a web chat session ended with 「会話を終わる」 is on a revocation list until its token would have
  expired anyway, so no replica accepts the token again (issue #14, shared screens).

- the assistant's answer to a LINE event is kept from the moment Rasa gave it until LINE has it
  (then it is deleted), so that the replica a redelivery reaches can send it if the first one
  died before LINE had it; an answer never sent expires with the event's id
  (`LINE_EVENT_REMEMBER_SECONDS`), when no redelivery is accepted any more.

Keys hold pseudonyms, web chat session ids, keyed hashes of client addresses and LINE's event
ids only, never a LINE user id, an address or a message; values hold no resident's words but
the assistant's answers kept as above and the family-doctor memos (bot/webchat/memo.py).
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections import OrderedDict
from typing import Any, Protocol

from bot.settings import Settings

logger = logging.getLogger(__name__)

MEMORY_LIMIT = 50_000
DONE_SECONDS = 86_400


class Claim(enum.Enum):
    """What a replica may do with an event it received."""

    NEW = "new"  # handle it (this replica now holds the claim)
    DONE = "done"  # already handled: skip it
    BUSY = "busy"  # another replica is handling it right now


class SharedState(Protocol):
    """The operations the channels need."""

    async def claim(self, key: str, seconds: float) -> Claim:
        """Try to take `key` for `seconds`."""

    async def finish(self, key: str, seconds: float = DONE_SECONDS) -> None:
        """Mark `key` handled (remembered for `seconds`)."""

    async def release(self, key: str) -> None:
        """Give `key` up unhandled, so that a copy may be handled."""

    async def count(self, key: str, seconds: int) -> int:
        """Add one to the counter `key` of the current window of `seconds`; return it."""

    async def offer(self, key: str, payloads: list[str], seconds: float) -> None:
        """Add `payloads` to the buttons offered to `key`, all forgotten after `seconds`."""

    async def was_offered(self, key: str, payload: str) -> bool:
        """Whether `payload` is among the buttons offered to `key`."""

    async def clear_offers(self, key: str) -> None:
        """Forget the buttons offered to `key` (a new answer replaces them)."""

    async def revoke(self, key: str, seconds: float) -> None:
        """Put `key` on the revocation list for `seconds`."""

    async def is_revoked(self, key: str) -> bool:
        """Whether `key` is on the revocation list."""

    async def keep(self, key: str, value: str, seconds: float) -> None:
        """Keep `value` under `key` for `seconds` (issue 18: a consultation memo)."""

    async def kept(self, key: str) -> str | None:
        """The value kept under `key`, or None once it expired."""

    async def forget(self, key: str) -> None:
        """Drop the value kept under `key`, if any."""


class MemoryState:
    """The shared state of a single process (bounded, oldest forgotten first)."""

    def __init__(self, limit: int = MEMORY_LIMIT) -> None:
        """An empty state remembering at most `limit` keys of each kind."""
        self._claims: OrderedDict[str, tuple[str, float]] = OrderedDict()
        self._counts: OrderedDict[str, tuple[int, float]] = OrderedDict()
        self._offers: OrderedDict[str, tuple[frozenset[str], float]] = OrderedDict()
        self._revoked: OrderedDict[str, float] = OrderedDict()
        self._kept: OrderedDict[str, tuple[str, float]] = OrderedDict()
        self._limit = limit

    @staticmethod
    def _trim(store: OrderedDict[str, Any], limit: int) -> None:
        while len(store) > limit:
            store.popitem(last=False)

    async def claim(self, key: str, seconds: float) -> Claim:
        """Try to take `key` for `seconds`."""
        now = time.monotonic()
        state = self._claims.get(key)
        if state is not None and state[1] > now:
            return Claim.DONE if state[0] == "done" else Claim.BUSY
        self._claims[key] = ("busy", now + seconds)
        self._claims.move_to_end(key)
        self._trim(self._claims, self._limit)
        return Claim.NEW

    async def finish(self, key: str, seconds: float = DONE_SECONDS) -> None:
        """Mark `key` handled (remembered for `seconds`)."""
        self._claims[key] = ("done", time.monotonic() + seconds)
        self._claims.move_to_end(key)
        self._trim(self._claims, self._limit)

    async def release(self, key: str) -> None:
        """Give `key` up unhandled."""
        self._claims.pop(key, None)

    async def count(self, key: str, seconds: int) -> int:
        """Add one to the counter of the current window; return it."""
        now = time.monotonic()
        value, until = self._counts.get(key, (0, 0.0))
        value, until = (value + 1, until) if until > now else (1, now + seconds)
        self._counts[key] = (value, until)
        self._counts.move_to_end(key)
        self._trim(self._counts, self._limit)
        return value

    async def offer(self, key: str, payloads: list[str], seconds: float) -> None:
        """Add `payloads` to the buttons offered to `key`."""
        now = time.monotonic()
        offered, until = self._offers.get(key, (frozenset(), 0.0))
        self._offers[key] = (offered | frozenset(payloads) if until > now else frozenset(payloads),
                             now + seconds)  # fmt: skip
        self._offers.move_to_end(key)
        self._trim(self._offers, self._limit)

    async def was_offered(self, key: str, payload: str) -> bool:
        """Whether `payload` is among the buttons offered to `key`."""
        offered, until = self._offers.get(key, (frozenset(), 0.0))
        return until > time.monotonic() and payload in offered

    async def clear_offers(self, key: str) -> None:
        """Forget the buttons offered to `key`."""
        self._offers.pop(key, None)

    async def revoke(self, key: str, seconds: float) -> None:
        """Put `key` on the revocation list for `seconds`.

        Expired entries go first; past the bound the oldest are forgotten (one process, `make
        run`, only: production keeps the list in Redis).
        """
        now = time.monotonic()
        for old in [k for k, until in self._revoked.items() if until <= now]:
            del self._revoked[old]
        self._revoked[key] = now + seconds
        self._revoked.move_to_end(key)
        self._trim(self._revoked, self._limit)

    async def is_revoked(self, key: str) -> bool:
        """Whether `key` is on the revocation list."""
        return self._revoked.get(key, 0.0) > time.monotonic()

    async def keep(self, key: str, value: str, seconds: float) -> None:
        """Keep `value` under `key` for `seconds` (expired values go first, then the oldest)."""
        now = time.monotonic()
        for old in [k for k, (_, until) in self._kept.items() if until <= now]:
            del self._kept[old]
        self._kept[key] = (value, now + seconds)
        self._kept.move_to_end(key)
        self._trim(self._kept, self._limit)

    async def kept(self, key: str) -> str | None:
        """The value kept under `key`, or None once it expired."""
        value, until = self._kept.get(key, ("", 0.0))
        return value if until > time.monotonic() else None

    async def forget(self, key: str) -> None:
        """Drop the value kept under `key`, if any."""
        self._kept.pop(key, None)


class RedisState:
    """The shared state in Redis (`redis.asyncio`), keys under `prefix`."""

    def __init__(self, client: Any, prefix: str = "funabashi") -> None:
        """Use `client` (a `redis.asyncio.Redis`)."""
        self._redis = client
        self._prefix = prefix

    def _key(self, kind: str, key: str) -> str:
        return f"{self._prefix}:{kind}:{key}"

    async def claim(self, key: str, seconds: float) -> Claim:
        """Try to take `key` for `seconds` (SET NX with expiry)."""
        name = self._key("event", key)
        if await self._redis.set(name, "busy", nx=True, px=max(1, int(seconds * 1000))):
            return Claim.NEW
        value = await self._redis.get(name)
        if value is None:  # expired between the two calls: try once more
            taken = await self._redis.set(name, "busy", nx=True, px=max(1, int(seconds * 1000)))
            return Claim.NEW if taken else Claim.BUSY
        return Claim.DONE if value in (b"done", "done") else Claim.BUSY

    async def finish(self, key: str, seconds: float = DONE_SECONDS) -> None:
        """Mark `key` handled (remembered for `seconds`)."""
        await self._redis.set(self._key("event", key), "done", px=max(1, int(seconds * 1000)))

    async def release(self, key: str) -> None:
        """Give `key` up unhandled."""
        await self._redis.delete(self._key("event", key))

    async def count(self, key: str, seconds: int) -> int:
        """Add one to the counter of the current window; return it (INCR, EXPIRE on first)."""
        window = int(time.time()) // max(1, seconds)
        name = self._key("rate", f"{key}:{window}")
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.incr(name)
            pipe.expire(name, seconds * 2)
            value, _ = await pipe.execute()
        return int(value)

    async def offer(self, key: str, payloads: list[str], seconds: float) -> None:
        """Add `payloads` to the set of offered buttons (SADD, PEXPIRE)."""
        if not payloads:
            return
        name = self._key("offered", key)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.sadd(name, *payloads)
            pipe.pexpire(name, max(1, int(seconds * 1000)))
            await pipe.execute()

    async def was_offered(self, key: str, payload: str) -> bool:
        """Whether `payload` is in the set of offered buttons (SISMEMBER)."""
        return bool(await self._redis.sismember(self._key("offered", key), payload))

    async def clear_offers(self, key: str) -> None:
        """Forget the offered buttons (DEL)."""
        await self._redis.delete(self._key("offered", key))

    async def revoke(self, key: str, seconds: float) -> None:
        """Put `key` on the revocation list for `seconds` (SET with expiry)."""
        await self._redis.set(self._key("revoked", key), "1", px=max(1, int(seconds * 1000)))

    async def is_revoked(self, key: str) -> bool:
        """Whether `key` is on the revocation list (EXISTS)."""
        return bool(await self._redis.exists(self._key("revoked", key)))

    async def keep(self, key: str, value: str, seconds: float) -> None:
        """Keep `value` under `key` for `seconds` (SET with expiry)."""
        await self._redis.set(self._key("kept", key), value, px=max(1, int(seconds * 1000)))

    async def kept(self, key: str) -> str | None:
        """The value kept under `key` (GET), or None once it expired."""
        value = await self._redis.get(self._key("kept", key))
        if value is None:
            return None
        return value.decode("utf-8") if isinstance(value, bytes) else str(value)

    async def forget(self, key: str) -> None:
        """Drop the value kept under `key` (DEL)."""
        await self._redis.delete(self._key("kept", key))


def shared_state(settings: Settings) -> SharedState:
    """The state for this process: in Redis when REDIS_URL is set, else in memory."""
    if settings.redis_url:
        import redis.asyncio as redis  # type: ignore[import-untyped]

        client = redis.Redis.from_url(
            settings.redis_url, socket_timeout=2.0, socket_connect_timeout=2.0
        )
        return RedisState(client, settings.redis_key_prefix)
    return MemoryState()


async def wait_for_claim(state: SharedState, key: str, seconds: float, poll: float = 0.2) -> Claim:
    """Claim `key`; while another replica holds it, wait until it is done or expires.

    Args:
        state: The shared state.
        key: The event's key.
        seconds: How long a claim lasts (also the longest wait).
        poll: How often to look again.

    Returns:
        `Claim.NEW` (handle it) or `Claim.DONE` (skip it).
    """
    deadline = time.monotonic() + seconds + 1.0
    result = await state.claim(key, seconds)
    while result is Claim.BUSY and time.monotonic() < deadline:
        await asyncio.sleep(poll)
        result = await state.claim(key, seconds)
    return Claim.DONE if result is Claim.BUSY else result


class RateLimit:
    """Per-sender message limit over a window: allow, tell once, then drop."""

    def __init__(self, state: SharedState, messages: int, seconds: int) -> None:
        """At most `messages` per `seconds` per sender (0 messages: no limit)."""
        self._state, self._messages, self._seconds = state, messages, seconds

    async def verdict(self, sender: str) -> str:
        """Tell what to do with `sender`'s next message.

        Returns:
            "ok", "tell" (the first message over the limit) or "drop" (the ones after it).
        """
        if self._messages <= 0:
            return "ok"
        count = await self._state.count(sender, self._seconds)
        if count <= self._messages:
            return "ok"
        return "tell" if count == self._messages + 1 else "drop"


async def rate_verdict(state: SharedState, settings: Settings, sender: str) -> str:
    """The settings' rate limit applied to `sender` (a channel-prefixed pseudonym).

    Returns:
        "ok", "tell" or "drop" (see `RateLimit.verdict`); "ok" when the shared state cannot be
        reached — answering beats silence.
    """
    limit = RateLimit(state, settings.rate_limit_messages, settings.rate_limit_seconds)
    try:
        return await limit.verdict(sender)
    except Exception as error:
        logger.error("Rate limit unavailable: %s", type(error).__name__)
        return "ok"


async def within_budget(state: SharedState, key: str, allowed: int, seconds: int) -> bool:
    """Count one use of `key` and tell whether it is within `allowed` per window of `seconds`.

    Args:
        state: The shared state (the count holds across replicas).
        key: What is counted (e.g. "websession:<keyed hash of the client address>").
        allowed: Uses allowed per window (0: no budget).
        seconds: The window.

    Returns:
        False once the window's uses exceed `allowed`; True when the shared state cannot be
        reached — refusing every resident would be worse than a missed count.
    """
    if allowed <= 0:
        return True
    try:
        return await state.count(key, seconds) <= allowed
    except Exception as error:
        logger.error("Budget unavailable: %s", type(error).__name__)
        return True
