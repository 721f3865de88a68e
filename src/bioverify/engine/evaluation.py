"""``bioverify eval``: measure the engine on labelled faces and calibrate thresholds.

Reproduces every figure in ``docs/engine.md``: genuine/impostor score distributions
over all pairs, ROC AUC, FNMR at fixed FMRs, the DET curve, 1:N rank-1 and
FNIR/FPIR (open set, leave-one-identity-out), face counts on group photos, and the
low-light limit. It writes a JSON report, a DET plot and ``thresholds.json``.
"""

from __future__ import annotations

import csv
import json
import math
import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import combinations
from pathlib import Path
from typing import Any, Final

import cv2
import numpy as np
import numpy.typing as npt

from bioverify.engine.decode import LOCAL_MAX_PIXELS, decode_frame
from bioverify.engine.interfaces import Embedding
from bioverify.engine.matcher import Thresholds
from bioverify.engine.models import MODEL_VERSION, FaceModels, Image, as_image
from bioverify.engine.quality import enhance, face_crop, grey
from bioverify.engine.samples import GROUP_FACE_COUNTS, SINGLE_FACES, read_image_bytes

TARGET_FMR: Final = 1e-4
TARGET_FPIR: Final = 0.003
#: Added above the highest impostor score seen: the data cannot resolve FMR 1e-4.
MARGIN: Final = 0.05
REPORTED_FMRS: Final = (1e-1, 1e-2, 1e-3, 1e-4)
#: Normal quantiles for the Gaussian tail estimates (one-sided).
_Z_FMR: Final = 3.719  # P(Z > z) = 1e-4
_Z_FPIR: Final = 2.748  # P(Z > z) = 0.003
#: Face-box mean lumas tried by the low-light calibration.
DARK_LEVELS: Final = (40.0, 30.0, 25.0, 20.0, 16.0, 12.0, 10.0, 8.0, 6.0)
#: Share of darkened faces that must still be found and matched for a luma to count
#: as usable. The limit is one level brighter than the darkest level that passes:
#: real sensors at high gain are noisier than the simulation.
LOW_LIGHT_PASS_RATE: Final = 0.95
DARK_NOISE_SIGMA: Final = 4.0
#: Photos are shrunk to this longest side before darkening (speed; the detector
#: works at 640 px and faces stay above 112 px).
_DARK_MAX_SIDE: Final = 1024

Progress = Callable[[str, int], Callable[[], None]]


def _no_progress(_label: str, _total: int) -> Callable[[], None]:
    return lambda: None


def darken(
    image: Image, factor: float, *, noise_sigma: float = DARK_NOISE_SIGMA, seed: int = 0
) -> Image:
    """A low-light version of ``image``: scaled brightness plus sensor-like noise."""
    rng = np.random.default_rng(seed)
    dark = image.astype(np.float32) * factor + rng.normal(0.0, noise_sigma, image.shape)
    out: Image = np.clip(np.rint(dark), 0, 255).astype(np.uint8)
    return out


@dataclass(frozen=True, eq=False)
class Labelled:
    """One labelled photo and what the engine made of it."""

    name: str
    identity: str
    image: Image
    embedding: Embedding | None
    face_luma: float


def read_identities(folder: Path) -> list[tuple[Path, str]]:
    """(photo, identity) rows of ``folder/identities.csv``."""
    with (folder / "identities.csv").open(newline="", encoding="utf-8") as handle:
        return [(folder / row["file"], row["identity"]) for row in csv.DictReader(handle)]


def _largest_face(models: FaceModels, image: Image) -> tuple[Embedding | None, float]:
    faces = models.detect(image, enhance)
    if not faces:
        return None, 0.0
    face = faces[0]  # largest: the labelled person in photos with bystanders
    return models.embed(image, face), float(grey(face_crop(image, face)).mean())


def load_labelled(
    models: FaceModels, rows: Sequence[tuple[Path, str]], advance: Callable[[], None]
) -> list[Labelled]:
    """Decode and embed every labelled photo (largest face)."""
    out: list[Labelled] = []
    for path, identity in rows:
        image = decode_frame(read_image_bytes(path), max_pixels=LOCAL_MAX_PIXELS)
        embedding, luma = _largest_face(models, image)
        out.append(Labelled(path.name, identity, image, embedding, luma))
        advance()
    return out


