"""Active liveness on real people: prints the evaluation's numbers and GOAL lines.

Runs ``bioverify eval --liveness``'s measurement (engine/liveness_eval.py) on the
real clips (fetched once, sha256-pinned, cached outside the repository with their
per-frame measurements, so a repeated run takes about a minute on one core) and
ends with one line per goal of issue 21. In-run baselines: the old 2-D pose proxies
(engine/pose.py, still computed for every frame) on the same tilted photos, and the
attack-free pass rate of the same unprompted bursts.

    python bench/liveness.py [--challenges 500]
"""

from __future__ import annotations

import argparse
import json

import cv2

from bioverify.engine import liveness_data
from bioverify.engine.facemesh import FaceMesh
from bioverify.engine.liveness_eval import evaluate_liveness
from bioverify.engine.matcher import load_thresholds
from bioverify.engine.models import FaceModels


def _goal(name: str, value: float, goal: str, met: bool) -> str:
    return f"GOAL {name} {value:.4f} {goal} {'met' if met else 'NOT met'}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--challenges", type=int, default=500, help="issued per attack kind")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    folder = liveness_data.fetch_clips()
    loaded: list[tuple[FaceModels, FaceMesh]] = []

    def models() -> tuple[FaceModels, FaceMesh]:
        if not loaded:
            loaded.append((FaceModels(), FaceMesh()))
        return loaded[0]

    report = evaluate_liveness(
        folder,
        models,
        load_thresholds().verify,
        attacks_per_kind=args.challenges,
        progress=lambda step: print(f"-- {step}", flush=True),
    )
    print(json.dumps(report, indent=1, sort_keys=True))
    genuine = report["genuine_windows"]
    blinks = report["blinks"]
    attacks = report["attacks"]
    unprompted = report["unprompted"]
    extremes = attacks["tilted_extremes"]
    print(
        "baseline (old 2-D proxies, same tilted photos): yaw proxy moved by "
        f"{extremes['max_proxy_yaw_change']:.3f} IOD against the old 0.15 turn step; "
        f"3-D pose moved by {extremes['max_yaw_change_deg']:.1f} deg against "
        f"{extremes['turn_threshold_deg']:.0f}"
    )
    print(
        f"genuine windows: {genuine['hard_failed']}/{genuine['windows']} hard-failed; "
        f"unprompted: {unprompted['passed']}/{unprompted['challenges']} passed"
    )
    blink_ok = blinks["detected_every_phase"] == blinks["blinks"] == 3
    print(_goal("genuine_windows_hard_failed", genuine["rate"], "<=0.02", genuine["rate"] <= 0.02))
    print(
        _goal(
            "blink_recall",
            blinks["detected_every_phase"] / blinks["blinks"],
            "=1(3/3)+0_false_in_look_down",
            blink_ok and blinks["false_blinks_look_down"] == 0,
        )
    )
    tilted = attacks["tilted_adaptive"]
    print(
        _goal(
            "tilted_photo_attacker_passes",
            tilted["passed"],
            f"=0_of>=500(issued_{tilted['challenges']})",
            tilted["passed"] == 0 and tilted["challenges"] >= 500,
        )
    )
    injected = attacks["still"]["passed"] + attacks["reencoded_or_noise"]["passed"]
    print(_goal("still_and_reencoded_injection_passes", injected, "=0", injected == 0))
    print(
        _goal(
            "unprompted_talking_pass_rate",
            unprompted["rate"],
            "<=0.001",
            unprompted["rate"] <= 0.001,
        )
    )


if __name__ == "__main__":
    main()
