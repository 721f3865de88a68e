"""Frames from a camera (OpenCV ``VideoCapture``) with on-screen prompts in a terminal.

A device index opens a camera; a path opens a video file (handy for kiosks and
tests). Failing to open or read reports CAMERA_FAIL (-7) and ends the session.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from bioverify import errors
from bioverify.capture.sdk import CaptureOutcome, CaptureSession

PROMPTS = {
    "TURN_LEFT": "Slowly turn your head to your left",
    "TURN_RIGHT": "Slowly turn your head to your right",
    "NOD": "Nod: tilt your head down, then up",
    "MOVE_CLOSER": "Move closer to the camera",
    "BLINK": "Blink once, looking at the camera",
    "SMILE": "Smile broadly, then relax",
}
#: The same prompts in French (the hosted page's fr.json wording).
PROMPTS_FR = {
    "TURN_LEFT": "Tournez lentement la tête vers votre gauche",
    "TURN_RIGHT": "Tournez lentement la tête vers votre droite",
    "NOD": "Hochez la tête : baissez-la, puis relevez-la",
    "MOVE_CLOSER": "Rapprochez-vous de la caméra",
    "BLINK": "Clignez des yeux une fois, en regardant la caméra",
    "SMILE": "Souriez franchement, puis détendez-vous",
}


def prompts_for(locale: str | None) -> Mapping[str, str]:
    """Step prompts for the session's locale (French for ``fr*``, else English)."""
    return PROMPTS_FR if (locale or "").lower().startswith("fr") else PROMPTS


@dataclass(frozen=True)
class Burst:
    frames: list[npt.NDArray[np.uint8]]
    times_ms: list[float]


def read_burst(
    source: int | str,
    *,
    steps: list[str],
    frames_per_step: int = 6,
    prompt: Callable[[str], None] = print,
    clock: Callable[[], float] = time.monotonic,
    prompts: Mapping[str, str] = PROMPTS,
) -> Burst | None:
    """Read frames while prompting each step; None when the camera cannot be used."""
    camera = cv2.VideoCapture(source)
    try:
        if not camera.isOpened():
            return None
        frames: list[npt.NDArray[np.uint8]] = []
        times: list[float] = []
        start = clock()
        for step in steps or ["HOLD_STILL"]:
            prompt(prompts.get(step, "Hold still and look at the camera"))
            for _ in range(frames_per_step):
                ok, frame = camera.read()
                if not ok or frame is None:
                    return None if not frames else Burst(frames, times)
                frames.append(np.asarray(frame, dtype=np.uint8))
                times.append((clock() - start) * 1000.0)
        return Burst(frames, times)
    finally:
        camera.release()


def capture_from_camera(
    session: CaptureSession,
    source: int | str,
    *,
    prompt: Callable[[str], None] = print,
    max_frames: int = 24,
) -> CaptureOutcome:
    """Run the session's challenge against a camera and submit the burst."""
    challenge = session.session.get("challenge") or {}
    steps = [str(s) for s in challenge.get("steps", [])]
    per_step = max(1, max_frames // max(1, len(steps))) if steps else 3
    burst = read_burst(
        source,
        steps=steps,
        frames_per_step=per_step,
        prompt=prompt,
        prompts=prompts_for(session.session.get("locale")),
    )
    if burst is None or not burst.frames:
        outcome = session.report(errors.CAMERA_FAIL, "camera could not be opened or read")
        assert outcome is not None  # fatal codes are always sent
        return outcome
    if session.session.get("liveness") == "passive":
        burst = Burst(burst.frames[-5:], burst.times_ms[-5:])
    return session.submit(burst.frames[:max_frames], frame_times=burst.times_ms[:max_frames])


__all__ = ["PROMPTS", "PROMPTS_FR", "Burst", "capture_from_camera", "prompts_for", "read_burst"]