def roc_auc(genuine: Sequence[float], impostor: Sequence[float]) -> float:
    """Probability a genuine score beats an impostor score (ties count half)."""
    gen = np.asarray(genuine, np.float64)[:, None]
    imp = np.asarray(impostor, np.float64)[None, :]
    return float(np.mean((gen > imp) + 0.5 * (gen == imp)))


def error_rates(
    genuine: Sequence[float], impostor: Sequence[float], threshold: float
) -> tuple[float, float]:
    """(FMR, FNMR) when accepting scores >= ``threshold``."""
    fmr = float(np.mean(np.asarray(impostor) >= threshold)) if impostor else 0.0
    fnmr = float(np.mean(np.asarray(genuine) < threshold)) if genuine else 0.0
    return fmr, fnmr


def fnmr_at_fmr(genuine: Sequence[float], impostor: Sequence[float], fmr: float) -> dict[str, Any]:
    """Lowest threshold whose FMR is <= ``fmr``, and the FNMR there; flags resolution."""
    imp = np.sort(np.asarray(impostor, np.float64))[::-1]
    allowed = math.floor(fmr * len(imp))  # impostors allowed at or above threshold
    if allowed < len(imp):
        # Strictly above the first impostor that must be refused, on the report's 1e-4 grid:
        # ceil(x * 1e4) / 1e4 can land back on x itself (0.95 -> 0.95), accepting it.
        bound = float(imp[allowed])
        threshold = math.ceil(bound * 1e4) / 1e4
        while threshold <= bound:
            threshold = (round(threshold * 1e4) + 1) / 1e4
    else:
        # Round up (never down) for the report, and measure at the reported value.
        threshold = math.ceil(float(imp[-1]) * 1e4) / 1e4
    measured_fmr, fnmr = error_rates(genuine, impostor, threshold)
    return {
        "target_fmr": fmr,
        "threshold": threshold,
        "fmr": measured_fmr,
        "fnmr": fnmr,
        "resolvable": fmr * len(imp) >= 1.0,
    }


