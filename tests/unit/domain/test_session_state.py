"""Invariants of the session state machine, checked on random event sequences."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bioverify import errors
from bioverify.domain import session as sm

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
CODES = sorted(errors.CATALOGUE)

event = st.one_of(
    st.tuples(st.just("record"), st.sampled_from([*CODES, -13])),
    st.tuples(st.just("attempt"), st.sampled_from([-22, -23])),
    # An expired identity document ends the session with the diagnostic -23.
    st.tuples(st.just("fail"), st.just(-23)),
    st.tuples(st.just("succeed"), st.none()),
    st.tuples(st.just("load"), st.none()),
)


def run(events: list[tuple[str, int | None]], attempts: int) -> list[sm.SessionState]:
    state = sm.new_state(attempts)
    states = [state]
    for i, (kind, code) in enumerate(events):
        now = T0 + dt.timedelta(seconds=i)
        if kind == "record":
            assert code is not None
            state = sm.record(state, code, now).state
        elif kind == "attempt":
            assert code is not None
            state = sm.failed_attempt(state, code, now).state
        elif kind == "fail":
            assert code is not None
            state = sm.fail(state, code, now).state
        elif kind == "succeed":
            state = sm.succeed(state, now).state
        else:
            state = sm.load(state).state
        states.append(state)
    return states


@given(st.lists(event, max_size=30), st.integers(1, 10))
def test_an_ended_session_never_changes(
    events: list[tuple[str, int | None]], attempts: int
) -> None:
    states = run(events, attempts)
    for before, after in itertools.pairwise(states):
        if before.ended:
            assert after == before


@given(st.lists(event, max_size=30), st.integers(1, 10))
def test_the_first_fatal_code_is_the_outcome(
    events: list[tuple[str, int | None]], attempts: int
) -> None:
    final = run(events, attempts)[-1]
    if final.status is sm.Status.FAILED:
        fatal = [c for c in final.error_codes if errors.lookup(c).is_fatal]
        assert len(fatal) <= 1
        if fatal:
            assert final.outcome_code == fatal[0]
            assert final.error_codes[-1] == fatal[0]


@given(st.lists(event, max_size=30), st.integers(1, 10))
def test_each_code_appears_once_in_order_of_first_occurrence(
    events: list[tuple[str, int | None]], attempts: int
) -> None:
    final = run(events, attempts)[-1]
    assert len(final.error_codes) == len(set(final.error_codes))
    assert -13 not in final.error_codes


def test_attempts_run_out_into_failure_with_the_diagnostic() -> None:
    state = sm.new_state(2)
    first = sm.failed_attempt(state, -22, T0)
    assert not first.ended and first.state.attempts_left == 1
    second = sm.failed_attempt(first.state, -22, T0)
    assert second.ended
    assert second.state.status is sm.Status.FAILED
    assert second.state.error_codes == [-22]
    assert second.state.outcome_code == -22


def test_diagnostic_never_ends_a_session() -> None:
    t = sm.record(sm.new_state(3), -20, T0)
    assert not t.ended and t.state.status is sm.Status.PENDING
    repeat = sm.record(t.state, -20, T0)
    assert not repeat.changed


def test_load_moves_pending_to_in_progress_once() -> None:
    loaded = sm.load(sm.new_state(3))
    assert loaded.state.status is sm.Status.IN_PROGRESS
    assert not sm.load(loaded.state).changed


def test_register_is_an_alias_of_enroll() -> None:
    assert sm.SessionType.parse("REGISTER") is sm.SessionType.ENROLL
    with pytest.raises(ValueError, match="LOGIN"):
        sm.SessionType.parse("LOGIN")


def test_fail_ends_with_a_diagnostic_that_is_then_the_outcome() -> None:
    state = sm.load(sm.new_state(3)).state
    state = sm.failed_attempt(state, -22, T0).state
    ended = sm.fail(state, -23, T0)
    assert ended.ended and ended.state.status is sm.Status.FAILED
    assert ended.state.error_codes == [-22, -23]
    assert ended.state.outcome_code == -23
    assert sm.fail(ended.state, -23, T0).changed is False


def test_max_attempts_outside_range_is_misuse() -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        sm.new_state(0)
