"""Active liveness: challenge-response on dense 3-D landmarks.

Not certified presentation-attack detection. A burst of frames must show the
challenge's steps in order (head turns and nods by 3-D head pose, blinks by eye
aspect ratio, smiles by blendshape), by one face. It resists printed and on-screen
photos held, moved, tilted or brought closer (a tilted photo can imitate a small
turn, but its eyes cannot blink nor its mouth smile, and every challenge asks for
one of those) and injected still images. It does not resist replay of a video
prepared for the challenge, real-time puppets or deepfakes injected into the
stream, or 3-D masks (docs/engine.md, measured on real clips).

Passive signals live in :mod:`bioverify.engine.passive` (re-exported here).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Final

import numpy as np

from bioverify.engine.frames import FrameFace
from bioverify.engine.interfaces import POSE_STEPS, Challenge, ChallengeStep, LivenessReport
from bioverify.engine.meshpose import planarity_residual
from bioverify.engine.passive import (
    PASSIVE_METHOD,
    PASSIVE_MIN_SCORE,
    glare_fraction,
    moire_ratio,
    motion,
    passive_liveness,
    passive_signals,
)

ACTIVE_METHOD: Final = "active-challenge"

# Step thresholds, relative to the baseline frame (calibrated on the real clips,
# docs/engine.md "Liveness on real people").
#: Head turn (yaw change, degrees) that counts as TURN_LEFT / TURN_RIGHT. Real turns
#: in the clips reach 12.3-16.3, the posed photos of the test set 10.7 and 12.6. A
#: flat photo tilted 25-40 degrees and brought closer reached 15.2: a tilted photo
#: CAN imitate a turn, which is why every challenge also holds a BLINK or SMILE
#: (``new_challenge``), which it cannot show.
TURN_DEG: Final = 10.0
#: Pitch change (degrees) that counts as NOD, with a yaw change under TURN_DEG
#: (tilted photos: up to 12.3; leaning back in the clips: about 10).
NOD_DEG: Final = 15.0
#: Face size ratio that counts as MOVE_CLOSER.
CLOSER_STEP: Final = 1.25
#: Smile blendshape (mean of mouthSmileLeft/Right) rise over its lowest earlier value.
SMILE_RISE: Final = 0.5
#: Eyes count as closed below this share of their open aspect ratio, open above
#: OPEN_RATIO. Real blinks fall to 4-13% of baseline; tilted photos never below 67%.
CLOSED_RATIO: Final = 0.45
OPEN_RATIO: Final = 0.75
#: A blink edge (open -> closed or closed -> open) happens between two frames at most
#: this far apart (a lid closes in ~100 ms); a slower change is looking down or up.
BLINK_EDGE_MS: Final = 300.0
#: Head movement (degrees) allowed between the two frames of a blink edge.
BLINK_STEADY_DEG: Final = 8.0
#: The baseline frame must face the camera: |yaw| and |pitch| below this (degrees).
FRONTAL_DEG: Final = 25.0
#: Frames may be unusable (no face, no landmarks, not the burst's identity: a hand
#: over the face) up to this share of the burst; they are ignored, never evidence.
MAX_IGNORED_SHARE: Final = 0.25
#: Two frames are copies of one picture when their 478 dense landmarks agree to this
#: share of the inter-ocular distance (RMS): the model is deterministic, so a picture
#: re-encoded or with added noise moves them by 0.003-0.006 IOD. A live person
#: holding still in a small, compressed video does too, between some frames
#: (measured 0.002 IOD), so a burst fails as a still image only when no frame brings
#: anything new: every frame copies an earlier one. (Copies cannot pass a challenge
#: anyway: they show no step. This only names the attack.)
COPY_LANDMARK_IOD: Final = 0.006
#: Steps that must be held for two consecutive frames (see :func:`step_seen`).
HELD_STEPS: Final = POSE_STEPS | {ChallengeStep.SMILE}
#: A person cannot perform a step in less than this (milliseconds), with frame times.
MIN_STEP_MS: Final = 150.0

__all__ = [
    "ACTIVE_METHOD",
    "PASSIVE_METHOD",
    "PASSIVE_MIN_SCORE",
    "FrameFace",
    "active_liveness",
    "glare_fraction",
    "moire_ratio",
    "motion",
    "passive_liveness",
    "passive_signals",
]


def landmark_shift(a: FrameFace, b: FrameFace) -> float:
    """RMS distance between two frames' landmarks, in inter-ocular distances."""
    if a.mesh is not None and b.mesh is not None:
        delta = a.mesh.points[:, :2] - b.mesh.points[:, :2]
    else:
        delta = (a.face.landmarks - b.face.landmarks).astype(np.float64)
    rms = float(np.sqrt(np.mean(np.sum(delta * delta, axis=1))))
    return rms / max(a.iod, 1e-6)