def det_curve(
    genuine: Sequence[float], impostor: Sequence[float]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """(thresholds, FMR, FNMR) over every distinct score."""
    thresholds = np.unique(np.concatenate([np.asarray(genuine), np.asarray(impostor)]))
    imp = np.sort(np.asarray(impostor, np.float64))
    gen = np.sort(np.asarray(genuine, np.float64))
    fmr = 1.0 - np.searchsorted(imp, thresholds, side="left") / len(imp)
    fnmr = np.searchsorted(gen, thresholds, side="left") / len(gen)
    return thresholds, fmr, fnmr


def gaussian_tail(scores: Sequence[float], z: float) -> float:
    """Score a normal fit of ``scores`` exceeds with the tail probability of ``z``."""
    return statistics.fmean(scores) + z * statistics.stdev(scores)


def _ceil2(value: float) -> float:
    return math.ceil(value * 100.0) / 100.0


def choose_threshold(scores: Sequence[float], z: float) -> tuple[float, str]:
    """max(highest score + MARGIN, normal-tail estimate), rounded up to 0.01."""
    by_max = max(scores) + MARGIN
    by_tail = gaussian_tail(scores, z)
    return _ceil2(max(by_max, by_tail)), (
        f"max(highest non-matching score {max(scores):.4f} + margin {MARGIN}, normal-tail "
        f"estimate {by_tail:.4f}) rounded up to 0.01"
    )


def identification(
    samples: Sequence[Labelled], distractors: Sequence[Embedding], threshold: float | None = None
) -> dict[str, Any]:
    """1:N figures: closed-set rank-1 and open-set FNIR/FPIR.

    Gallery: each identity's first photo. Mated probes: the other photos. Non-mated
    probes: every photo of an identity removed from the gallery (leave one identity
    out), plus the registry faces, which belong to no identity.
    """
    firsts: dict[str, Labelled] = {}
    for s in samples:
        firsts.setdefault(s.identity, s)
    ids = list(firsts)
    gallery = np.stack([firsts[i].embedding for i in ids])  # type: ignore[misc]
    mated_top: list[tuple[bool, float]] = []
    non_mated_top: list[float] = []
    for s in samples:
        if s is firsts[s.identity] or s.embedding is None:
            continue
        scores = gallery @ s.embedding
        best = int(np.argmax(scores))
        mated_top.append((ids[best] == s.identity, float(scores[best])))
        others = [j for j, i in enumerate(ids) if i != s.identity]
        non_mated_top.append(float(np.max(scores[others])))
    for d in distractors:
        non_mated_top.append(float(np.max(gallery @ d)))
    rank1 = sum(ok for ok, _ in mated_top)
    result: dict[str, Any] = {
        "gallery_size": len(ids),
        "mated_probes": len(mated_top),
        "non_mated_probes": len(non_mated_top),
        "rank1_hits": rank1,
        "rank1_rate": rank1 / len(mated_top) if mated_top else 0.0,
        "max_non_mated_score": max(non_mated_top),
        "fpir_resolvable": TARGET_FPIR * len(non_mated_top) >= 1.0,
    }
    chosen, how = choose_threshold(non_mated_top, _Z_FPIR)
    result["threshold_rule"] = how
    result["threshold_candidate"] = chosen
    if threshold is not None:
        result["threshold"] = threshold
        result["fpir"] = float(np.mean(np.asarray(non_mated_top) >= threshold))
        result["fnir"] = float(
            np.mean([not (ok and score >= threshold) for ok, score in mated_top])
        )
    return result


def low_light(
    models: FaceModels, samples: Sequence[Labelled], verify: float, advance: Callable[[], None]
) -> dict[str, Any]:
    """Detection and match rate against the bright photo as faces get darker."""
    rows: list[dict[str, float]] = []
    usable = [s for s in samples if s.embedding is not None and s.face_luma > 0]
    shrunk = [_shrink(s.image, _DARK_MAX_SIDE) for s in usable]
    passing = 0
    for level in DARK_LEVELS:
        found = matched = 0
        for n, s in enumerate(usable):
            dark = darken(shrunk[n], level / s.face_luma, seed=n)
            embedding, _ = _largest_face(models, dark)
            if embedding is not None:
                found += 1
                matched += float(np.dot(embedding, s.embedding)) >= verify  # type: ignore[arg-type]
        rate_found, rate_matched = found / len(usable), matched / len(usable)
        rows.append({"face_luma": level, "detected": rate_found, "matched": rate_matched})
        if passing == len(rows) - 1 and min(rate_found, rate_matched) >= LOW_LIGHT_PASS_RATE:
            passing += 1
        advance()
    darkest_ok = DARK_LEVELS[max(0, passing - 1)]
    chosen = DARK_LEVELS[max(0, passing - 2)]
    return {
        "levels": rows,
        "pass_rate": LOW_LIGHT_PASS_RATE,
        "darkest_usable": darkest_ok,
        "low_light_luma": chosen,
        "rule": f"one level brighter than the darkest face luma at which >= "
        f"{LOW_LIGHT_PASS_RATE:.0%} of darkened faces (Gaussian noise sigma "
        f"{DARK_NOISE_SIGMA}) are still detected and match their bright photo at "
        f"the verify threshold",
    }


def _shrink(image: Image, max_side: int) -> Image:
    scale = max_side / max(image.shape[:2])
    if scale >= 1.0:
        return image
    return as_image(cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA))


