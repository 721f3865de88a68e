"""``bioverify eval --liveness``: active liveness measured on real clips."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cv2
from rich.console import Console

from bioverify.engine import liveness_data
from bioverify.engine.facemesh import FaceMesh
from bioverify.engine.liveness_eval import evaluate_liveness
from bioverify.engine.matcher import load_thresholds
from bioverify.engine.models import FaceModels


def run_liveness_eval(out: Path, cache: Path | None, console: Console) -> dict[str, Any]:
    """Fetch the clips (once), evaluate, write ``out/liveness.json``; the report."""
    cv2.setNumThreads(1)  # the machine is shared; one core is enough and predictable
    folder = liveness_data.fetch_clips(cache)
    loaded: list[tuple[FaceModels, FaceMesh]] = []

    def models() -> tuple[FaceModels, FaceMesh]:
        if not loaded:
            loaded.append((FaceModels(), FaceMesh()))
        return loaded[0]

    threshold = load_thresholds().verify
    report = evaluate_liveness(
        folder, models, threshold, progress=lambda step: console.print(f"liveness: {step}")
    )
    out.mkdir(parents=True, exist_ok=True)
    (out / "liveness.json").write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    return report


def summary(report: dict[str, Any]) -> str:
    genuine = report["genuine_windows"]
    blinks = report["blinks"]
    attacks = report["attacks"]
    unprompted = report["unprompted"]
    return (
        f"genuine windows hard-failed {genuine['hard_failed']}/{genuine['windows']}; "
        f"blinks {blinks['detected_every_phase']}/{blinks['blinks']} "
        f"(false in look-down {blinks['false_blinks_look_down']}); unprompted passes "
        f"{unprompted['passed']}/{unprompted['challenges']}; attack passes: still "
        f"{attacks['still']['passed']}, re-encoded {attacks['reencoded_or_noise']['passed']}, "
        f"tilted {attacks['tilted_adaptive']['passed']} of {attacks['still']['challenges']}"
    )
