"""Liveness: active challenge-response on landmarks, and passive risk signals.

Not certified presentation-attack detection. The active check resists printed and
on-screen photos and injected still images (a flat picture cannot change the
landmark ratios that a turning head does; identical frames are caught); it does not
resist video replay of the person doing the moves, deepfakes, or 3-D masks. The
passive score is weak on its own (see docs/engine.md) and its threshold is set so
that genuine single photos pass.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations, pairwise
from typing import Final

import cv2
import numpy as np

from bioverify.engine.interfaces import Challenge, ChallengeStep, Embedding, LivenessReport
from bioverify.engine.models import Face, Image
from bioverify.engine.pose import Pose
from bioverify.engine.quality import face_crop, grey, sharpness

ACTIVE_METHOD: Final = "active-challenge"
PASSIVE_METHOD: Final = "passive-signals"

# Step thresholds, in the units of :class:`~bioverify.engine.pose.Pose`, relative to
# the first frame. A nose offset of 0.15 inter-ocular distances is a turn of about
# 20 degrees (nose tip ~0.45 IOD in front of the eyes); 0.10 of the eye-mouth height
# is a nod of about 15 degrees; 1.25x the face size is a clear step towards the camera.
YAW_STEP: Final = 0.15
PITCH_STEP: Final = 0.10
CLOSER_STEP: Final = 1.25
#: The first frame must face the camera roughly (|yaw| below this) to be a baseline.
FRONTAL_YAW: Final = 0.25
#: Two frames whose face regions (the earlier frame's box cut from both, 64 px grey,
#: lightly blurred) differ by less than this mean absolute difference (grey levels)
#: are the same picture sent twice. Measured: JPEG re-encodes 0.1-0.5, added noise
#: of sigma 5: 0.65; a half-pixel move of the face already gives ~2.4.
DUPLICATE_MAD: Final = 1.0
_DUPLICATE_SIDE: Final = 64
_DUPLICATE_BLUR: Final = 1.0
#: Landmark sets that agree to this many pixels come from the same image.
DUPLICATE_LANDMARK_PX: Final = 0.05
#: A person cannot perform a step in less than this (milliseconds), used when the
#: client sends frame times.
MIN_STEP_MS: Final = 150.0

#: PASSIVE mode passes when the live score is at least this. Set low on purpose:
#: every genuine photo of the evaluation set scores above it (docs/engine.md), so the
#: passive check only stops blatant recaptures (strong moire, heavy blur, glare).
PASSIVE_MIN_SCORE: Final = 0.35
# Passive signal calibration (face crop resized to 128 px).
# Genuine evaluation photos: sharpness >= 190, moire <= 1.45, glare <= 0.06.
_BLUR_LAPVAR: Final = 40.0  # Laplacian variance below which a face counts as blurred
_MOIRE_RATIO: Final = (1.6, 2.4)  # spectral peak height: start and full risk
_GLARE_FRACTION: Final = (0.08, 0.30)  # share of saturated pixels: start and full risk
_STILL_MOTION: Final = 0.002  # landmark motion (IOD units) below which frames are frozen


@dataclass(frozen=True, eq=False)
class FrameFace:
    """What liveness needs from one frame with exactly one face."""

    index: int
    face: Face
    pose: Pose
    aligned: Image  # SFace's aligned 112x112 BGR crop
    embedding: Embedding
    face_grey: Image  # grey face box, for the passive signals
    image: Image  # the decoded frame (a reference, not a copy)
    time_ms: float | None = None


def _step_seen(step: ChallengeStep, pose: Pose, base: Pose) -> bool:
    if step is ChallengeStep.TURN_LEFT:
        return pose.yaw - base.yaw >= YAW_STEP
    if step is ChallengeStep.TURN_RIGHT:
        return base.yaw - pose.yaw >= YAW_STEP
    if step is ChallengeStep.NOD:
        # A nod is a pitch change without a turn (a turn also moves the nose down a bit).
        return abs(pose.pitch - base.pitch) >= PITCH_STEP and abs(pose.yaw - base.yaw) < YAW_STEP
    return base.scale > 0 and pose.scale / base.scale >= CLOSER_STEP


def _region(image: Image, face: Face) -> np.ndarray:
    crop = cv2.resize(
        grey(face_crop(image, face)),
        (_DUPLICATE_SIDE, _DUPLICATE_SIDE),
        interpolation=cv2.INTER_AREA,
    ).astype(np.float32)
    blurred: np.ndarray = cv2.GaussianBlur(crop, (0, 0), _DUPLICATE_BLUR)
    return blurred


def near_duplicates(frames: Sequence[FrameFace]) -> list[tuple[int, int]]:
    """Pairs of frame indices that are the same picture (still-image injection)."""
    pairs: list[tuple[int, int]] = []
    for first, second in combinations(frames, 2):
        if first.image.shape != second.image.shape:
            continue  # different sizes cannot be one picture re-sent
        mad = float(
            np.mean(np.abs(_region(first.image, first.face) - _region(second.image, first.face)))
        )
        marks = float(np.max(np.abs(first.face.landmarks - second.face.landmarks)))
        if mad < DUPLICATE_MAD or marks < DUPLICATE_LANDMARK_PX:
            pairs.append((first.index, second.index))
    return pairs


def match_steps(frames: Sequence[FrameFace], steps: Sequence[ChallengeStep]) -> list[FrameFace]:
    """The frames at which each step was first seen, in order (fewer if not all were)."""
    base = frames[0].pose
    seen: list[FrameFace] = []
    for frame in frames[1:]:
        if len(seen) == len(steps):
            break
        if _step_seen(steps[len(seen)], frame.pose, base):
            seen.append(frame)
    return seen


def active_liveness(
    frames: Sequence[FrameFace],
    challenge: Challenge,
    *,
    verify_threshold: float,
    faceless: Sequence[int] = (),
) -> LivenessReport:
    """Check a burst against ``challenge``; ``faceless`` lists frames without a face."""
    reasons: list[str] = []
    hard_fail = False
    if faceless:
        hard_fail = True
        reasons.append(f"no face in frame(s) {', '.join(map(str, faceless))}")
    if len(frames) < len(challenge.steps) + 1:
        reasons.append(
            f"{len(frames)} usable frame(s); the challenge needs at least "
            f"{len(challenge.steps) + 1}"
        )
        return LivenessReport(ACTIVE_METHOD, 0.0, False, tuple(reasons))
    first = frames[0]
    if abs(first.pose.yaw) > FRONTAL_YAW:
        reasons.append("the first frame does not face the camera")
        hard_fail = True
    for frame in frames[1:]:
        similarity = float(np.dot(frame.embedding, first.embedding))
        if similarity < verify_threshold:
            hard_fail = True
            reasons.append(f"frame {frame.index} shows a different face than frame {first.index}")
    for a, b in near_duplicates(frames):
        hard_fail = True
        reasons.append(f"frames {a} and {b} are near-identical (still image)")
    seen = match_steps(frames, challenge.steps)
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
    return LivenessReport(ACTIVE_METHOD, round(score, 4), passed, tuple(reasons))


def _ramp(value: float, start: float, full: float) -> float:
    """0 at ``start``, 1 at ``full``, linear between, clipped."""
    if full == start:
        return 1.0 if value >= full else 0.0
    return float(min(1.0, max(0.0, (value - start) / (full - start))))


def moire_ratio(face_grey: Image) -> float:
    """Height of the sharpest isolated peak in the face's log spectrum.

    Screens and halftone prints add periodic patterns: narrow spikes standing above
    the spectrum's local median. Natural faces have smooth spectra (about 1.0-1.45 on
    the evaluation photos; a simulated screen recapture scores 2.5-4.1).
    """
    if face_grey.size == 0:
        return 0.0
    crop = cv2.resize(face_grey, (128, 128), interpolation=cv2.INTER_AREA).astype(np.float32)
    crop -= float(crop.mean())
    window = np.outer(np.hanning(128), np.hanning(128)).astype(np.float32)
    spectrum = np.log1p(np.abs(np.fft.fftshift(np.fft.fft2(crop * window)))).astype(np.float32)
    residual = spectrum - cv2.medianBlur(spectrum, 5)
    yy, xx = np.mgrid[-64:64, -64:64]
    radius = np.hypot(yy, xx)
    return float(residual[(radius >= 12) & (radius <= 60)].max())


def glare_fraction(face_bgr_grey: Image) -> float:
    """Share of near-saturated pixels in the face (screen or glossy-print glare)."""
    if face_bgr_grey.size == 0:
        return 0.0
    return float(np.mean(face_bgr_grey >= 250))


def motion(frames: Sequence[FrameFace]) -> float | None:
    """Median landmark movement between consecutive frames, in inter-ocular distances."""
    if len(frames) < 2:
        return None
    moves: list[float] = []
    for a, b in pairwise(frames):
        eyes = a.face.landmarks[1] - a.face.landmarks[0]
        iod = max(float(math.hypot(float(eyes[0]), float(eyes[1]))), 1e-6)
        delta = np.abs(b.face.landmarks - a.face.landmarks)
        moves.append(float(np.mean(delta)) / iod)
    return float(np.median(moves))


def passive_signals(frames: Sequence[FrameFace]) -> dict[str, float]:
    """Raw passive measurements (worst frame for each)."""
    values: dict[str, float] = {
        "sharpness": min(sharpness(f.face_grey) for f in frames),
        "moire_ratio": max(moire_ratio(f.face_grey) for f in frames),
        "glare_fraction": max(glare_fraction(f.face_grey) for f in frames),
    }
    moved = motion(frames)
    if moved is not None:
        values["motion"] = moved
    return values


def passive_liveness(frames: Sequence[FrameFace]) -> LivenessReport:
    """A risk score from passive signals; weak evidence, see the module docstring."""
    signals = passive_signals(frames)
    risks = {
        "blurred face": 1.0 - min(1.0, signals["sharpness"] / _BLUR_LAPVAR),
        "periodic pattern (moire)": _ramp(signals["moire_ratio"], *_MOIRE_RATIO),
        "glare": _ramp(signals["glare_fraction"], *_GLARE_FRACTION),
    }
    if "motion" in signals:
        risks["frozen frames (no micro-motion)"] = 1.0 if signals["motion"] < _STILL_MOTION else 0.0
    # The strongest signal dominates; the others add a little (no single weak cue
    # should fail a genuine user, two together are more telling).
    ordered = sorted(risks.values(), reverse=True)
    risk = min(1.0, ordered[0] * 0.7 + sum(ordered[1:]) * 0.15)
    score = round(1.0 - risk, 4)
    passed = score >= PASSIVE_MIN_SCORE
    reasons = tuple(f"{name} ({value:.2f})" for name, value in risks.items() if value > 0.0)
    return LivenessReport(PASSIVE_METHOD, score, passed, reasons or ("no passive spoof signal",))