def face_counts(models: FaceModels, paths: Iterable[Path]) -> dict[str, Any]:
    """Faces found vs expected in the group photos."""
    per_photo: dict[str, dict[str, int]] = {}
    for path in paths:
        image = decode_frame(read_image_bytes(path), max_pixels=LOCAL_MAX_PIXELS)
        per_photo[path.name] = {
            "expected": GROUP_FACE_COUNTS[path.name],
            "found": len(models.detect(image, enhance)),
        }
    expected = sum(p["expected"] for p in per_photo.values())
    exact = sum(p["expected"] == p["found"] for p in per_photo.values())
    return {
        "photos": per_photo,
        "faces_expected": expected,
        "faces_found": sum(min(p["found"], p["expected"]) for p in per_photo.values()),
        "extra_detections": sum(max(0, p["found"] - p["expected"]) for p in per_photo.values()),
        "photos_counted_exactly": exact,
    }


def plot_det(
    path: Path, genuine: Sequence[float], impostor: Sequence[float], marks: dict[str, float]
) -> None:
    """Draw the DET curve (log axes) and the score distributions to ``path`` (PNG)."""
    import matplotlib  # noqa: PLC0415 - plotting is only needed here

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    _, fmr, fnmr = det_curve(genuine, impostor)
    floor = 1e-5  # rates of exactly 0 are drawn on this line
    fig, (det, hist) = plt.subplots(1, 2, figsize=(11, 4.6), dpi=100)
    det.step(np.maximum(fmr, floor), np.maximum(fnmr, floor), where="post", label="SFace int8")
    for (label, threshold), colour in zip(marks.items(), ("tab:red", "tab:green"), strict=False):
        x, y = error_rates(genuine, impostor, threshold)
        det.plot(
            max(x, floor),
            max(y, floor),
            "o",
            color=colour,
            label=f"{label}: cos >= {threshold:.3f}",
        )
        hist.axvline(threshold, color=colour, linestyle="--", label=label)
    det.axvline(TARGET_FMR, color="grey", linestyle=":", label="target FMR 1e-4")
    det.axvline(
        1.0 / len(impostor), color="grey", linestyle="-.", label="resolution 1/#impostor pairs"
    )
    det.set_xscale("log")
    det.set_yscale("log")
    det.set_xlim(floor / 2, 1.0)
    det.set_ylim(floor / 2, 1.0)
    det.set_xlabel(f"FMR ({len(impostor)} impostor pairs)")
    det.set_ylabel(f"FNMR ({len(genuine)} genuine pairs)")
    det.set_title("DET, 1:1 (zero rates drawn at 1e-5)")
    det.grid(True, which="both", alpha=0.3)
    det.legend(fontsize=7, loc="upper right")
    bins = np.linspace(-0.3, 1.0, 66)
    hist.hist(impostor, bins=bins, alpha=0.6, density=True, label="impostor")
    hist.hist(genuine, bins=bins, alpha=0.6, density=True, label="genuine")
    hist.set_xlabel("cosine similarity")
    hist.set_ylabel("density")
    hist.set_title("Score distributions")
    hist.legend(fontsize=7)
    fig.suptitle(MODEL_VERSION, fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, metadata={"Software": None})
    plt.close(fig)


def _distractor_embeddings(models: FaceModels, extra: Sequence[Path]) -> list[Embedding]:
    out: list[Embedding] = []
    for path in extra:
        image = decode_frame(read_image_bytes(path), max_pixels=LOCAL_MAX_PIXELS)
        if path.name in GROUP_FACE_COUNTS:
            faces = models.detect(image, enhance)
            out.extend(models.embed(image, f) for f in faces)
        elif path.name in SINGLE_FACES:
            # An aligned 112-px crop gets a border so the detector sees a whole head.
            padded = as_image(cv2.copyMakeBorder(image, 56, 56, 56, 56, cv2.BORDER_REPLICATE))
            embedding, _ = _largest_face(models, padded)
            if embedding is not None:
                out.append(embedding)
    return out


