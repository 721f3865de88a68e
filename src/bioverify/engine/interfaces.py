"""The engine's contract: what the service calls, and the exceptions it raises.

The service sees only these names; the implementation (``pipeline``/``pool``) and
the model files stay behind them.
"""

from __future__ import annotations

import random
import secrets
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from bioverify import errors

Embedding = npt.NDArray[np.float32]


class LivenessMode(StrEnum):
    """ACTIVE: a challenge burst must show the asked head movements; PASSIVE: signals only."""

    ACTIVE = "active"
    PASSIVE = "passive"


class ChallengeStep(StrEnum):
    """One movement asked of the user (directions are the user's own left and right)."""

    TURN_LEFT = "TURN_LEFT"
    TURN_RIGHT = "TURN_RIGHT"
    NOD = "NOD"
    MOVE_CLOSER = "MOVE_CLOSER"


#: Steps that change the 3-D pose; a flat photo moved or tilted cannot fake them.
POSE_STEPS = frozenset({ChallengeStep.TURN_LEFT, ChallengeStep.TURN_RIGHT, ChallengeStep.NOD})


@dataclass(frozen=True)
class Challenge:
    """A random sequence of movements issued on session load."""

    id: str
    steps: tuple[ChallengeStep, ...]


def new_challenge(rng: random.Random | None = None) -> Challenge:
    """2-3 random steps, no step twice in a row, at least one pose step.

    ``MOVE_CLOSER`` alone is never enough: moving a photo towards the camera does it
    too. The default randomness comes from :mod:`secrets`; pass ``rng`` only in tests.
    """
    chooser: random.Random = rng if rng is not None else secrets.SystemRandom()
    all_steps = list(ChallengeStep)
    while True:
        count = chooser.choice((2, 3))
        steps: list[ChallengeStep] = []
        for _ in range(count):
            options = [s for s in all_steps if not steps or s is not steps[-1]]
            steps.append(chooser.choice(options))
        if any(s in POSE_STEPS for s in steps):
            break
    challenge_id = (
        str(uuid.UUID(int=chooser.getrandbits(128), version=4))
        if rng is not None
        else str(uuid.uuid4())
    )
    return Challenge(id=challenge_id, steps=tuple(steps))


class Outcome(StrEnum):
    """What the frames showed; the service maps these to session codes."""

    OK = "ok"
    NO_FACE = "no_face"
    MULTIPLE_FACES = "multiple_faces"
    LOW_LIGHT = "low_light"
    SPOOF = "spoof"


@dataclass(frozen=True)
class LivenessReport:
    """Liveness result: ``score`` in [0, 1], 1 = live. Not a certified PAD result."""

    method: str
    score: float
    passed: bool
    reasons: tuple[str, ...]


@dataclass(frozen=True, eq=False)
class Analysis:
    """Everything the pipeline learned from one capture (no pixels unless asked)."""

    outcome: Outcome
    embedding: Embedding | None
    liveness: LivenessReport | None
    quality: Mapping[str, float]
    portrait_jpeg: bytes | None
    timings_ms: Mapping[str, float]
    reasons: tuple[str, ...]
    face_count: int = 0
    frame_count: int = 0

    def __repr__(self) -> str:
        # Embedding values and portrait bytes must never reach a log line.
        return (
            f"Analysis(outcome={self.outcome!s}, liveness={self.liveness!r}, "
            f"quality={dict(self.quality)!r}, reasons={self.reasons!r}, "
            f"embedding={'<128-d>' if self.embedding is not None else None}, "
            f"portrait={'<jpeg>' if self.portrait_jpeg is not None else None})"
        )


class InvalidImage(errors.BadRequest):
    """A frame is not a JPEG/PNG, is corrupt, or is too large in bytes or pixels."""

    def __init__(self, message: str, *, frame_index: int | None = None) -> None:
        super().__init__(message)
        self.frame_index = frame_index


class EngineUnavailable(errors.ServiceUnavailable):
    """The models are missing, fail their sha256 check, or fail to load (code -20)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, codes=[errors.MODEL_LOAD_FAILED])


@runtime_checkable
class Engine(Protocol):
    """The biometric engine the service awaits; implementations never block the loop."""

    model_version: str

    def ready(self) -> bool:
        """True once the models are loaded and checked."""
        ...

    async def analyze(
        self,
        frames: Sequence[bytes],
        *,
        liveness: LivenessMode,
        challenge: Challenge | None,
        frame_times: Sequence[float] | None,
        want_portrait: bool,
    ) -> Analysis:
        """Decode, check quality, detect, check liveness and embed one capture."""
        ...

    async def warm_up(self) -> None:
        """Load the models and run each network once, so the first capture is not slower."""
        ...

    async def close(self) -> None:
        """Release workers and models."""
        ...
