"""The retry schedule and the triage of receiver answers."""

from __future__ import annotations

import datetime as dt
import random
from email.utils import format_datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bioverify.webhooks.retry import Action, Decision, RetryPolicy, parse_retry_after

NOW = dt.datetime(2025, 4, 1, 12, 0, tzinfo=dt.UTC)
DECADE = RetryPolicy(total_span=dt.timedelta(days=3650))


@given(seed=st.integers())
def test_default_schedule_spans_at_least_three_days_whatever_the_jitter(seed: int) -> None:
    policy = RetryPolicy()
    rng = random.Random(seed)
    delays = []
    attempt = 1
    while (delay := policy.next_delay(attempt, rng)) is not None:
        delays.append(delay)
        attempt += 1
    assert attempt == policy.max_attempts
    assert sum(delays, dt.timedelta(0)) >= dt.timedelta(days=3)
    assert delays[0] <= dt.timedelta(seconds=6)  # first retry is quick (5 s +-20 %)
    assert max(delays) <= policy.max_delay * 1.2


@given(attempt=st.integers(1, 1_000), seed=st.integers())
def test_delays_stay_within_jitter_of_the_exponential(attempt: int, seed: int) -> None:
    delay = DECADE.next_delay(attempt, random.Random(seed))
    assert delay is not None
    base = DECADE.base_delay(attempt)
    assert base * 0.8 <= delay <= base * 1.2


def test_test_mode_schedule_is_milliseconds_and_counts_attempts() -> None:
    policy = RetryPolicy.for_tests(attempts=3)
    rng = random.Random(0)
    assert policy.max_attempts == 3
    assert policy.next_delay(1, rng) == dt.timedelta(milliseconds=1)
    assert policy.next_delay(3, rng) is None


@pytest.mark.parametrize(
    ("status", "action"),
    [
        (200, Action.DELIVERED),
        (204, Action.DELIVERED),
        (410, Action.STOP_ENDPOINT),
        (500, Action.RETRY),
        (302, Action.RETRY),
        (404, Action.RETRY),
        (None, Action.RETRY),
        (429, Action.RETRY),
        (503, Action.RETRY),
    ],
)
def test_classify(status: int | None, action: Action) -> None:
    assert RetryPolicy.classify(status, {}, now=NOW).action is action


def test_retry_after_seconds_and_http_date_are_honoured() -> None:
    by_seconds = RetryPolicy.classify(429, {"Retry-After": "120"}, now=NOW)
    assert by_seconds == Decision(Action.RETRY_AFTER, dt.timedelta(seconds=120))
    later = format_datetime(NOW + dt.timedelta(minutes=10), usegmt=True)
    by_date = RetryPolicy.classify(503, {"retry-after": later}, now=NOW)
    assert by_date == Decision(Action.RETRY_AFTER, dt.timedelta(minutes=10))
    assert parse_retry_after("next tuesday", NOW) is None


def test_retry_after_is_clamped_to_the_policy_maximum_and_obeys_give_up() -> None:
    policy = RetryPolicy()
    rng = random.Random(1)
    huge = Decision(Action.RETRY_AFTER, dt.timedelta(days=30))
    assert policy.delay_after(huge, 1, rng) == policy.max_delay
    assert policy.delay_after(huge, policy.max_attempts, rng) is None
    assert policy.delay_after(Decision(Action.DELIVERED), 1, rng) is None


def test_invalid_policies_are_refused() -> None:
    with pytest.raises(ValueError, match="first_delay"):
        RetryPolicy(first_delay=dt.timedelta(0))
    with pytest.raises(ValueError, match="jitter"):
        RetryPolicy(jitter=1.5)
