"""Biometric engine: face detection, quality, liveness, templates and 1:N search.

The service depends on the names below only; see ``docs/engine.md``.
"""

import contextlib as _contextlib

# onnxruntime (the document OCR) must load its native library before usearch's (the
# gallery): in the other order ONNX type inference breaks ("std::bad_cast", "Mul bound
# to different types"; measured with onnxruntime 1.19-1.22, and 1.23+ crashes). The
# gallery below is the first importer of usearch in every process.
# Without onnxruntime the document reader fails closed on its own (-20).
with _contextlib.suppress(ImportError):
    import onnxruntime as _onnxruntime  # noqa: F401

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
