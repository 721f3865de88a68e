"""The portrait printed on a document: found by YuNet, embedded by SFace, compared.

A document portrait is small, printed (halftone, laminate) and photographed again,
so it scores lower against a live selfie than two photos do: it has its own
threshold, measured by ``bioverify eval --documents`` on generated documents and
stored in ``thresholds.json`` beside this module (never a constant in code).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from bioverify.engine.interfaces import Embedding, EngineUnavailable
from bioverify.engine.matcher import cosine
from bioverify.engine.models import FaceModels, Image
from bioverify.engine.quality import enhance

#: The calibration written by ``bioverify eval --documents``.
THRESHOLDS_FILE: Final = Path(__file__).resolve().parent / "thresholds.json"
#: A printed portrait whose face is smaller than this (pixels, shorter box side) is
#: not compared: SFace aligns to 112 px and below ~48 px it compares upsampling blur.
MIN_PORTRAIT_PX: Final = 48


@dataclass(frozen=True)
class PortraitThreshold:
    """The document-to-selfie threshold and the model it was measured with."""

    threshold: float
    model_version: str


def load_threshold(path: Path = THRESHOLDS_FILE) -> PortraitThreshold:
    """The calibrated threshold; :class:`EngineUnavailable` (-20) when it is missing."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return PortraitThreshold(float(data["portrait_threshold"]), str(data["model_version"]))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise EngineUnavailable(
            "The document portrait threshold is missing; run 'bioverify eval --documents'"
        ) from exc


def portrait_embedding(models: FaceModels, image: Image) -> Embedding | None:
    """The embedding of the largest face on the document, or None when there is none.

    The largest face is the portrait: the ghost image some documents also print is
    smaller. Contrast is enhanced for detection (printed faces are flat).
    """
    faces = models.detect(image, enhance)
    if not faces or faces[0].size < MIN_PORTRAIT_PX:
        return None
    return models.embed(image, faces[0])


def portrait_score(document: Embedding, selfie: Embedding) -> float:
    """Cosine similarity of the document portrait and the selfie."""
    return cosine(document, selfie)
