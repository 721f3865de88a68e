"""Frame decoding in memory, with size limits checked before any pixel is decoded.

Only JPEG and PNG are accepted, recognised by their magic bytes. Width and height
are read from the header (PNG ``IHDR``, JPEG ``SOFn``) and checked against the
pixel limit before OpenCV allocates anything: a small file that claims a huge
image (a decompression bomb) is refused cheaply. Frames never touch disk.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Final

import cv2
import numpy as np

from bioverify.engine.interfaces import InvalidImage
from bioverify.engine.models import Image

MAX_FRAME_BYTES: Final = 10 * 1024 * 1024
#: One frame: 4K UHD (3840x2160), more than a selfie or a document photo needs. A
#: 40-megapixel frame costs 120 MB of BGR pixels, and 24 of them cost gigabytes.
MAX_FRAME_PIXELS: Final = 3840 * 2160
#: All frames of one capture together (24 frames of 1080p): bounds what one request
#: may make the engine decode and hold, whatever its frames claim.
MAX_REQUEST_PIXELS: Final = 24 * 1920 * 1080
#: Images an operator reads from their own disk (``bioverify eval``, benches): the
#: request limits guard the service against its callers, not against the operator,
#: and photo sets hold full-size camera pictures (one test photo is 3061x4600).
LOCAL_MAX_PIXELS: Final = 40_000_000

_PNG_MAGIC: Final = b"\x89PNG\r\n\x1a\n"
_JPEG_MAGIC: Final = b"\xff\xd8\xff"
# SOF markers carry the frame size; C4 (DHT), C8 (JPG) and CC (DAC) share the range.
_SOF_MARKERS: Final = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# Markers without a length field.
_STANDALONE: Final = frozenset({0x01, *range(0xD0, 0xD8)})


def _png_size(data: bytes, index: int) -> tuple[int, int]:
    if len(data) < 24 or data[12:16] != b"IHDR":
        raise InvalidImage(
            f"Frame {index} is a truncated or corrupt PNG (no IHDR header)", frame_index=index
        )
    width, height = struct.unpack(">II", data[16:24])
    if b"IEND" not in data[-32:]:
        raise InvalidImage(f"Frame {index} is a truncated PNG (no IEND chunk)", frame_index=index)
    return int(width), int(height)


def _jpeg_size(data: bytes, index: int) -> tuple[int, int]:
    pos = 2
    size = len(data)
    while pos + 4 <= size:
        if data[pos] != 0xFF:
            break
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in _STANDALONE:
            pos += 2
            continue
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        if marker in _SOF_MARKERS:
            if pos + 9 > size or length < 7:
                break
            height, width = struct.unpack(">HH", data[pos + 5 : pos + 9])
            if b"\xff\xd9" not in data[-64:]:
                # A JPEG cut short decodes to grey padding: reject rather than analyse it.
                raise InvalidImage(
                    f"Frame {index} is a truncated JPEG (no end-of-image marker)", frame_index=index
                )
            return int(width), int(height)
        if length < 2:
            break
        pos += 2 + length
    raise InvalidImage(
        f"Frame {index} is a corrupt JPEG (no frame header found)", frame_index=index
    )


def image_size(data: bytes, index: int = 0) -> tuple[int, int]:
    """(width, height) from the header of a JPEG/PNG frame, without decoding pixels."""
    if data.startswith(_PNG_MAGIC):
        return _png_size(data, index)
    if data.startswith(_JPEG_MAGIC):
        return _jpeg_size(data, index)
    raise InvalidImage(f"Frame {index} is not a JPEG or PNG image", frame_index=index)


def _mp(pixels: int) -> str:
    return f"{pixels / 1_000_000:.1f} megapixels"


def check_request_pixels(frames: Sequence[bytes]) -> int:
    """Total pixels the frames declare (headers only, nothing decoded), or
    :class:`InvalidImage` when a frame or the whole request is over its limit."""
    total = 0
    for index, data in enumerate(frames):
        width, height = image_size(bytes(data), index)
        if width * height > MAX_FRAME_PIXELS:
            raise InvalidImage(
                f"Frame {index} declares {width}x{height} pixels, over the "
                f"{_mp(MAX_FRAME_PIXELS)} limit per frame",
                frame_index=index,
            )
        total += width * height
    if total > MAX_REQUEST_PIXELS:
        raise InvalidImage(
            f"The frames declare {_mp(total)} together, over the {_mp(MAX_REQUEST_PIXELS)} "
            "limit per capture; send smaller or fewer frames"
        )
    return total


def decode_frame(data: bytes, index: int = 0, *, max_pixels: int = MAX_FRAME_PIXELS) -> Image:
    """Decode one frame to BGR pixels, or raise :class:`InvalidImage` naming the frame.

    ``max_pixels``: the request limit unless the caller reads its own files
    (:data:`LOCAL_MAX_PIXELS`)."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise InvalidImage(f"Frame {index} is not bytes", frame_index=index)
    raw = bytes(data)
    if len(raw) > MAX_FRAME_BYTES:
        raise InvalidImage(
            f"Frame {index} is larger than {MAX_FRAME_BYTES // (1024 * 1024)} MB", frame_index=index
        )
    width, height = image_size(raw, index)
    if width <= 0 or height <= 0:
        raise InvalidImage(f"Frame {index} declares an empty image", frame_index=index)
    if width * height > max_pixels:
        raise InvalidImage(
            f"Frame {index} declares {width}x{height} pixels, over the "
            f"{_mp(max_pixels)} limit per frame",
            frame_index=index,
        )
    try:
        image = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_COLOR)
    except cv2.error as exc:
        raise InvalidImage(f"Frame {index} could not be decoded", frame_index=index) from exc
    if image is None or image.size == 0:
        raise InvalidImage(
            f"Frame {index} could not be decoded (corrupt image data)", frame_index=index
        )
    out: Image = np.ascontiguousarray(image, dtype=np.uint8)
    return out