def is_copy(a: FrameFace, b: FrameFace) -> bool:
    """True when ``a`` and ``b`` are one picture sent twice (re-encoded or noised)."""
    return landmark_shift(a, b) < COPY_LANDMARK_IOD


def copies(frames: Sequence[FrameFace]) -> list[tuple[int, int]]:
    """Pairs of frame indices that are copies of one picture (all pairs at once)."""
    if len(frames) < 2:
        return []
    if all(f.mesh is not None for f in frames):
        points = np.stack([f.mesh.points[:, :2] for f in frames if f.mesh is not None])
    else:
        points = np.stack([f.face.landmarks.astype(np.float64) for f in frames])
    delta = points[:, None, :, :] - points[None, :, :, :]
    rms = np.sqrt(np.mean(np.sum(delta * delta, axis=3), axis=2))
    iod = np.array([max(f.iod, 1e-6) for f in frames])
    close = rms / iod[:, None] < COPY_LANDMARK_IOD
    return [
        (frames[i].index, frames[j].index)
        for i, j in zip(*np.nonzero(np.triu(close, k=1)), strict=True)
    ]


def trusted_frames(frames: Sequence[FrameFace], verify_threshold: float) -> list[FrameFace]:
    """The frames showing the burst's identity: those matching the frame that matches
    the most others (earliest on ties) at the verify threshold."""
    if not frames:
        return []
    matrix = np.stack([f.embedding for f in frames]) @ np.stack([f.embedding for f in frames]).T
    agree = (matrix >= verify_threshold).sum(axis=1)
    anchor = int(np.argmax(agree))
    return [f for f, score in zip(frames, matrix[anchor], strict=True) if score >= verify_threshold]


@dataclass(frozen=True)
class Baseline:
    frame: FrameFace
    open_ear: float


def _open_ear(frames: Sequence[FrameFace]) -> float:
    ears = [f.ear for f in frames if f.ear is not None]
    return float(np.percentile(ears, 75)) if ears else 0.0


def _turned(frame: FrameFace, base: FrameFace) -> tuple[float, float]:
    assert frame.head is not None and base.head is not None
    return frame.head.yaw - base.head.yaw, frame.head.pitch - base.head.pitch


def _blink_edge(prev: FrameFace, frame: FrameFace, base: Baseline) -> bool:
    if prev.ear is None or frame.ear is None or prev.head is None or frame.head is None:
        return False
    if base.open_ear <= 0:
        return False
    if (
        prev.time_ms is not None
        and frame.time_ms is not None
        and frame.time_ms - prev.time_ms > BLINK_EDGE_MS
    ):
        return False
    if (
        abs(frame.head.yaw - prev.head.yaw) >= BLINK_STEADY_DEG
        or abs(frame.head.pitch - prev.head.pitch) >= BLINK_STEADY_DEG
    ):
        return False
    yaw, pitch = _turned(frame, base.frame)
    if abs(yaw) >= TURN_DEG or abs(pitch) >= NOD_DEG:
        return False  # eyes must be judged on a roughly frontal face
    low, high = sorted((prev.ear, frame.ear))
    return low <= CLOSED_RATIO * base.open_ear and high >= OPEN_RATIO * base.open_ear


def step_seen(
    step: ChallengeStep,
    frames: Sequence[FrameFace],
    at: int,
    base: Baseline,
    since: int,
) -> bool:
    """Whether ``frames[at]`` shows ``step`` (``since``: first frame of this step).

    Head movements and smiles must be held: the next frame shows them too (a
    prompted turn lasts, the glances and grins of someone talking often do not).
    """
    if not _shows(step, frames, at, base, since):
        return False
    if step in HELD_STEPS:
        return at + 1 < len(frames) and _shows(step, frames, at + 1, base, since)
    return True


def _shows(
    step: ChallengeStep,
    frames: Sequence[FrameFace],
    at: int,
    base: Baseline,
    since: int,
) -> bool:
    frame = frames[at]
    if frame.head is None or base.frame.head is None:
        return False
    yaw, pitch = _turned(frame, base.frame)
    if step is ChallengeStep.TURN_LEFT:
        return yaw >= TURN_DEG
    if step is ChallengeStep.TURN_RIGHT:
        return -yaw >= TURN_DEG
    if step is ChallengeStep.NOD:
        return abs(pitch) >= NOD_DEG and abs(yaw) < TURN_DEG
    if step is ChallengeStep.MOVE_CLOSER:
        return base.frame.pose.scale > 0 and frame.pose.scale / base.frame.pose.scale >= CLOSER_STEP
    if step is ChallengeStep.BLINK:
        return at > since and _blink_edge(frames[at - 1], frame, base)
    # SMILE: a rise over the lowest smile since the step began (or the baseline).
    if frame.mesh is None:
        return False
    earlier = [f.mesh.smile for f in frames[since:at] if f.mesh is not None]
    lowest = min([*earlier, base.frame.mesh.smile if base.frame.mesh is not None else 1.0])
    return frame.mesh.smile - lowest >= SMILE_RISE


