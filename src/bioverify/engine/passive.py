"""Passive liveness: risk signals from single frames (weak evidence on their own).

Sharpness, moire (periodic patterns of screens and halftone prints), glare and, with
several frames, landmark micro-motion. See docs/engine.md for the calibration.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import pairwise
from typing import Final

import cv2
import numpy as np

from bioverify.engine.frames import FrameFace
from bioverify.engine.interfaces import LivenessReport
from bioverify.engine.models import Image
from bioverify.engine.quality import sharpness

PASSIVE_METHOD: Final = "passive-signals"

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


def _ramp(value: float, start: float, full: float) -> float:
    """0 at ``start``, 1 at ``full``, linear between, clipped."""
    if full == start:
        return 1.0 if value >= full else 0.0
    return float(min(1.0, max(0.0, (value - start) / (full - start))))


# The window and the ring of frequencies moire_ratio looks at are constants: built
# once instead of on every frame (they were a fifth of its time).
_WINDOW: Final = np.outer(np.hanning(128), np.hanning(128)).astype(np.float32)
_YY, _XX = np.mgrid[-64:64, -64:64]
_RADIUS = np.hypot(_YY, _XX)
_RING: Final = (_RADIUS >= 12) & (_RADIUS <= 60)
_WINDOW.flags.writeable = False
_RING.flags.writeable = False


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
    spectrum = np.log1p(np.abs(np.fft.fftshift(np.fft.fft2(crop * _WINDOW)))).astype(np.float32)
    residual = spectrum - cv2.medianBlur(spectrum, 5)
    return float(residual[_RING].max())


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
