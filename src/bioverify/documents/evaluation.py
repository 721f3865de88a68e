"""``bioverify eval --documents``: read generated documents under capture conditions.

For every labelled face photo a passport (or, for the OCR sample, a TD2 or TD1
card) is generated with that photo as its portrait and photographed in software
under each condition of :mod:`.conditions`. Reported per condition: MRZ read rate
(every field exact), check-digit false accepts (a corrupted MRZ, or a misread one,
that came back as a verified record: must be 0), PDF417 read rate on licence
backs, portrait genuine/impostor scores against the other photos as selfies, and
time per document. The two OCR engines are compared on the same line crops, and
the document-to-selfie threshold is chosen from the impostor scores.
"""

from __future__ import annotations

import json
import statistics
import string
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import numpy as np

from bioverify.documents.barcode import read_aamva
from bioverify.documents.conditions import CONDITIONS, Condition, photograph
from bioverify.documents.generate import (
    CHECK_DIGIT_POSITIONS,
    Holder,
    corrupt_check_digit,
    render_licence_back,
    render_mrz_document,
)
from bioverify.documents.mrz_fields import MrzError, MrzFormat, MrzRecord, parse_mrz
from bioverify.documents.ocr import (
    ONNX_MODEL_VERSION,
    LineReader,
    OnnxLineReader,
    TesseractLineReader,
)
from bioverify.documents.portrait import THRESHOLDS_FILE, portrait_embedding
from bioverify.documents.reader import DocumentReader
from bioverify.documents.zone import find_mrz_lines
from bioverify.engine.decode import LOCAL_MAX_PIXELS, decode_frame
from bioverify.engine.evaluation import _Z_FMR, TARGET_FMR, choose_threshold, read_identities
from bioverify.engine.interfaces import Embedding, EngineUnavailable
from bioverify.engine.models import MODEL_VERSION, FaceModels, Image
from bioverify.engine.samples import read_image_bytes

#: OCR engine comparison: conditions on which tesseract is also run.
COMPARED_CONDITIONS: Final = ("clean", "perspective", "blur", "jpeg_q40")
_SURNAMES: Final = ("ERIKSSON", "OKAFOR", "NGUYEN", "SCHMIDT", "GARCIA", "KOWALSKI", "TANAKA")
_GIVEN: Final = ("ANNA MARIA", "JOHN", "LI", "MARIE CLAIRE", "OMAR", "SOFIA", "PETER PAUL")
_FORMATS: Final = (MrzFormat.TD3, MrzFormat.TD2, MrzFormat.TD1)

Progress = Callable[[str, int], Callable[[], None]]


def _no_progress(_label: str, _total: int) -> Callable[[], None]:
    return lambda: None


#: Document numbers are drawn without I, O and Q, as issuers that avoid look-alikes
#: do (ISO 3779 excludes the same three from vehicle numbers). Numbers with them are
#: measured separately ("hard_numbers"): OCR reads OCR-B's O as 0 with confidence.
ISSUER_ALPHABET: Final = "".join(sorted(set(string.ascii_uppercase) - set("IOQ"))) + string.digits
FULL_ALPHABET: Final = string.ascii_uppercase + string.digits


def random_holder(rng: np.random.Generator, today: date, alphabet: str = ISSUER_ALPHABET) -> Holder:
    """A plausible holder: random name, 9-character number, adult, valid for 1-9 years."""
    number = "".join(rng.choice(list(alphabet), 9))
    birth = today - timedelta(days=int(rng.integers(18 * 365, 80 * 365)))
    expiry = today + timedelta(days=int(rng.integers(365, 9 * 365)))
    return Holder(
        surname=str(rng.choice(_SURNAMES)),
        given_names=str(rng.choice(_GIVEN)),
        document_number=number,
        birth_date=birth,
        expiry_date=expiry,
        sex=str(rng.choice(["F", "M"])),
    )


