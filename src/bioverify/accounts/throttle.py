"""Failure throttles: repeated credential failures slow down the one who fails.

Only failing attempts are ever refused: a caller checks the throttle after a
credential check failed, never before a good credential is honoured, so failures
counted against a shared address (a NAT, a proxy) or a sprayed client id cannot
lock anyone with valid credentials out.

Behind a Protocol so that one process uses memory and a fleet of replicas shares
Redis; both pass the same conformance tests.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Protocol

import redis
import structlog

from bioverify.errors import TooManyRequests
from bioverify.windows import WindowCounts

log = structlog.get_logger("bioverify.throttle")

_MESSAGE = "Too many failed attempts; try again later"


class FailureThrottle(Protocol):
    def check(self, key: str) -> None:
        """Raise :class:`TooManyRequests` while ``key`` has reached its failure limit."""

    def record_failure(self, key: str) -> None:
        """Count one failure against ``key``."""


class MemoryFailureThrottle:
    """Fixed-window failure counters for one process (a TTL map: stale keys evicted)."""

    def __init__(
        self, *, limit: int, window_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._limit = limit
        self._windows: WindowCounts[str, None] = WindowCounts(window_s, clock)

    def __len__(self) -> int:
        """Keys currently tracked (stale ones are dropped as time passes)."""
        return len(self._windows)

    def check(self, key: str) -> None:
        window, now = self._windows.get(key)
        if window is not None and window.count >= self._limit:
            retry_after = max(1, math.ceil(window.start + self._windows.window_s - now))
            raise TooManyRequests(_MESSAGE, retry_after=retry_after)

    def record_failure(self, key: str) -> None:
        self._windows.add(key, None)


class RedisFailureThrottle:
    """Fixed-window failure counter shared by every replica through Redis."""

    def __init__(self, url: str, *, limit: int, window_s: int, prefix: str = "bv:thr:") -> None:
        self._redis = redis.Redis.from_url(url, socket_timeout=1.0)
        self._limit = limit
        self._window = window_s
        self._prefix = prefix

    def check(self, key: str) -> None:
        name = self._prefix + key
        try:
            count = self._redis.get(name)
        except redis.RedisError:
            # Fail open: every credential is a 256-bit secret, so a throttle outage
            # must not take the API down with it; the outage is logged.
            log.warning("throttle_unavailable", backend="redis")
            return
        if count is not None and int(count) >= self._limit:
            ttl = int(self._redis.ttl(name))
            raise TooManyRequests(_MESSAGE, retry_after=max(1, ttl))

    def record_failure(self, key: str) -> None:
        name = self._prefix + key
        try:
            pipe = self._redis.pipeline()
            pipe.incr(name)
            pipe.expire(name, self._window, nx=True)
            pipe.execute()
        except redis.RedisError:
            log.warning("throttle_unavailable", backend="redis")


def refuse_if_throttled(throttle: FailureThrottle, keys: list[str]) -> None:
    """After a failed attempt: 429 when any of ``keys`` already reached its limit,
    else nothing (the caller answers its own error); the failure is counted either way.
    """
    try:
        for key in keys:
            throttle.check(key)
    finally:
        for key in keys:
            throttle.record_failure(key)


__all__ = [
    "FailureThrottle",
    "MemoryFailureThrottle",
    "RedisFailureThrottle",
    "refuse_if_throttled",
]
