"""The burst the hosted page captures for a challenge (``api/static/js/flow.js``).

Two baseline frames looking at the camera, then each step's frames spread over
``STEP_MS``; BLINK is sampled faster (a lid closes in about 100 ms) for a shorter
time. The liveness evaluation samples the real clips with this same layout.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from bioverify.engine.interfaces import ChallengeStep

BASELINE_FRAMES: Final = 2
STEP_MS: Final = 2000.0
MAX_FRAMES: Final = 24
MAX_FRAMES_PER_STEP: Final = 6
BLINK_FRAMES: Final = 12
BLINK_GAP_MS: Final = 125.0


def page_schedule(steps: Sequence[ChallengeStep]) -> list[tuple[float, int]]:
    """(time ms, step position; -1 = baseline) of each frame the page grabs."""
    blinks = sum(1 for s in steps if s is ChallengeStep.BLINK)
    others = len(steps) - blinks
    room = MAX_FRAMES - BASELINE_FRAMES - blinks * BLINK_FRAMES
    per_step = max(2, min(MAX_FRAMES_PER_STEP, room // others)) if others else 0
    out: list[tuple[float, int]] = []
    now = 0.0
    for i in range(BASELINE_FRAMES):
        if i:
            now += STEP_MS / MAX_FRAMES_PER_STEP
        out.append((now, -1))
    for position, step in enumerate(steps):
        count, gap = (
            (BLINK_FRAMES, BLINK_GAP_MS)
            if step is ChallengeStep.BLINK
            else (per_step, STEP_MS / per_step)
        )
        for _ in range(count):
            now += gap
            out.append((now, position))
    return out
