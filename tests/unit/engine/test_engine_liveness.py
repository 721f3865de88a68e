"""Active liveness on real faces: still images and 2-D warps fail, real pose change passes."""

from __future__ import annotations

import random

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bioverify import errors
from bioverify.engine import (
    Analysis,
    Challenge,
    ChallengeStep,
    LivenessMode,
    LocalEngine,
    Outcome,
    new_challenge,
)
from bioverify.engine.interfaces import POSE_STEPS
from fixtures_faces import (
    encode,
    load,
    pad,
    pose_burst,
    registry_image,
    shift_scale,
    tilt,
)

L, R, NOD, CLOSER = (
    ChallengeStep.TURN_LEFT,
    ChallengeStep.TURN_RIGHT,
    ChallengeStep.NOD,
    ChallengeStep.MOVE_CLOSER,
)


def _active(
    engine: LocalEngine,
    frames: list[bytes],
    steps: tuple[ChallengeStep, ...],
    times: list[float] | None = None,
) -> Analysis:
    return engine.analyze_sync(
        frames, liveness=LivenessMode.ACTIVE, challenge=Challenge("c-1", steps), frame_times=times
    )


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return load(registry_image("astronaut.png"))


@pytest.mark.models
def test_repeated_still_photo_is_spoof(engine: LocalEngine, astronaut: np.ndarray) -> None:
    frame = encode(astronaut)
    result = _active(engine, [frame] * 4, (L, R))
    assert result.outcome is Outcome.SPOOF
    assert result.embedding is None
    assert result.liveness is not None
    assert result.liveness.method == "active-challenge"
    assert not result.liveness.passed
    assert result.liveness.score == 0.0
    assert any("near-identical" in r for r in result.reasons)


@pytest.mark.models
def test_reencoded_copies_of_one_photo_are_spoof(
    engine: LocalEngine, astronaut: np.ndarray
) -> None:
    frames = [encode(astronaut, ".jpg", quality=q) for q in (95, 90, 85)]
    result = _active(engine, frames, (NOD, CLOSER))
    assert result.outcome is Outcome.SPOOF
    assert any("near-identical" in r for r in result.reasons)


@pytest.mark.models
@pytest.mark.parametrize("axis", ["vertical", "horizontal"])
def test_tilted_flat_photo_cannot_show_a_head_turn(
    engine: LocalEngine, astronaut: np.ndarray, axis: str
) -> None:
    frames = [encode(astronaut)] + [encode(tilt(astronaut, d, axis)) for d in (35, -35, 45, -45)]
    steps = (L, R) if axis == "vertical" else (NOD, L)
    result = _active(engine, frames, steps)
    assert result.outcome is Outcome.SPOOF
    assert any("not shown" in r for r in result.reasons)


@pytest.mark.models
def test_photo_moved_closer_and_rotated_cannot_show_a_turn(
    engine: LocalEngine, astronaut: np.ndarray
) -> None:
    frames = [encode(astronaut)] + [
        encode(shift_scale(astronaut, dx, 0, s, a))
        for dx, s, a in ((20, 1.1, 8), (-25, 1.4, -10), (10, 1.6, 15))
    ]
    result = _active(engine, frames, (CLOSER, R))
    assert result.outcome is Outcome.SPOOF
    assert result.liveness is not None
    assert 0.0 < result.liveness.score < 1.0  # moving closer was seen, the turn was not
    assert any("TURN_RIGHT" in r for r in result.reasons)


@pytest.mark.models
def test_identity_change_mid_burst_is_spoof(engine: LocalEngine, astronaut: np.ndarray) -> None:
    other = pad(load(registry_image("Tom_Hanks_54745.png")))
    other = np.ascontiguousarray(np.kron(other, np.ones((2, 2, 1), np.uint8)))  # 2x: face >64 px
    frames = [encode(astronaut), encode(shift_scale(astronaut, 5, 5, 1.05)), encode(other)]
    result = _active(engine, frames, (CLOSER, L))
    assert result.outcome is Outcome.SPOOF
    assert any("different face" in r for r in result.reasons)


@pytest.mark.models
def test_real_head_poses_of_one_person_pass_the_challenge(engine: LocalEngine) -> None:
    result = _active(engine, pose_burst(), (R, CLOSER), times=[0.0, 900.0, 1900.0])
    assert result.outcome is Outcome.OK, result.reasons
    assert result.liveness is not None
    assert result.liveness.passed
    assert result.liveness.score == 1.0
    assert result.embedding is not None


@pytest.mark.models
def test_real_poses_in_the_wrong_direction_fail(engine: LocalEngine) -> None:
    result = _active(engine, pose_burst(), (L, CLOSER))
    assert result.outcome is Outcome.SPOOF
    assert any("TURN_LEFT" in r for r in result.reasons)


@pytest.mark.models
def test_steps_faster_than_a_person_can_move_fail(engine: LocalEngine) -> None:
    result = _active(engine, pose_burst(), (R, CLOSER), times=[0.0, 40.0, 80.0])
    assert result.outcome is Outcome.SPOOF
    assert any("faster than a person" in r for r in result.reasons)


def test_active_without_challenge_is_a_bad_request(engine: LocalEngine) -> None:
    with pytest.raises(errors.BadRequest, match="challengeId"):
        engine.analyze_sync([b"x"], liveness=LivenessMode.ACTIVE, challenge=None)


def test_frame_times_must_match_the_frames(engine: LocalEngine) -> None:
    with pytest.raises(errors.BadRequest, match="frameTimes"):
        engine.analyze_sync(
            [b"x", b"y"],
            liveness=LivenessMode.ACTIVE,
            challenge=Challenge("c", (L, R)),
            frame_times=[0.0],
        )


def test_too_many_frames_is_a_bad_request(engine: LocalEngine) -> None:
    with pytest.raises(errors.BadRequest, match="1 to 5 frames"):
        engine.analyze_sync([b"x"] * 6, liveness=LivenessMode.PASSIVE)


@given(st.integers(min_value=0, max_value=2**32))
def test_new_challenge_is_three_or_four_steps_with_a_pose_step(seed: int) -> None:
    challenge = new_challenge(random.Random(seed))
    assert 3 <= len(challenge.steps) <= 4
    assert all(a is not b for a, b in zip(challenge.steps, challenge.steps[1:], strict=False))
    assert any(step in POSE_STEPS for step in challenge.steps)
    assert len(challenge.id) == 36


def test_default_challenges_are_unpredictable() -> None:
    challenges = [new_challenge() for _ in range(200)]
    assert len({c.id for c in challenges}) == 200
    assert len({c.steps for c in challenges}) > 10
