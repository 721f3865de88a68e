"""When to try a webhook again: a jittered exponential schedule and response triage.

Standard Webhooks semantics: 2xx is delivered, 410 means the endpoint is gone,
429/503 carry ``Retry-After``, anything else (3xx included, timeouts, refused
connections) is retried until the schedule (>= 3 days by default) runs out.
"""

from __future__ import annotations

import datetime as dt
import enum
import random
from collections.abc import Mapping
from dataclasses import dataclass, field

from bioverify.client import retry as client_retry

_MS = dt.timedelta(milliseconds=1)


class Action(enum.StrEnum):
    """What to do with a message after one attempt."""

    DELIVERED = "delivered"
    RETRY = "retry"
    RETRY_AFTER = "retry_after"
    STOP_ENDPOINT = "stop_endpoint"


@dataclass(frozen=True, slots=True)
class Decision:
    """The triage of one attempt; ``retry_after`` only for :attr:`Action.RETRY_AFTER`."""

    action: Action
    retry_after: dt.timedelta | None = None


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with jitter, long enough to ride out a multi-day outage.

    ``max_attempts`` is derived: the number of attempts whose *shortest* possible
    (fully negatively jittered) delays still add up to ``total_span``, so the
    promise "retried for at least ``total_span``" holds whatever the random draw.
    """

    first_delay: dt.timedelta = dt.timedelta(seconds=5)
    factor: float = 2.0
    max_delay: dt.timedelta = dt.timedelta(hours=6)
    jitter: float = 0.2
    total_span: dt.timedelta = dt.timedelta(days=3)
    max_attempts: int = field(init=False, compare=False)
    """Attempts made before a message is dead-lettered (the first one included)."""

    def __post_init__(self) -> None:
        if self.first_delay <= dt.timedelta(0) or self.max_delay < self.first_delay:
            raise ValueError("RetryPolicy needs 0 < first_delay <= max_delay")
        if self.factor < 1.0 or not 0.0 <= self.jitter < 1.0:
            raise ValueError("RetryPolicy needs factor >= 1 and 0 <= jitter < 1")
        object.__setattr__(self, "max_attempts", self._derive_max_attempts())

    @classmethod
    def for_tests(cls, attempts: int = 4) -> RetryPolicy:
        """A schedule of ``attempts`` tries 1 ms apart: no test ever sleeps for a retry."""
        return cls(
            first_delay=_MS,
            factor=1.0,
            max_delay=_MS,
            jitter=0.0,
            total_span=_MS * max(attempts - 1, 0),
        )

    def base_delay(self, attempt: int) -> dt.timedelta:
        """The un-jittered wait after failed attempt number ``attempt`` (1-based)."""
        # Cap the exponent before multiplying so huge attempt numbers cannot overflow.
        seconds = self.first_delay.total_seconds() * self.factor ** min(attempt - 1, 64)
        return min(dt.timedelta(seconds=min(seconds, 1e9)), self.max_delay)

    def _derive_max_attempts(self) -> int:
        span = dt.timedelta(0)
        attempts = 1
        while span < self.total_span:
            span += self.base_delay(attempts) * (1.0 - self.jitter)
            attempts += 1
        return attempts

    def next_delay(self, attempt: int, rng: random.Random) -> dt.timedelta | None:
        """The wait after failed attempt ``attempt``; ``None`` means give up (dead letter)."""
        if attempt >= self.max_attempts:
            return None
        base = self.base_delay(attempt)
        return base * (1.0 + self.jitter * rng.uniform(-1.0, 1.0))

    def delay_after(
        self, decision: Decision, attempt: int, rng: random.Random
    ) -> dt.timedelta | None:
        """The wait before the next try given an attempt's triage; ``None``: stop retrying."""
        if decision.action in (Action.DELIVERED, Action.STOP_ENDPOINT):
            return None
        scheduled = self.next_delay(attempt, rng)
        if scheduled is None or decision.retry_after is None:
            return scheduled
        # The receiver knows its own load best, but never park a message longer than
        # the policy's longest gap.
        return min(max(decision.retry_after, dt.timedelta(0)), self.max_delay)

    @staticmethod
    def classify(
        status: int | None, headers: Mapping[str, str], *, now: dt.datetime | None = None
    ) -> Decision:
        """Triage an attempt by HTTP ``status`` (``None``: no answer, e.g. timeout) and headers."""
        if status is None:
            # Timeouts, refused connections, egress refusals: try again later.
            return Decision(Action.RETRY)
        if 200 <= status < 300:
            return Decision(Action.DELIVERED)
        if status == 410:
            return Decision(Action.STOP_ENDPOINT)
        if status in (429, 503):
            wait = parse_retry_after(
                _header(headers, "retry-after"), now or dt.datetime.now(dt.UTC)
            )
            if wait is not None:
                return Decision(Action.RETRY_AFTER, wait)
        return Decision(Action.RETRY)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


#: Longer than any retry schedule; keeps absurd values inside ``timedelta``'s range.
_LONGEST_WAIT_S = 365 * 24 * 3600.0


def parse_retry_after(value: str | None, now: dt.datetime) -> dt.timedelta | None:
    """``Retry-After`` as delay-seconds or an HTTP-date (RFC 9110 10.2.3); ``None`` if unusable.

    The client SDK's parser, so the service and its SDK read the header the same way.
    """
    seconds = client_retry.parse_retry_after(value, now=now.timestamp())
    if seconds is None:
        return None
    return dt.timedelta(seconds=min(seconds, _LONGEST_WAIT_S))


__all__ = ["Action", "Decision", "RetryPolicy", "parse_retry_after"]
