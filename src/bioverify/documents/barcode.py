"""PDF417 reading with zxing-cpp (in memory) and AAMVA parsing of what it holds."""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt
import zxingcpp

from bioverify.documents.aamva import AamvaError, AamvaRecord, parse_aamva

Image = npt.NDArray[np.uint8]


def read_pdf417(image: Image) -> list[str]:
    """The payloads of every PDF417 symbol in ``image`` (bytes as ISO 8859-1 text).

    AAMVA payloads are ASCII with control separators; decoding the raw bytes as
    Latin-1 keeps every byte and its position, which the subfile offsets rely on.
    """
    grey = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    for attempt in (grey, cv2.GaussianBlur(grey, (0, 0), 1.2)):
        # Sensor noise breaks zxing's local binariser on fine modules; a light blur
        # (tried only when the plain read finds nothing) averages it out.
        found = zxingcpp.read_barcodes(
            np.ascontiguousarray(attempt),
            formats=zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.PDF417),
        )
        payloads = [symbol.bytes.decode("latin-1") for symbol in found if symbol.valid]
        if payloads:
            return payloads
    return []


def read_aamva(image: Image) -> AamvaRecord | None:
    """The first PDF417 in ``image`` that parses as AAMVA, or None."""
    for payload in read_pdf417(image):
        try:
            return parse_aamva(payload)
        except AamvaError:
            continue
    return None
