"""Failure throttles: repeated credential failures lock a client id or address out.

Behind a Protocol so that one process uses memory and a fleet of replicas shares
Redis; both pass the same conformance tests.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Protocol

import redis
import structlog

from bioverify.errors import TooManyRequests

log = structlog.get_logger("bioverify.throttle")


class FailureThrottle(Protocol):
    def check(self, key: str) -> None:
        """Raise :class:`TooManyRequests` while ``key`` is locked out."""

    def record_failure(self, key: str) -> None:
        """Count one failure against ``key``."""


class MemoryFailureThrottle:
    """Sliding-window failure counter for one process."""

    def __init__(
        self, *, limit: int, window_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._limit = limit
        self._window = window_s
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _prune(self, key: str, now: float) -> deque[float]:
        window = self._failures.setdefault(key, deque())
        while window and window[0] <= now - self._window:
            window.popleft()
        return window

    def check(self, key: str) -> None:
        with self._lock:
            now = self._clock()
            window = self._prune(key, now)
            if len(window) >= self._limit:
                retry_after = max(1, math.ceil(window[0] + self._window - now))
                raise TooManyRequests(
                    "Too many failed authentication attempts; try again later",
                    retry_after=retry_after,
                )

    def record_failure(self, key: str) -> None:
        with self._lock:
            now = self._clock()
            self._prune(key, now).append(now)
            if len(self._failures) > 100_000:
                # Bound memory under a spray of distinct keys: forget idle ones.
                for stale in [k for k, v in self._failures.items() if not v]:
                    del self._failures[stale]


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
            raise TooManyRequests(
                "Too many failed authentication attempts; try again later", retry_after=max(1, ttl)
            )

    def record_failure(self, key: str) -> None:
        name = self._prefix + key
        try:
            pipe = self._redis.pipeline()
            pipe.incr(name)
            pipe.expire(name, self._window, nx=True)
            pipe.execute()
        except redis.RedisError:
            log.warning("throttle_unavailable", backend="redis")


__all__ = ["FailureThrottle", "MemoryFailureThrottle", "RedisFailureThrottle"]
