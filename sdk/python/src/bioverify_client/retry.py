"""Retry policy: jittered exponential backoff inside a budget, ``Retry-After`` honoured.

Pure decisions (no I/O): :class:`RetryBudget` says how long to wait before the next
attempt, or that the error must be raised now. The clients only sleep. Sleeping
goes through :func:`sleep` / :func:`async_sleep`, which
:func:`bioverify_client.testing.instant_retries` turns into a recorder (the
hynek/stamina ``set_testing`` idea), so tests take no wall-clock time.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import email.utils
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from bioverify_client.errors import BioverifyError, TransientError


@dataclass(frozen=True, slots=True)
class RetryConfig:
    """How hard the SDK tries before raising a :class:`TransientError`.

    ``max_attempts`` counts requests (1 disables retries); ``max_total_s`` bounds the
    time from the first request to the start of the last one. Backoff before retry
    ``n`` (1-based) is drawn uniformly from ``[base/2, base]`` with
    ``base = min(max_backoff_s, initial_backoff_s * 2**(n-1))``; a ``Retry-After``
    from the server replaces it, capped at ``max_retry_after_s``.
    """

    max_attempts: int = 4
    max_total_s: float = 30.0
    initial_backoff_s: float = 0.5
    max_backoff_s: float = 8.0
    max_retry_after_s: float = 30.0
    # Jitter only spreads clients apart; it needs no cryptographic quality.
    jitter_source: Callable[[], float] = field(default=random.random, repr=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.max_total_s < 0 or self.initial_backoff_s < 0 or self.max_backoff_s < 0:
            raise ValueError("retry times must not be negative")

    def backoff(self, retry_number: int) -> float:
        """Seconds to wait before retry ``retry_number`` (1-based), jittered."""
        base = min(self.max_backoff_s, self.initial_backoff_s * 2.0 ** (retry_number - 1))
        return base / 2 + self.jitter_source() * base / 2


NO_RETRIES = RetryConfig(max_attempts=1)


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds (delta-seconds or an HTTP date); ``None`` if absent/bad."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():  # "²".isdigit() is true too
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        # "-0000" (RFC 5322: zone unknown) parses naive; HTTP dates are GMT (RFC 9110),
        # never the machine's local time zone.
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


class _Switch:
    """Process-wide test mode: record delays instead of sleeping."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.recorders: list[list[float]] = []
        self.offset = 0.0  # virtual seconds "slept" in test mode, so budgets still apply

    @property
    def instant(self) -> bool:
        return bool(self.recorders)

    def attach(self, recorder: list[float]) -> None:
        with self.lock:
            self.recorders.append(recorder)

    def detach(self, recorder: list[float]) -> None:
        with self.lock:
            # By identity: two empty recorders compare equal.
            self.recorders[:] = [r for r in self.recorders if r is not recorder]

    def record(self, seconds: float) -> None:
        with self.lock:
            self.offset += seconds
            for recorder in self.recorders:
                recorder.append(seconds)


_SWITCH = _Switch()


def monotonic() -> float:
    """The clock budgets are measured on (advanced by skipped sleeps in test mode)."""
    return time.monotonic() + _SWITCH.offset


def sleep(seconds: float) -> None:
    """Wait before a retry (sync)."""
    if _SWITCH.instant:
        _SWITCH.record(seconds)
        return
    time.sleep(seconds)


async def async_sleep(seconds: float) -> None:
    """Wait before a retry (async)."""
    if _SWITCH.instant:
        _SWITCH.record(seconds)
        return
    await asyncio.sleep(seconds)


class RetryBudget:
    """The retry state of one call: attempts made and time spent."""

    def __init__(self, config: RetryConfig) -> None:
        self.config = config
        self.attempts = 0
        self._started = monotonic()

    def start_attempt(self) -> int:
        """Count an attempt; its 1-based number."""
        self.attempts += 1
        return self.attempts

    def delay_before_retry(self, error: BioverifyError) -> float | None:
        """Seconds to wait before trying again, or ``None``: raise ``error`` now."""
        if not (isinstance(error, TransientError) and error.request_retryable):
            return None
        if self.attempts >= self.config.max_attempts:
            return None
        delay = self.config.backoff(self.attempts)
        if error.retry_after is not None:
            delay = min(error.retry_after, self.config.max_retry_after_s)
        if monotonic() - self._started + delay > self.config.max_total_s:
            return None
        return delay


__all__ = [
    "NO_RETRIES",
    "RetryBudget",
    "RetryConfig",
    "async_sleep",
    "monotonic",
    "parse_retry_after",
    "sleep",
]
