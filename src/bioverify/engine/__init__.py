"""Biometric engine: face detection, quality, liveness, templates and 1:N search.

The service depends on the names below only; see ``docs/engine.md``.
"""

from bioverify.engine.gallery import Gallery, MemoryGallery
from bioverify.engine.interfaces import (
    Analysis,
    Challenge,
    ChallengeStep,
    Engine,
    EngineUnavailable,
    InvalidImage,
    LivenessMode,
    LivenessReport,
    Outcome,
    new_challenge,
)
from bioverify.engine.matcher import Thresholds, cosine, load_thresholds
from bioverify.engine.models import MODEL_VERSION
from bioverify.engine.pipeline import LocalEngine
from bioverify.engine.pool import PoolEngine

__all__ = [
    "MODEL_VERSION",
    "Analysis",
    "Challenge",
    "ChallengeStep",
    "Engine",
    "EngineUnavailable",
    "Gallery",
    "InvalidImage",
    "LivenessMode",
    "LivenessReport",
    "LocalEngine",
    "MemoryGallery",
    "Outcome",
    "PoolEngine",
    "Thresholds",
    "cosine",
    "load_thresholds",
    "new_challenge",
]
