"""Both failure throttles (memory, Redis) pass one conformance test."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest
import redis

from bioverify.accounts.throttle import (
    FailureThrottle,
    MemoryFailureThrottle,
    RedisFailureThrottle,
)
from bioverify.errors import TooManyRequests

REDIS_URL = "redis://127.0.0.1:6379/0"


def _redis_reason() -> str | None:
    try:
        redis.Redis.from_url(REDIS_URL, socket_timeout=1).ping()
    except redis.RedisError as exc:
        return f"Redis at {REDIS_URL} is not reachable: {exc}"
    return None


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def throttle(request: pytest.FixtureRequest) -> Iterator[FailureThrottle]:
    if request.param == "memory":
        yield MemoryFailureThrottle(limit=3, window_s=60)
        return
    reason = _redis_reason()
    if reason:
        pytest.skip(reason)
    prefix = f"bv:test:{secrets.token_hex(4)}:"
    yield RedisFailureThrottle(REDIS_URL, limit=3, window_s=60, prefix=prefix)
    client = redis.Redis.from_url(REDIS_URL)
    for key in client.scan_iter(f"{prefix}*"):
        client.delete(key)
    client.close()


def test_locks_out_after_the_limit_with_retry_after(throttle: FailureThrottle) -> None:
    for _ in range(2):
        throttle.record_failure("ip:1.2.3.4")
        throttle.check("ip:1.2.3.4")
    throttle.record_failure("ip:1.2.3.4")
    with pytest.raises(TooManyRequests) as info:
        throttle.check("ip:1.2.3.4")
    assert info.value.retry_after is not None
    assert 1 <= info.value.retry_after <= 60


def test_keys_are_independent(throttle: FailureThrottle) -> None:
    for _ in range(3):
        throttle.record_failure("client:a")
    throttle.check("client:b")


def test_memory_window_slides() -> None:
    now = [0.0]
    throttle = MemoryFailureThrottle(limit=2, window_s=10, clock=lambda: now[0])
    throttle.record_failure("k")
    throttle.record_failure("k")
    with pytest.raises(TooManyRequests):
        throttle.check("k")
    now[0] = 10.5
    throttle.check("k")


def test_memory_throttle_forgets_stale_keys_as_time_passes() -> None:
    """A spray of distinct addresses costs memory for one window only (a TTL map)."""
    now = [0.0]
    throttle = MemoryFailureThrottle(limit=2, window_s=10, clock=lambda: now[0])
    for index in range(5_000):
        throttle.record_failure(f"ip:198.51.100.{index}")
    assert len(throttle) == 5_000
    now[0] = 10.5
    throttle.record_failure("ip:203.0.113.9")
    assert len(throttle) == 1