def match_steps(
    frames: Sequence[FrameFace], steps: Sequence[ChallengeStep], base: Baseline
) -> list[FrameFace]:
    """The frames at which each step was first seen, in order (fewer if not all were).

    ``frames[0]`` is the baseline; each step is looked for after the previous one.
    """
    seen: list[FrameFace] = []
    since = 0
    for at in range(1, len(frames)):
        if len(seen) == len(steps):
            break
        if step_seen(steps[len(seen)], frames, at, base, since):
            seen.append(frames[at])
            since = at
    return seen


def planarity(frames: Sequence[FrameFace]) -> float | None:
    """Largest homography residual (inter-ocular distances) between the first frame's
    dense landmarks and a later frame's: near 0 for a flat picture, larger for a head
    that turned. A risk signal, not a gate (measured AUC in docs/engine.md)."""
    meshed = [f for f in frames if f.mesh is not None]
    if len(meshed) < 2:
        return None
    first = meshed[0].mesh
    assert first is not None
    return max(
        planarity_residual(first.points, f.mesh.points) for f in meshed[1:] if f.mesh is not None
    )


@dataclass(frozen=True)
class BurstCheck:
    """What a burst shows regardless of the challenge: usable frames and hard failures."""

    usable: list[FrameFace]
    failures: list[str]
    signals: dict[str, float]


def check_burst(
    frames: Sequence[FrameFace], *, verify_threshold: float, faceless: Sequence[int] = ()
) -> BurstCheck:
    """Identity, usable share, frontal baseline and still-image copies of a burst."""
    failures: list[str] = []
    total = len(frames) + len(faceless)
    trusted = trusted_frames(frames, verify_threshold)
    usable = [f for f in trusted if f.mesh is not None and f.head is not None]
    ignored = total - len(usable)
    if ignored > MAX_IGNORED_SHARE * total:
        if faceless:
            failures.append(f"no face in frame(s) {', '.join(map(str, faceless))}")
        strangers = sorted({f.index for f in frames} - {f.index for f in trusted})
        if strangers:
            failures.append(
                f"frame(s) {', '.join(map(str, strangers))} show a different face than "
                f"frame {trusted[0].index if trusted else frames[0].index}"
            )
        failures.append(f"{ignored} of {total} frames unusable (more than a quarter)")
    signals: dict[str, float] = {"frames_ignored": float(ignored)}
    if usable:
        head = usable[0].head
        assert head is not None
        if abs(head.yaw) > FRONTAL_DEG or abs(head.pitch) > FRONTAL_DEG:
            failures.append("the first frame does not face the camera")
    copied = {b for _, b in copies(frames)}
    signals["copied_frames"] = float(len(copied))
    if len(frames) > 1 and len(copied) == len(frames) - 1:
        failures.append(
            f"{len(copied)} of {len(frames)} frames are near-identical copies (still image)"
        )
    residual = planarity(usable)
    if residual is not None:
        signals["planarity_residual"] = round(residual, 5)
    return BurstCheck(usable, failures, signals)


def active_liveness(
    frames: Sequence[FrameFace],
    challenge: Challenge,
    *,
    verify_threshold: float,
    faceless: Sequence[int] = (),
) -> LivenessReport:
    """Check a burst against ``challenge``; ``faceless`` lists frames without a face."""
    burst = check_burst(frames, verify_threshold=verify_threshold, faceless=faceless)
    reasons = list(burst.failures)
    hard_fail = bool(burst.failures)
    usable = burst.usable
    if len(usable) < len(challenge.steps) + 1:
        reasons.append(
            f"{len(usable)} usable frame(s); the challenge needs at least "
            f"{len(challenge.steps) + 1}"
        )
        return LivenessReport(ACTIVE_METHOD, 0.0, False, tuple(reasons), burst.signals)
    first = usable[0]
    base = Baseline(first, _open_ear(usable))
    seen = match_steps(usable, challenge.steps, base)
    missing = challenge.steps[len(seen) :]
    if missing:
        reasons.append(
            "challenge step(s) not shown in order: " + ", ".join(str(s) for s in missing)
        )
    times = [f.time_ms for f in (first, *seen) if f.time_ms is not None]
    if (
        seen
        and len(times) == len(seen) + 1
        and any(b - a < MIN_STEP_MS for a, b in pairwise(times))
    ):
        hard_fail = True
        reasons.append("challenge steps were faster than a person can move")
    score = 0.0 if hard_fail else len(seen) / len(challenge.steps)
    passed = not hard_fail and not missing
    if passed:
        reasons.append("all challenge steps shown by one moving face")
    return LivenessReport(ACTIVE_METHOD, round(score, 4), passed, tuple(reasons), burst.signals)