def evaluate(
    faces_dirs: Sequence[Path],
    extra_images: Sequence[Path],
    out_dir: Path,
    *,
    det_png: Path,
    thresholds_path: Path | None,
    progress: Progress = _no_progress,
    models: FaceModels | None = None,
) -> dict[str, Any]:
    """Run the whole evaluation; write the report, the DET plot and the thresholds."""
    models = models if models is not None else FaceModels()
    rows = [row for folder in faces_dirs for row in read_identities(folder)]
    samples = load_labelled(models, rows, progress("embedding labelled photos", len(rows)))
    missed = [s.name for s in samples if s.embedding is None]
    usable = [s for s in samples if s.embedding is not None]
    genuine: list[float] = []
    impostor: list[float] = []
    for a, b in combinations(usable, 2):
        score = float(np.dot(a.embedding, b.embedding))  # type: ignore[arg-type]
        (genuine if a.identity == b.identity else impostor).append(score)
    group_paths = [
        folder / name
        for folder in faces_dirs
        for name in GROUP_FACE_COUNTS
        if (folder / name).exists()
    ]
    group_paths += [p for p in extra_images if p.name in GROUP_FACE_COUNTS]
    distractors = _distractor_embeddings(models, extra_images)
    cross = [float(np.dot(d, s.embedding)) for d in distractors for s in usable]  # type: ignore[arg-type]
    verify, verify_rule = choose_threshold(impostor + cross, _Z_FMR)
    ident = identification(usable, distractors)
    identify = max(verify, float(ident["threshold_candidate"]))
    ident = identification(usable, distractors, identify)
    dark = low_light(models, usable, verify, progress("low-light calibration", len(DARK_LEVELS)))
    counts = face_counts(models, group_paths)
    fmr, fnmr = error_rates(genuine, impostor + cross, verify)
    report: dict[str, Any] = {
        "model_version": MODEL_VERSION,
        "generated_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "data": {
            "labelled_photos": len(samples),
            "identities": len({s.identity for s in samples}),
            "no_face_found": missed,
            "registry_faces": len(distractors),
        },
        "verification": {
            "genuine_pairs": len(genuine),
            "impostor_pairs": len(impostor),
            "registry_impostor_pairs": len(cross),
            "genuine": _summary(genuine),
            "impostor": _summary(impostor + cross),
            "roc_auc": roc_auc(genuine, impostor + cross),
            "fnmr_at_fmr": [fnmr_at_fmr(genuine, impostor + cross, f) for f in REPORTED_FMRS],
            "opencv_default_0.363": dict(
                zip(("fmr", "fnmr"), error_rates(genuine, impostor + cross, 0.363), strict=True)
            ),
            "threshold": verify,
            "threshold_rule": verify_rule,
            "fmr": fmr,
            "fnmr": fnmr,
            "note": (
                f"{len(impostor) + len(cross)} impostor pairs resolve FMR down to about "
                f"{1 / (len(impostor) + len(cross)):.1e}; FMR 1e-4 cannot be measured "
                "here, so the threshold is set above every impostor score with a margin "
                "and above a normal-tail extrapolation."
            ),
        },
        "identification": ident,
        "low_light": dark,
        "face_count": counts,
    }
    thresholds = Thresholds(
        model_version=MODEL_VERSION,
        verify=verify,
        identify=identify,
        target_fmr=TARGET_FMR,
        target_fpir=TARGET_FPIR,
        method=(
            f"bioverify eval on {len(usable)} photos of {report['data']['identities']} "
            f"people + {len(distractors)} registry faces; verify: {verify_rule}; "
            f"identify: max(verify, {ident['threshold_rule']})"
        ),
        low_light_luma=float(dark["low_light_luma"]),
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "report.json").write_text(json.dumps(report, indent=2) + "\n", "utf-8")
    (out_dir / "thresholds.json").write_text(thresholds.to_json(), "utf-8")
    if thresholds_path is not None:
        thresholds_path.write_text(thresholds.to_json(), "utf-8")
    plot_det(
        det_png,
        genuine,
        impostor + cross,
        {"chosen verify threshold": verify, "OpenCV default": 0.363},
    )
    return report


def _summary(scores: Sequence[float]) -> dict[str, float]:
    arr = np.asarray(scores, np.float64)
    return {
        "n": float(arr.size),
        "min": float(arr.min()),
        "mean": float(arr.mean()),
        "max": float(arr.max()),
        "p01": float(np.quantile(arr, 0.01)),
        "p99": float(np.quantile(arr, 0.99)),
    }
