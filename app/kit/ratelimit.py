"""Fixed-window rate limits, shared through Redis (or per process in embedded mode).

One algorithm for every limit (login attempts per IP, failed logins per account, API
calls per organization and per credential): a counter per key and window, `INCRBY` +
`EXPIRE` in one round trip. Simple, O(1) memory per key, and the window end is exactly
what `Retry-After` and `RateLimit-Reset` report.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int  # until the current window ends

    def headers(self) -> dict[str, str]:
        return {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset_seconds),
        }

    def retry_headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.reset_seconds), **self.headers()}


class RateLimiter(Protocol):
    async def hit(self, key: str, limit: int, window_seconds: int, cost: int = 1) -> Decision:
        """Count `cost` against `key`; allowed while the window's count stays ≤ limit."""
        ...

    async def peek(self, key: str, limit: int, window_seconds: int) -> Decision:
        """The decision a further hit would face, without counting one."""
        ...

    async def clear(self, key: str, window_seconds: int) -> None: ...


def _window(window_seconds: int, now: float) -> tuple[int, int]:
    index = int(now // window_seconds)
    reset = max(1, math.ceil((index + 1) * window_seconds - now))
    return index, reset


def _decide(count: int, limit: int, reset: int, *, counted: bool) -> Decision:
    used = count if counted else count + 1
    return Decision(
        allowed=used <= limit,
        limit=limit,
        remaining=max(0, limit - count),
        reset_seconds=reset,
    )


class RedisRateLimiter:
    """Counters in Redis: every API replica sees the same numbers."""

    def __init__(self, redis: Any, prefix: str = "ratelimit") -> None:
        self._redis = redis
        self._prefix = prefix

    def _key(self, key: str, index: int) -> str:
        return f"{self._prefix}:{key}:{index}"

    async def hit(self, key: str, limit: int, window_seconds: int, cost: int = 1) -> Decision:
        index, reset = _window(window_seconds, time.time())
        name = self._key(key, index)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.incrby(name, cost)
            pipe.expire(name, window_seconds + 1)
            count, _ = await pipe.execute()
        return _decide(int(count), limit, reset, counted=True)

    async def peek(self, key: str, limit: int, window_seconds: int) -> Decision:
        index, reset = _window(window_seconds, time.time())
        count = await self._redis.get(self._key(key, index))
        return _decide(int(count or 0), limit, reset, counted=False)

    async def clear(self, key: str, window_seconds: int) -> None:
        index, _ = _window(window_seconds, time.time())
        await self._redis.delete(self._key(key, index))


class MemoryRateLimiter:
    """Counters in this process (embedded mode: one process, no Redis). Entries of past
    windows are dropped when the table fills, so memory stays bounded by the live keys."""

    def __init__(self, max_keys: int = 100_000) -> None:
        # key -> (window length, window index, count)
        self._counts: dict[str, tuple[int, int, int]] = {}
        self._max_keys = max_keys

    def _current(self, key: str, index: int) -> int:
        entry = self._counts.get(key)
        return entry[2] if entry is not None and entry[1] == index else 0

    async def hit(self, key: str, limit: int, window_seconds: int, cost: int = 1) -> Decision:
        index, reset = _window(window_seconds, time.time())
        count = self._current(key, index) + cost
        if key not in self._counts and len(self._counts) >= self._max_keys:
            self._evict()
        self._counts[key] = (window_seconds, index, count)
        return _decide(count, limit, reset, counted=True)

    async def peek(self, key: str, limit: int, window_seconds: int) -> Decision:
        index, reset = _window(window_seconds, time.time())
        return _decide(self._current(key, index), limit, reset, counted=False)

    async def clear(self, key: str, window_seconds: int) -> None:
        self._counts.pop(key, None)

    def _evict(self) -> None:
        now = time.time()
        stale = [k for k, (w, i, _) in self._counts.items() if i != _window(w, now)[0]]
        # All live: drop the oldest half rather than grow without bound.
        for k in stale or list(self._counts)[: len(self._counts) // 2]:
            del self._counts[k]
