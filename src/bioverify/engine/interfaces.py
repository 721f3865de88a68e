"""The engine's contract: what the service calls, and the exceptions it raises.

The service sees only these names; the implementation (``pipeline``/``pool``) and
the model files stay behind them.
"""

from __future__ import annotations

import random
import secrets
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from itertools import pairwise
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
    BLINK = "BLINK"
    SMILE = "SMILE"


#: Steps that change the 3-D pose; a flat photo moved or tilted cannot fake them.
POSE_STEPS = frozenset({ChallengeStep.TURN_LEFT, ChallengeStep.TURN_RIGHT, ChallengeStep.NOD})
#: Steps that change the face's shape; a flat photo, however held, cannot show them.
EXPRESSION_STEPS = frozenset({ChallengeStep.BLINK, ChallengeStep.SMILE})
#: Steps that count towards a challenge's minimum of two: MOVE_CLOSER never does
#: (moving a photo towards the camera does it too).
ACTION_STEPS = POSE_STEPS | EXPRESSION_STEPS
#: Counted steps in every challenge (the issue asks for at least two).
ACTION_COUNT = 3
#: Steps a challenge may hold at most (the burst is at most 24 frames).
MAX_CHALLENGE_STEPS = 4


@dataclass(frozen=True)
class Challenge:
    """A random sequence of movements issued on session load."""

    id: str
    steps: tuple[ChallengeStep, ...]


def new_challenge(rng: random.Random | None = None) -> Challenge:
    """Three random steps from :data:`ACTION_STEPS`, never the same step twice in a
    row: at least one head movement (:data:`POSE_STEPS`), at least one expression
    (:data:`EXPRESSION_STEPS`), at most one BLINK (it takes half the burst); now and
    then a fourth step, MOVE_CLOSER, which never counts towards the others.

    The expression is what a flat photo cannot show however it is tilted (a tilted
    photo can come close to a small head turn); the head movement, and a third step,
    are what people talking do not show unprompted in the asked order (with two
    steps, 0.12% of talking bursts passed; docs/engine.md). The default randomness
    comes from :mod:`secrets`; pass ``rng`` only in tests.
    """
    chooser: random.Random = rng if rng is not None else secrets.SystemRandom()
    actions = sorted(ACTION_STEPS)
    while True:
        steps = [chooser.choice(actions) for _ in range(ACTION_COUNT)]
        if ChallengeStep.BLINK not in steps and chooser.random() < 0.25:
            steps.insert(chooser.randrange(ACTION_COUNT + 1), ChallengeStep.MOVE_CLOSER)
        if (
            any(s in POSE_STEPS for s in steps)
            and any(s in EXPRESSION_STEPS for s in steps)
            and steps.count(ChallengeStep.BLINK) <= 1
            and all(a is not b for a, b in pairwise(steps))
        ):
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
    """Liveness result: ``score`` in [0, 1], 1 = live. Not a certified PAD result.

    ``signals``: risk measurements that do not decide ``passed`` but should raise the
    session's risk (e.g. ``planarity_residual``, see docs/engine.md).
    """

    method: str
    score: float
    passed: bool
    reasons: tuple[str, ...]
    signals: Mapping[str, float] = field(default_factory=dict)


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
