"""Reading generated documents end to end with the real OCR model, zxing-cpp and faces."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import cv2
import numpy as np
import pytest

from bioverify.documents.conditions import CONDITIONS, photograph
from bioverify.documents.generate import (
    CHECK_DIGIT_POSITIONS,
    Holder,
    corrupt_check_digit,
    render_id1_front,
    render_licence_back,
    render_mrz_document,
)
from bioverify.documents.identity import identity_information, is_expired
from bioverify.documents.mrz_fields import MrzFormat
from bioverify.documents.ocr import MRZ_ALPHABET, TesseractLineReader
from bioverify.documents.portrait import portrait_embedding, portrait_score
from bioverify.documents.reader import NOTHING_FOUND, DocumentReader
from bioverify.documents.zone import find_mrz_lines
from bioverify.engine.models import Image
from fixtures_faces import labelled_identities, load

pytestmark = [pytest.mark.models, pytest.mark.slow, pytest.mark.usefixtures("ocrb")]


@pytest.fixture(scope="module")
def reader() -> DocumentReader:
    return DocumentReader.load()


@pytest.fixture(scope="module")
def people() -> dict[str, list[Path]]:
    """Photos by identity (the shared labelled photos)."""
    out: dict[str, list[Path]] = {}
    for path, identity in labelled_identities():
        out.setdefault(identity, []).append(path)
    return out


@pytest.fixture(scope="module")
def alice(people: dict[str, list[Path]]) -> tuple[Image, Image]:
    """Two different photos of one person: (printed on the document, the selfie)."""
    first, second = people["person01"][:2]
    return load(first), load(second)


def _photo(document: Image, condition: str = "clean", seed: int = 1) -> Image:
    return CONDITIONS[condition](photograph(document, seed=seed), seed)


@pytest.mark.parametrize(
    "case",
    [(fmt, condition) for fmt in MrzFormat for condition in ("clean", "perspective", "jpeg_q40")],
    ids=str,
)
def test_reads_every_field_of_a_photographed_document(
    reader: DocumentReader,
    alice: tuple[Image, Image],
    holder: Holder,
    today: date,
    case: tuple[MrzFormat, str],
) -> None:
    fmt, condition = case
    portrait = alice[0] if fmt is not MrzFormat.TD1 else None
    doc = render_mrz_document(fmt, holder, portrait)
    reading = reader.read(_photo(doc.image, condition), today=today)
    assert reading.ok, reading.failure
    assert reading.mrz is not None
    assert reading.mrz.format is fmt
    assert reading.mrz.document_number == holder.document_number
    assert reading.mrz.birth_date == holder.birth_date
    assert reading.mrz.expiry_date == holder.expiry_date
    assert (reading.mrz.surname, reading.mrz.given_names) == ("ERIKSSON", "ANNA MARIA")
    assert reading.mrz.sex == "F"
    assert (reading.portrait is not None) == (portrait is not None)


@pytest.mark.parametrize("fmt", list(MrzFormat))
def test_a_document_printed_with_a_wrong_check_digit_is_never_accepted(
    reader: DocumentReader, holder: Holder, today: date, fmt: MrzFormat
) -> None:
    clean = render_mrz_document(fmt, holder, None)
    for position in CHECK_DIGIT_POSITIONS[fmt]:
        if not clean.mrz_lines[position[0]][position[1]].isdigit():
            continue
        bad = corrupt_check_digit(clean.mrz_lines, position)
        doc = render_mrz_document(fmt, holder, None, lines=bad)
        reading = reader.read(_photo(doc.image), today=today)
        assert reading.mrz is None
        assert reading.failure is not None and reading.failure.startswith("check_digit")


def test_a_photo_without_a_document_reads_nothing(
    reader: DocumentReader, alice: tuple[Image, Image], today: date
) -> None:
    reading = reader.read(alice[1], today=today)
    assert not reading.ok
    assert reading.failure == NOTHING_FOUND
    assert reading.mrz is None and reading.aamva is None


def test_reads_a_driving_licence_back_from_its_pdf417(
    reader: DocumentReader, holder: Holder, today: date
) -> None:
    back = render_licence_back(holder)
    reading = reader.read(_photo(back.image, "perspective"), today=today)
    assert reading.ok
    assert reading.mrz is None and reading.aamva is not None
    assert reading.aamva.document_number == holder.document_number
    assert reading.aamva.birth_date == holder.birth_date
    assert reading.aamva.expiry_date == holder.expiry_date


def test_an_expired_passport_is_read_and_reported_expired(
    reader: DocumentReader, holder: Holder, today: date
) -> None:
    old = Holder(
        holder.surname,
        holder.given_names,
        holder.document_number,
        holder.birth_date,
        today - timedelta(days=30),
    )
    reading = reader.read(_photo(render_mrz_document(MrzFormat.TD3, old, None).image), today=today)
    assert reading.mrz is not None
    assert is_expired(reading.mrz.expiry_date, today)
    assert identity_information(reading.mrz, portrait=None, today=today)["checks"]["expired"]


def test_the_portrait_matches_its_person_and_not_another(
    reader: DocumentReader,
    people: dict[str, list[Path]],
    alice: tuple[Image, Image],
    holder: Holder,
    today: date,
) -> None:
    assert reader.threshold is not None
    doc = render_mrz_document(MrzFormat.TD3, holder, alice[0])
    reading = reader.read(_photo(doc.image), today=today)
    assert reading.portrait is not None
    selfie = portrait_embedding(reader.faces, alice[1])
    stranger = portrait_embedding(reader.faces, load(people["person08"][0]))
    assert selfie is not None and stranger is not None
    assert portrait_score(reading.portrait, selfie) >= reader.threshold.threshold
    assert portrait_score(reading.portrait, stranger) < reader.threshold.threshold


def test_the_id1_front_portrait_is_found(
    reader: DocumentReader, alice: tuple[Image, Image], holder: Holder
) -> None:
    front = render_id1_front(holder, alice[0])
    assert portrait_embedding(reader.faces, _photo(front.image)) is not None


@pytest.mark.parametrize("angle", [-8.0, 0.0, 6.0])
@pytest.mark.parametrize(
    ("fmt", "lines"), [(MrzFormat.TD3, 2), (MrzFormat.TD2, 2), (MrzFormat.TD1, 3)]
)
def test_the_zone_finder_cuts_each_mrz_line(
    holder: Holder, fmt: MrzFormat, lines: int, angle: float
) -> None:
    frame = photograph(render_mrz_document(fmt, holder, None).image)
    height, width = frame.shape[:2]
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), angle, 1.0)
    rotated = np.asarray(cv2.warpAffine(frame, matrix, (width, height)), np.uint8)
    crops = find_mrz_lines(rotated)
    assert len(crops) == lines
    assert all(c.shape[0] == 48 and c.shape[1] > 12 * 48 for c in crops)  # long and thin


def test_debian_tesseract_reads_mrz_characters_only(holder: Holder) -> None:
    try:
        engine = TesseractLineReader()
    except Exception:  # noqa: BLE001
        pytest.skip("tesseract-ocr is not installed: run scripts/install-documents.sh")
    crops = find_mrz_lines(photograph(render_mrz_document(MrzFormat.TD2, holder, None).image))
    texts = [line.text for line in engine.read_lines(crops)]
    engine.close()
    assert all(set(t) <= set(MRZ_ALPHABET) for t in texts)
    assert holder.document_number in texts[1]