def matches(record: MrzRecord, holder: Holder) -> bool:
    """True when every field of ``record`` is the holder's."""
    return (
        record.document_number == holder.document_number
        and record.surname == holder.surname
        and record.given_names == holder.given_names
        and record.birth_date == holder.birth_date
        and record.expiry_date == holder.expiry_date
        and record.sex == holder.sex
        and record.nationality == holder.nationality
        and record.issuing_country == holder.issuing_country
    )


def protected_fields_match(record: MrzRecord, holder: Holder) -> bool:
    """True when the fields that 9303 check digits cover (number, dates) are right."""
    return (
        record.document_number == holder.document_number
        and record.birth_date == holder.birth_date
        and record.expiry_date == holder.expiry_date
    )


def read_mrz(
    reader: LineReader, frame: Image, today: date, crops: list[Image] | None = None
) -> MrzRecord | None:
    """Zone (unless ``crops`` are given), OCR with ``reader``, 9303 checks: record or None."""
    crops = find_mrz_lines(frame) if crops is None else crops
    if not crops:
        return None
    read = reader.read_lines(crops)
    try:
        return parse_mrz([r.text for r in read], today=today, doubts=[r.doubts for r in read])
    except MrzError:
        return None


@dataclass
class _Tally:
    read: int = 0
    total: int = 0
    false_accepts: int = 0
    seconds: float = 0.0

    def rate(self) -> float:
        return self.read / self.total if self.total else 0.0


def _scores(
    portraits: Sequence[tuple[str, Embedding]], selfies: Sequence[tuple[str, str, Embedding]]
) -> tuple[list[float], list[float]]:
    genuine: list[float] = []
    impostor: list[float] = []
    for key, emb in portraits:
        photo, identity = key.split("|", 1)
        for other_photo, other_identity, selfie in selfies:
            if other_photo == photo:
                continue
            score = float(np.dot(emb, selfie))
            (genuine if other_identity == identity else impostor).append(score)
    return genuine, impostor


