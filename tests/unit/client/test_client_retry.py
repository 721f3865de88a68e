"""Retry policy: backoff bounds, Retry-After, budgets, and the no-sleep test mode."""

from __future__ import annotations

import email.utils

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bioverify_client import PermanentError, RetryConfig, TransientError
from bioverify_client.retry import RetryBudget, parse_retry_after, sleep
from bioverify_client.testing import instant_retries


@given(retry_number=st.integers(1, 30), draw=st.floats(0, 1))
def test_backoff_is_jittered_within_half_to_full_of_a_capped_exponential(
    retry_number: int, draw: float
) -> None:
    config = RetryConfig(initial_backoff_s=0.5, max_backoff_s=8.0, jitter_source=lambda: draw)
    base = min(8.0, 0.5 * 2 ** (retry_number - 1))
    assert base / 2 <= config.backoff(retry_number) <= base


def test_retry_after_parses_seconds_and_http_dates() -> None:
    assert parse_retry_after("12") == 12.0
    date = email.utils.formatdate(1_000_030, usegmt=True)
    assert parse_retry_after(date, now=1_000_000) == pytest.approx(30.0)
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def transient(retry_after: float | None = None) -> TransientError:
    return TransientError("busy", status=503, retry_after=retry_after)


def test_budget_stops_after_max_attempts() -> None:
    budget = RetryBudget(RetryConfig(max_attempts=3, jitter_source=lambda: 0.0))
    delays = []
    while True:
        budget.start_attempt()
        delay = budget.delay_before_retry(transient())
        if delay is None:
            break
        delays.append(delay)
    assert budget.attempts == 3
    assert delays == [0.25, 0.5]


def test_budget_honours_retry_after_capped() -> None:
    budget = RetryBudget(RetryConfig(max_retry_after_s=5.0, max_total_s=100))
    budget.start_attempt()
    assert budget.delay_before_retry(transient(retry_after=2)) == 2
    assert budget.delay_before_retry(transient(retry_after=3600)) == 5.0


def test_budget_gives_up_when_the_wait_would_pass_the_time_limit() -> None:
    budget = RetryBudget(RetryConfig(max_total_s=10, max_retry_after_s=60))
    budget.start_attempt()
    assert budget.delay_before_retry(transient(retry_after=30)) is None


def test_permanent_and_session_transient_errors_are_never_retried() -> None:
    budget = RetryBudget(RetryConfig())
    budget.start_attempt()
    assert budget.delay_before_retry(PermanentError("no", status=401)) is None
    assert (
        budget.delay_before_retry(TransientError("expired", status=410, error_codes=[-8])) is None
    )


def test_instant_retries_records_instead_of_sleeping_and_budgets_still_apply() -> None:
    with instant_retries() as slept:
        sleep(40.0)
        budget = RetryBudget(RetryConfig(max_total_s=60, max_retry_after_s=60))
        budget.start_attempt()
        sleep(50.0)  # virtual time passes for the budget too
        assert budget.delay_before_retry(transient(retry_after=20)) is None
    assert slept == [40.0, 50.0]


def test_invalid_configs_are_refused() -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        RetryConfig(max_attempts=0)
