"""Identity documents made in software, for the tests and ``bioverify eval --documents``.

Valid MRZ lines come from the ``mrz`` package (an independent implementation of 9303,
so our parser is checked against someone else's reading of the standard), printed in
OCR-B from Debian's ``fonts-ocr-b`` at the standard 2.54 mm pitch; a real face photo
is printed as the portrait; North American licence backs carry an AAMVA PDF417
written by ``zxing-cpp``. Nothing is downloaded.

``mrz`` is GPL-3.0, so it is a development/evaluation dependency only and is imported
when a document is generated, never by the reading path.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any, Final

import cv2
import numpy as np
import zxingcpp
from PIL import Image as PILImage
from PIL import ImageDraw, ImageFont

from bioverify.documents.mrz_fields import MrzFormat
from bioverify.engine.models import Image, as_image

#: Debian's fonts-ocr-b (scripts/install-documents.sh installs it).
OCRB_FONT: Final = Path("/usr/share/fonts/opentype/ocr-b/OCRB.otf")
#: Pixels per millimetre of the printed document (about 200 dpi).
PX_PER_MM: Final = 8.0
#: 9303: MRZ characters sit on a 2.54 mm pitch (10 per inch).
MRZ_PITCH_MM: Final = 2.54
#: Card sizes in mm: ID-3 passport page, ID-2 and ID-1 cards.
CARD_MM: Final = {MrzFormat.TD3: (125.0, 88.0), MrzFormat.TD2: (105.0, 74.0)}
ID1_MM: Final = (85.6, 54.0)


class GenerationUnavailable(RuntimeError):
    """The OCR-B font or the ``mrz`` package is missing (install the dev extra and fonts)."""


@dataclass(frozen=True)
class Holder:
    """Who a generated document is for. Dates are real dates; names are plain ASCII."""

    surname: str
    given_names: str
    document_number: str
    birth_date: date
    expiry_date: date
    sex: str = "F"
    nationality: str = "UTO"
    issuing_country: str = "UTO"


@dataclass(frozen=True)
class GeneratedDocument:
    """A rendered document side and what it truthfully says."""

    image: Image
    holder: Holder
    mrz_lines: tuple[str, ...]
    format: MrzFormat | None


def _yymmdd(value: date) -> str:
    return value.strftime("%y%m%d")


def mrz_lines(fmt: MrzFormat, holder: Holder) -> tuple[str, ...]:
    """Valid MRZ lines for ``holder`` written by the ``mrz`` package."""
    try:
        td = importlib.import_module(f"mrz.generator.{fmt.value.lower()}")
    except ImportError as exc:
        raise GenerationUnavailable(
            "generating documents needs the 'mrz' package (pip install -e '.[dev]')"
        ) from exc
    common = {
        "country_code": holder.issuing_country,
        "document_number": holder.document_number,
        "birth_date": _yymmdd(holder.birth_date),
        "sex": holder.sex,
        "expiry_date": _yymmdd(holder.expiry_date),
        "nationality": holder.nationality,
        "surname": holder.surname,
        "given_names": holder.given_names,
    }
    generator: Any
    if fmt is MrzFormat.TD3:
        generator = td.TD3CodeGenerator(document_type="P", **common)
    elif fmt is MrzFormat.TD2:
        generator = td.TD2CodeGenerator(document_type="I", **common)
    else:
        generator = td.TD1CodeGenerator(document_type="I", **common)
    return tuple(str(generator).split("\n"))


@cache
def _font(size: int) -> ImageFont.FreeTypeFont:
    if not OCRB_FONT.is_file():
        raise GenerationUnavailable(
            f"{OCRB_FONT} is missing: run scripts/install-documents.sh (Debian fonts-ocr-b)"
        )
    return ImageFont.truetype(str(OCRB_FONT), size)


def _mrz_font() -> ImageFont.FreeTypeFont:
    """OCR-B at the size whose advance is the 9303 pitch."""
    pitch_px = MRZ_PITCH_MM * PX_PER_MM
    probe = _font(100)
    advance = probe.getlength("<" * 10) / 10
    return _font(round(100 * pitch_px / advance))


def _background(width: int, height: int, seed: int) -> PILImage.Image:
    """A pale security-print background: a tint and fine guilloche-like waves."""
    rng = np.random.default_rng(seed)
    tint = np.array([236, 232, 244], np.float32) + rng.uniform(-8, 8, 3)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    waves = 6.0 * np.sin(xx / 9.0 + 4.0 * np.sin(yy / 37.0)) + 4.0 * np.sin(yy / 5.0)
    pixels = np.clip(tint[None, None, :] + waves[..., None], 0, 255).astype(np.uint8)
    return PILImage.fromarray(pixels, "RGB")


def _paste_portrait(
    canvas: PILImage.Image, face_bgr: Image, box: tuple[int, int, int, int]
) -> None:
    x, y, w, h = box
    src_h, src_w = face_bgr.shape[:2]
    # Crop the photo to the portrait's aspect ratio around its centre, then print it.
    target = w / h
    if src_w / src_h > target:
        new_w = round(src_h * target)
        left = (src_w - new_w) // 2
        crop = face_bgr[:, left : left + new_w]
    else:
        new_h = round(src_w / target)
        top = max(0, (src_h - new_h) // 3)
        crop = face_bgr[top : top + new_h]
    resized = cv2.resize(crop, (w, h), interpolation=cv2.INTER_AREA)
    canvas.paste(PILImage.fromarray(cv2.cvtColor(resized, cv2.COLOR_BGR2RGB)), (x, y))


def _to_bgr(canvas: PILImage.Image) -> Image:
    return as_image(cv2.cvtColor(np.asarray(canvas, dtype=np.uint8), cv2.COLOR_RGB2BGR))


def _mm(value: float) -> int:
    return round(value * PX_PER_MM)


def render_mrz_document(
    fmt: MrzFormat,
    holder: Holder,
    portrait: Image | None,
    *,
    seed: int = 0,
    lines: tuple[str, ...] | None = None,
) -> GeneratedDocument:
    """A passport data page (TD3), an ID-2 card (TD2) or an ID-1 card back (TD1).

    TD3 and TD2 carry the portrait and the MRZ on one side; the TD1 back carries only
    the MRZ (its portrait is on the front, :func:`render_id1_front`). ``lines``
    replaces the MRZ (tests print a corrupted one).
    """
    lines = lines if lines is not None else mrz_lines(fmt, holder)
    width_mm, height_mm = CARD_MM.get(fmt, ID1_MM)
    canvas = _background(_mm(width_mm), _mm(height_mm), seed)
    draw = ImageDraw.Draw(canvas)
    ink = (40, 40, 60)
    title = "PASSPORT / PASSEPORT" if fmt is MrzFormat.TD3 else "IDENTITY CARD"
    draw.text((_mm(6), _mm(4)), f"UTOPIA  {title}", font=_font(_mm(3.2)), fill=ink)
    if portrait is not None and fmt is not MrzFormat.TD1:
        _paste_portrait(canvas, portrait, (_mm(6), _mm(12), _mm(32), _mm(40)))
        fields = (
            ("Surname", holder.surname.upper()),
            ("Given names", holder.given_names.upper()),
            ("Nationality", holder.nationality),
            ("Date of birth", holder.birth_date.strftime("%d %b %Y").upper()),
            ("Sex", holder.sex),
            ("Date of expiry", holder.expiry_date.strftime("%d %b %Y").upper()),
            ("Document no.", holder.document_number),
        )
        for row, (label, value) in enumerate(fields):
            top = _mm(12 + row * 5.4)
            draw.text((_mm(42), top), label, font=_font(_mm(1.8)), fill=(90, 90, 110))
            draw.text((_mm(42), top + _mm(2.0)), value, font=_font(_mm(2.6)), fill=ink)
    else:
        draw.text(
            (_mm(6), _mm(12)), "Address: 1 MAIN STREET, UTOPIA", font=_font(_mm(2.4)), fill=ink
        )
    font = _mrz_font()
    line_gap = _mm(4.3)
    # 9303: the MRZ sits in the bottom band, about 1 mm above the edge and inset 6 mm.
    first_baseline = canvas.height - _mm(3) - line_gap * len(lines)
    for row, text in enumerate(lines):
        draw.text((_mm(5), first_baseline + row * line_gap), text, font=font, fill=(10, 10, 10))
    return GeneratedDocument(_to_bgr(canvas), holder, lines, fmt)


def render_id1_front(holder: Holder, portrait: Image, *, seed: int = 0) -> GeneratedDocument:
    """The front of an ID-1 card: portrait and printed fields, no MRZ."""
    canvas = _background(_mm(ID1_MM[0]), _mm(ID1_MM[1]), seed)
    draw = ImageDraw.Draw(canvas)
    draw.text((_mm(4), _mm(3)), "UTOPIA  IDENTITY CARD", font=_font(_mm(3.0)), fill=(40, 40, 60))
    _paste_portrait(canvas, portrait, (_mm(4), _mm(10), _mm(26), _mm(33)))
    draw.text((_mm(34), _mm(12)), holder.surname.upper(), font=_font(_mm(2.8)), fill=(40, 40, 60))
    draw.text(
        (_mm(34), _mm(18)), holder.given_names.upper(), font=_font(_mm(2.8)), fill=(40, 40, 60)
    )
    return GeneratedDocument(_to_bgr(canvas), holder, (), None)


def aamva_text(holder: Holder, *, state: str = "VA", iin: str = "636000") -> str:
    """An AAMVA DL/ID card design standard (version 10) payload with one DL subfile."""
    us = "%m%d%Y"  # AAMVA dates are MMDDCCYY for US issuers
    sex = {"M": "1", "F": "2"}.get(holder.sex, "9")
    first, *middle = holder.given_names.upper().split()
    elements = [
        f"DAQ{holder.document_number}",
        f"DCS{holder.surname.upper()}",
        f"DAC{first}",
        f"DAD{' '.join(middle) or 'NONE'}",
        f"DBD{date(2024, 1, 2).strftime(us)}",
        f"DBB{holder.birth_date.strftime(us)}",
        f"DBA{holder.expiry_date.strftime(us)}",
        f"DBC{sex}",
        "DAU069 IN",
        "DAG1 MAIN STREET",
        "DAIRICHMOND",
        f"DAJ{state}",
        "DAK232690000  ",
        "DCGUSA",
    ]
    body = "DL" + "\n".join(elements) + "\r"
    header_len = 21 + 10  # fixed header plus one subfile designator
    header = f"@\n\x1e\rANSI {iin}1000" + "01" + f"DL{header_len:04d}{len(body):04d}"
    return header + body


def render_licence_back(holder: Holder, *, seed: int = 0) -> GeneratedDocument:
    """The back of a US driving licence: an AAMVA PDF417 written by zxing-cpp."""
    canvas = _background(_mm(ID1_MM[0]), _mm(ID1_MM[1]), seed)
    barcode = zxingcpp.create_barcode(aamva_text(holder), zxingcpp.BarcodeFormat.PDF417)
    symbol = np.asarray(barcode.to_image(scale=2, add_quiet_zones=True), dtype=np.uint8)
    target_w = _mm(76)
    target_h = round(symbol.shape[0] * target_w / symbol.shape[1])
    symbol = as_image(cv2.resize(symbol, (target_w, target_h), interpolation=cv2.INTER_NEAREST))
    rgb = PILImage.fromarray(symbol, "L").convert("RGB")
    canvas.paste(rgb, (_mm(4.8), _mm(8)))
    return GeneratedDocument(_to_bgr(canvas), holder, (), None)


def corrupt_check_digit(lines: tuple[str, ...], position: tuple[int, int]) -> tuple[str, ...]:
    """``lines`` with the digit at (row, column) replaced by the next digit (mod 10)."""
    row, column = position
    text = lines[row]
    digit = text[column]
    if not digit.isdigit():
        raise ValueError("the position does not hold a digit")
    new = str((int(digit) + 1) % 10)
    return (*lines[:row], text[:column] + new + text[column + 1 :], *lines[row + 1 :])


#: (row, column) of every check digit of each layout (9303 parts 4-6).
CHECK_DIGIT_POSITIONS: Final = {
    MrzFormat.TD3: ((1, 9), (1, 19), (1, 27), (1, 42), (1, 43)),
    MrzFormat.TD2: ((1, 9), (1, 19), (1, 27), (1, 35)),
    MrzFormat.TD1: ((0, 14), (1, 6), (1, 14), (1, 29)),
}
