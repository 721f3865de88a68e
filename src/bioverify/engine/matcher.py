"""Matching: cosine similarity and the calibrated thresholds.

Thresholds are never literals in code: ``bioverify eval`` measures them on labelled
faces and writes ``thresholds.json`` next to this module, with the model version
they belong to. Loading thresholds made for another model fails closed.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from bioverify.engine.interfaces import EngineUnavailable
from bioverify.engine.models import MODEL_VERSION

THRESHOLDS_FILE: Final = "thresholds.json"


@dataclass(frozen=True)
class Thresholds:
    """Calibrated decision thresholds for one model version (cosine similarity)."""

    model_version: str
    verify: float  # 1:1: accept when cosine >= verify (aimed at target_fmr)
    identify: float  # 1:N: a candidate counts when cosine >= identify (target_fpir)
    target_fmr: float
    target_fpir: float
    method: str  # how they were chosen, in words
    low_light_luma: float  # face-box mean luma below which a capture is LOW_LIGHT

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"


def _parse(raw: Any, source: str) -> Thresholds:
    if not isinstance(raw, dict):
        raise EngineUnavailable(f"{source} is not a JSON object")
    try:
        values = Thresholds(
            model_version=str(raw["model_version"]),
            verify=float(raw["verify"]),
            identify=float(raw["identify"]),
            target_fmr=float(raw["target_fmr"]),
            target_fpir=float(raw["target_fpir"]),
            method=str(raw["method"]),
            low_light_luma=float(raw["low_light_luma"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise EngineUnavailable(f"{source} is missing or has a bad field: {exc}") from exc
    for name in ("verify", "identify"):
        value = getattr(values, name)
        if not -1.0 < value <= 1.0:
            raise EngineUnavailable(f"{source}: {name} threshold {value} is not a cosine")
    return values


def load_thresholds(path: Path | None = None, *, model_version: str = MODEL_VERSION) -> Thresholds:
    """The shipped thresholds (or ``path``'s); fails closed on a model version mismatch."""
    try:
        if path is None:
            text = resources.files("bioverify.engine").joinpath(THRESHOLDS_FILE).read_text("utf-8")
            source = f"bioverify/engine/{THRESHOLDS_FILE}"
        else:
            text = path.read_text("utf-8")
            source = str(path)
        raw = json.loads(text)
    except (OSError, ValueError) as exc:
        raise EngineUnavailable(
            f"Thresholds file cannot be read; run `bioverify eval`: {exc}"
        ) from exc
    thresholds = _parse(raw, source)
    if thresholds.model_version != model_version:
        raise EngineUnavailable(
            f"{source} was calibrated for {thresholds.model_version!r}, not the loaded "
            f"model {model_version!r}; run `bioverify eval` for this model"
        )
    return thresholds


def cosine(a: npt.ArrayLike, b: npt.ArrayLike) -> float:
    """Cosine similarity of two vectors (0.0 if either is zero)."""
    va = np.asarray(a, dtype=np.float64).reshape(-1)
    vb = np.asarray(b, dtype=np.float64).reshape(-1)
    if va.shape != vb.shape:
        raise ValueError(f"cosine of vectors of different sizes {va.shape} and {vb.shape}")
    denom = float(np.linalg.norm(va) * np.linalg.norm(vb))
    return float(np.dot(va, vb) / denom) if denom > 0.0 else 0.0
