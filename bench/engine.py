"""Engine timings and 1:N search: prints numbers and an in-run baseline; never asserts.

Per-stage pipeline timings on one 640x480 frame, one core (baseline: the two bare
model calls, YuNet detect + SFace feature, without the pipeline around them), then
1:N search latency and recall@1 of the gallery (HNSW) against exact search at 10k,
100k and 1M templates (random unit vectors, the hard case for HNSW: real face
embeddings cluster by identity). ``--max-size`` sizes the largest gallery down.

    python bench/engine.py [--frames 60] [--queries 300] [--max-size 1000000]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Sequence

import cv2
import numpy as np

from bioverify.engine import LivenessMode, LocalEngine, MemoryGallery, cosine
from bioverify.engine.decode import decode_frame
from bioverify.engine.models import DETECT_MAX_SIDE
from bioverify.engine.samples import SamplesUnavailable, fetch

GOALS = "goals: pipeline <= 150 ms median per frame; 1:N at 1M <= 5 ms p99, recall@1 >= 0.99"


def _pct(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def _row(name: str, values: Sequence[float]) -> str:
    return (
        f"  {name:<22} median {statistics.median(values):8.2f} ms   p99 {_pct(values, 99):8.2f} ms"
    )


def _frame() -> bytes:
    """A 640x480 JPEG with one real face (registry sample), or a photo from tests/data/faces."""
    try:
        image = cv2.imread(str(fetch("skimage") / "astronaut.png"))
    except SamplesUnavailable:
        image = cv2.imread("tests/data/faces/img1.jpg")
    if image is None:
        raise SystemExit("no sample face available (registry unreachable, no tests/data/faces)")
    face = cv2.resize(image, (480, 480), interpolation=cv2.INTER_AREA)
    canvas = cv2.copyMakeBorder(face, 0, 0, 80, 80, cv2.BORDER_REPLICATE)
    ok, buf = cv2.imencode(".jpg", canvas, [cv2.IMWRITE_JPEG_QUALITY, 90])
    if not ok:
        raise SystemExit("cannot encode the bench frame")
    return bytes(buf.tobytes())


def _time(func: Callable[[], object], repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        out.append((time.perf_counter() - start) * 1000.0)
    return out


def bench_pipeline(frames: int) -> None:
    cv2.setNumThreads(1)  # one core, as a pool worker runs
    engine = LocalEngine()
    frame = _frame()
    result = engine.analyze_sync([frame], liveness=LivenessMode.PASSIVE)
    if result.embedding is None:
        raise SystemExit(f"bench frame did not pass the pipeline: {result.reasons}")
    template = result.embedding
    stages: dict[str, list[float]] = {}
    totals: list[float] = []
    for _ in range(frames):
        start = time.perf_counter()
        analysis = engine.analyze_sync([frame], liveness=LivenessMode.PASSIVE)
        totals.append((time.perf_counter() - start) * 1000.0)
        for stage, ms in analysis.timings_ms.items():
            stages.setdefault(stage, []).append(ms)
        if analysis.embedding is not None:
            start = time.perf_counter()
            cosine(analysis.embedding, template)
            stages.setdefault("match", []).append((time.perf_counter() - start) * 1000.0)
    print(f"pipeline, 640x480 JPEG, passive liveness, 1 core, {frames} runs")
    for stage in ("decode", "quality", "detect", "liveness", "embed", "match"):
        print(_row(stage, stages[stage]))
    print(_row("whole pipeline", totals))
    # Baseline: the bare model calls the pipeline is built around.
    image = decode_frame(frame)
    detector = engine.models
    faces = detector.detect(image)
    bare_detect = _time(lambda: detector.detect(image), frames)
    bare_embed = _time(lambda: detector.embed(image, faces[0]), frames)
    print(f"baseline: bare YuNet at {DETECT_MAX_SIDE} px and SFace align+feature")
    print(_row("bare detect", bare_detect))
    print(_row("bare embed", bare_embed))
    print(_row("bare detect+embed", [a + b for a, b in zip(bare_detect, bare_embed, strict=True)]))


def _unit(count: int, rng: np.random.Generator) -> np.ndarray:
    vectors = rng.standard_normal((count, 128), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors


def bench_search(size: int, queries: int, rng: np.random.Generator) -> None:
    vectors = _unit(size, rng)
    gallery = MemoryGallery(index_threshold=size)  # the last add builds the PQ index
    start = time.perf_counter()
    for i in range(size):
        gallery.add("bench", str(i), vectors[i])
    build_s = time.perf_counter() - start
    probes_idx = rng.integers(0, size, queries)
    noise = rng.standard_normal((queries, 128), dtype=np.float32) * 0.06
    probes = vectors[probes_idx] + noise  # a fresh capture of an enrolled person
    hnsw_ms, hits, agree = [], 0, 0
    exact_ms = []
    exact_every = max(1, queries // 50) if size >= 1_000_000 else 1
    for n, probe in enumerate(probes):
        start = time.perf_counter()
        top = gallery.search("bench", probe, 1)
        hnsw_ms.append((time.perf_counter() - start) * 1000.0)
        hits += top[0][0] == str(probes_idx[n])
        if n % exact_every == 0:
            start = time.perf_counter()
            scores = vectors @ (probe / np.linalg.norm(probe))
            best = int(np.argmax(scores))
            exact_ms.append((time.perf_counter() - start) * 1000.0)
            agree += top[0][0] == str(best)
    print(f"1:N gallery of {size:,} (build {build_s:.1f} s incl. HNSW), {queries} queries")
    print(_row("HNSW + exact rescoring", hnsw_ms) + f"   recall@1 vs mate {hits / queries:.4f}")
    print(
        _row("baseline exact numpy", exact_ms)
        + f"   HNSW top-1 == exact top-1 {agree / len(exact_ms):.4f}"
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--max-size", type=int, default=1_000_000)
    args = parser.parse_args(argv)
    print(GOALS)
    bench_pipeline(args.frames)
    rng = np.random.default_rng(7)
    for size in (10_000, 100_000, 1_000_000):
        bench_search(min(size, args.max_size), args.queries, rng)
        if size >= args.max_size:
            if size > args.max_size:
                print(f"  (sized down from {size:,} by --max-size)")
            break


if __name__ == "__main__":
    main()