@dataclass
class _Run:
    """What every condition of one evaluation shares."""

    reader: DocumentReader
    tesseract: TesseractLineReader | None
    images: list[tuple[str, str, Image]]
    holders: list[Holder]
    selfies: list[tuple[str, str, Embedding]]
    ocr_sample: int
    corrupted_sample: int
    today: date
    ocr_cmp: dict[str, dict[str, _Tally]] = field(default_factory=dict)

    def fmt(self, index: int) -> MrzFormat:
        return _FORMATS[index % 3] if index < self.ocr_sample else MrzFormat.TD3

    def condition(
        self, condition: str, apply: Condition, tick: Callable[[], None]
    ) -> tuple[dict[str, Any], list[float], list[float]]:
        mrz, corrupted, barcode = _Tally(), _Tally(), _Tally()
        uncovered_misreads = 0
        portraits: list[tuple[str, Embedding]] = []
        times: list[float] = []
        for index, (name, identity, image) in enumerate(self.images):
            holder, fmt = self.holders[index], self.fmt(index)
            portrait = image if fmt is not MrzFormat.TD1 else None
            doc = render_mrz_document(fmt, holder, portrait, seed=index)
            frame = apply(photograph(doc.image, seed=index), index)
            emb: Embedding | None
            if index < self.ocr_sample:
                started = time.perf_counter()
                reading = self.reader.read(frame, today=self.today)
                times.append(time.perf_counter() - started)
                mrz.total += 1
                if reading.mrz is not None and matches(reading.mrz, holder):
                    mrz.read += 1
                elif reading.mrz is not None:
                    # Accepted but wrong: a check-digit false accept when a covered
                    # field is wrong; otherwise a name/country/sex misread (9303 has
                    # no check digit over those).
                    mrz.false_accepts += int(not protected_fields_match(reading.mrz, holder))
                    uncovered_misreads += int(protected_fields_match(reading.mrz, holder))
                emb = reading.portrait
                if condition in COMPARED_CONDITIONS:
                    self._compare_engines(condition, frame, holder)
                barcode.total += 1
                back = render_licence_back(holder, seed=index)
                record = read_aamva(apply(photograph(back.image, seed=index), index))
                if record is not None and record.document_number == holder.document_number:
                    barcode.read += 1
            else:
                emb = portrait_embedding(self.reader.faces, frame)
            if emb is not None and portrait is not None:
                portraits.append((f"{name}|{identity}", emb))
            if index < self.corrupted_sample:
                corrupted.total += 1
                corrupted.false_accepts += self._corrupted_accepted(
                    index, fmt, doc.mrz_lines, apply
                )
            tick()
        genuine, impostor = _scores(portraits, self.selfies)
        entry = {
            "mrz_read_rate": round(mrz.rate(), 4),
            "mrz_documents": mrz.total,
            "misread_accepted_covered_fields": mrz.false_accepts,
            "misread_accepted_uncovered_fields": uncovered_misreads,
            "corrupted_documents": corrupted.total,
            "check_digit_false_accepts": corrupted.false_accepts + mrz.false_accepts,
            "barcode_read_rate": round(barcode.rate(), 4),
            "barcode_documents": barcode.total,
            "portraits_found": len(portraits),
            "portraits_expected": sum(
                self.fmt(i) is not MrzFormat.TD1 for i in range(len(self.images))
            ),
            "ms_per_document_median": round(1000 * statistics.median(times), 1) if times else None,
        }
        return entry, genuine, impostor

    def _corrupted_accepted(
        self, index: int, fmt: MrzFormat, lines: tuple[str, ...], apply: Condition
    ) -> int:
        """1 when a document printed with one wrong check digit came back verified."""
        positions = CHECK_DIGIT_POSITIONS[fmt]
        bad = corrupt_check_digit(lines, positions[index % len(positions)])
        image = self.images[index][2] if fmt is not MrzFormat.TD1 else None
        doc = render_mrz_document(fmt, self.holders[index], image, seed=index, lines=bad)
        frame = apply(photograph(doc.image, seed=index), index)
        return int(isinstance(self.reader.read_mrz(frame, today=self.today), MrzRecord))

    def _compare_engines(self, condition: str, frame: Image, holder: Holder) -> None:
        """Run each engine on the same crops of ``frame``; count exact reads and time."""
        crops = find_mrz_lines(frame)
        for engine in (self.reader.lines, self.tesseract):
            if engine is None:
                continue
            tally = self.ocr_cmp.setdefault(engine.name, {}).setdefault(condition, _Tally())
            started = time.perf_counter()
            record = read_mrz(engine, frame, self.today, crops)
            tally.seconds += time.perf_counter() - started
            tally.total += 1
            tally.read += int(record is not None and matches(record, holder))


