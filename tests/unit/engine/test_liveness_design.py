"""Challenge design, the page's burst layout, and the landmark model's fail-closed load."""

from __future__ import annotations

import datetime as dt
import itertools
import random
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bioverify.engine import ChallengeStep, EngineUnavailable, LocalEngine, new_challenge
from bioverify.engine.burst_layout import MAX_FRAMES, page_schedule
from bioverify.engine.facemesh import FaceMesh, landmarker_path
from bioverify.engine.interfaces import ACTION_STEPS, EXPRESSION_STEPS, POSE_STEPS
from bioverify.sessions import challenges


@given(st.integers(min_value=0, max_value=2**32))
def test_challenges_hold_three_actions_a_head_movement_and_an_expression(seed: int) -> None:
    steps = new_challenge(random.Random(seed)).steps
    assert 3 <= len(steps) <= 4
    assert len([s for s in steps if s in ACTION_STEPS]) == 3  # MOVE_CLOSER never counts
    assert any(s in POSE_STEPS for s in steps)
    assert any(s in EXPRESSION_STEPS for s in steps)  # what a flat photo cannot do
    assert steps.count(ChallengeStep.BLINK) <= 1
    assert len(page_schedule(steps)) <= MAX_FRAMES  # the page's burst fits the server limit


def test_every_new_step_is_issued() -> None:
    rng = random.Random(7)
    seen = {s for _ in range(400) for s in new_challenge(rng).steps}
    assert seen == set(ChallengeStep)


def test_blink_is_sampled_densely_and_the_rest_over_two_seconds() -> None:
    schedule = page_schedule((ChallengeStep.TURN_LEFT, ChallengeStep.BLINK))
    blink = [t for t, position in schedule if position == 1]
    gaps = [b - a for a, b in itertools.pairwise(blink)]
    assert len(blink) >= 10
    assert max(gaps) <= 150.0
    turn = [t for t, position in schedule if position == 0]
    assert turn[-1] - turn[0] >= 1000.0


def test_reloading_stops_re_rolling_after_the_limit() -> None:
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    ends = now + dt.timedelta(hours=1)
    stored = None
    drawn = []
    for _ in range(challenges.MAX_CHALLENGES + 4):
        stored, shown = challenges.issue(stored, now=now, ttl=dt.timedelta(minutes=5), ends=ends)
        drawn.append(tuple(shown["steps"]))
        assert shown["id"] == stored["id"]
    last = drawn[challenges.MAX_CHALLENGES - 1]
    assert all(steps == last for steps in drawn[challenges.MAX_CHALLENGES :])
    assert stored is not None
    assert stored["issued"] == challenges.MAX_CHALLENGES


def test_missing_landmark_model_fails_closed(tmp_path: Path) -> None:
    with pytest.raises(EngineUnavailable, match="cannot be read"):
        FaceMesh(tmp_path / "face_landmarker.task")


def test_tampered_landmark_model_fails_closed(tmp_path: Path) -> None:
    data = bytearray(landmarker_path().read_bytes())
    data[len(data) // 2] ^= 0xFF
    tampered = tmp_path / "face_landmarker.task"
    tampered.write_bytes(bytes(data))
    with pytest.raises(EngineUnavailable, match="sha256"):
        FaceMesh(tampered)


def test_the_engine_does_not_start_without_the_landmark_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BIOVERIFY_LANDMARKER", str(tmp_path / "absent.task"))
    with pytest.raises(EngineUnavailable) as caught:
        LocalEngine()
    assert list(caught.value.codes) == [-20]