def evaluate_documents(
    faces: Path,
    out: Path,
    *,
    ocr_sample: int = 24,
    corrupted_sample: int = 12,
    seed: int = 7,
    thresholds_path: Path | None = THRESHOLDS_FILE,
    progress: Progress = _no_progress,
) -> dict[str, Any]:
    """Run the document evaluation and write ``documents.json`` in ``out``."""
    today = datetime.now(UTC).date()
    rng = np.random.default_rng(seed)
    # The evaluation measures the portrait threshold, so it needs none to start.
    reader = DocumentReader(faces=FaceModels(), lines=OnnxLineReader(), threshold=None)
    try:
        tesseract: TesseractLineReader | None = TesseractLineReader()
    except EngineUnavailable:
        tesseract = None
    selfies: list[tuple[str, str, Embedding]] = []
    images: list[tuple[str, str, Image]] = []
    for path, identity in read_identities(faces):
        image = decode_frame(read_image_bytes(path), max_pixels=LOCAL_MAX_PIXELS)
        found = reader.faces.detect(image)
        if found:
            selfies.append((path.name, identity, reader.faces.embed(image, found[0])))
            images.append((path.name, identity, image))
    run = _Run(
        reader=reader,
        tesseract=tesseract,
        images=images,
        holders=[random_holder(rng, today) for _ in images],
        selfies=selfies,
        ocr_sample=ocr_sample,
        corrupted_sample=corrupted_sample,
        today=today,
    )
    report: dict[str, Any] = {"conditions": {}}
    all_impostor: list[float] = []
    per_condition_scores: dict[str, tuple[list[float], list[float]]] = {}
    try:
        for condition, apply in CONDITIONS.items():
            tick = progress(f"documents: {condition}", len(images))
            entry, genuine, impostor = run.condition(condition, apply, tick)
            report["conditions"][condition] = entry
            all_impostor.extend(impostor)
            per_condition_scores[condition] = (genuine, impostor)
    finally:
        if tesseract is not None:
            tesseract.close()
    report["hard_numbers"] = _hard_numbers(reader, images[:ocr_sample], rng, today)
    threshold, method = choose_threshold(all_impostor, _Z_FMR)
    for condition, (genuine, impostor) in per_condition_scores.items():
        report["conditions"][condition]["portrait"] = _portrait_summary(
            genuine, impostor, threshold
        )
    report["portrait_threshold"] = threshold
    report["portrait_threshold_method"] = (
        f"{method}; over {len(all_impostor)} document-to-selfie non-matching pairs "
        f"({len({s[1] for s in selfies})} people), so FMR below about "
        f"{1 / max(1, len(all_impostor)):.0e} cannot be resolved (target {TARGET_FMR})"
    )
    report["ocr_engines"] = {
        engine: {
            condition: {
                "read_rate": round(t.rate(), 4),
                "documents": t.total,
                "ms_per_document_mean": round(1000 * t.seconds / t.total, 1) if t.total else None,
            }
            for condition, t in tallies.items()
        }
        for engine, tallies in run.ocr_cmp.items()
    }
    report["ocr_engine_chosen"] = reader.lines.name
    report["ocr_model_version"] = ONNX_MODEL_VERSION
    report["model_version"] = MODEL_VERSION
    report["photos"] = len(images)
    report["generated_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    out.mkdir(parents=True, exist_ok=True)
    (out / "documents.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    if thresholds_path is not None:
        calibration = {
            "portrait_threshold": threshold,
            "model_version": MODEL_VERSION,
            "method": report["portrait_threshold_method"],
        }
        thresholds_path.write_text(
            json.dumps(calibration, indent=2, sort_keys=True) + "\n", encoding="utf-8"
        )
    return report


def _hard_numbers(
    reader: DocumentReader,
    images: Sequence[tuple[str, str, Image]],
    rng: np.random.Generator,
    today: date,
) -> dict[str, Any]:
    """Clean passports whose numbers may hold I, O and Q: the known weak spot."""
    tally = _Tally()
    for index, (_name, _identity, image) in enumerate(images):
        holder = random_holder(rng, today, FULL_ALPHABET)
        doc = render_mrz_document(MrzFormat.TD3, holder, image, seed=index)
        record = reader.read_mrz(photograph(doc.image, seed=index), today=today)
        tally.total += 1
        if isinstance(record, MrzRecord):
            if matches(record, holder):
                tally.read += 1
            else:
                tally.false_accepts += int(not protected_fields_match(record, holder))
    return {
        "mrz_read_rate": round(tally.rate(), 4),
        "documents": tally.total,
        "check_digit_false_accepts": tally.false_accepts,
        "alphabet": "A-Z0-9 (with I, O, Q)",
    }


def _portrait_summary(
    genuine: list[float], impostor: list[float], threshold: float
) -> dict[str, Any]:
    def stats(values: list[float]) -> dict[str, float | int | None]:
        if not values:
            return {"count": 0, "mean": None, "min": None, "max": None}
        return {
            "count": len(values),
            "mean": round(statistics.fmean(values), 4),
            "min": round(min(values), 4),
            "max": round(max(values), 4),
        }

    return {
        "genuine": stats(genuine),
        "impostor": stats(impostor),
        "fnmr_at_threshold": round(sum(s < threshold for s in genuine) / len(genuine), 4)
        if genuine
        else None,
        "fmr_at_threshold": round(sum(s >= threshold for s in impostor) / len(impostor), 4)
        if impostor
        else None,
    }
