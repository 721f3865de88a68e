"""Frame decoding: only JPEG/PNG, size limits before decoding, corrupt input refused."""

from __future__ import annotations

import contextlib
import struct
import zlib

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bioverify import errors
from bioverify.engine import InvalidImage
from bioverify.engine.decode import LOCAL_MAX_PIXELS, MAX_FRAME_BYTES, decode_frame, image_size


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data))
        + kind
        + data
        + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


def _png(width: int, height: int, body: bytes = b"") -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", zlib.compress(body))
        + _png_chunk(b"IEND", b"")
    )


def _jpeg(width: int = 64, height: int = 48) -> bytes:
    image = np.full((height, width, 3), 128, np.uint8)
    ok, buf = cv2.imencode(".jpg", image)
    assert ok
    return bytes(buf.tobytes())


def test_valid_jpeg_and_png_decode_to_their_size() -> None:
    image = np.random.default_rng(1).integers(0, 255, (30, 40, 3), dtype=np.uint8)
    ok, png = cv2.imencode(".png", image)
    assert ok
    assert decode_frame(bytes(png.tobytes())).shape == (30, 40, 3)
    assert np.array_equal(decode_frame(bytes(png.tobytes())), image)
    assert decode_frame(_jpeg(64, 48)).shape == (48, 64, 3)


def test_png_decompression_bomb_is_refused_from_its_header() -> None:
    # 100k x 100k pixels declared in a ~100-byte file: refused before any decoding.
    bomb = _png(100_000, 100_000, b"\x00" * 64)
    with pytest.raises(InvalidImage, match="megapixel"):
        decode_frame(bomb, 3)


def test_jpeg_decompression_bomb_is_refused_from_its_header() -> None:
    data = bytearray(_jpeg(64, 48))
    sof = data.find(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", 60_000, 60_000)
    assert image_size(bytes(data)) == (60_000, 60_000)
    with pytest.raises(InvalidImage, match=r"Frame 2 .*megapixel"):
        decode_frame(bytes(data), 2)


def test_oversized_frame_is_refused() -> None:
    data = _jpeg() + b"\x00" * (MAX_FRAME_BYTES + 1)
    with pytest.raises(InvalidImage, match="larger than 10 MB"):
        decode_frame(data, 0)


def test_truncated_jpeg_is_refused_and_names_the_frame() -> None:
    data = _jpeg(320, 240)
    with pytest.raises(InvalidImage, match="Frame 5"):
        decode_frame(data[: len(data) // 2], 5)


def test_non_image_is_refused_as_bad_request() -> None:
    with pytest.raises(InvalidImage, match="not a JPEG or PNG") as caught:
        decode_frame(b"GIF89a" + b"\x00" * 100, 1)
    assert isinstance(caught.value, errors.BadRequest)
    assert caught.value.frame_index == 1


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2048))
def test_random_bytes_only_ever_raise_invalid_image(data: bytes) -> None:
    with contextlib.suppress(InvalidImage):
        decode_frame(data)


@settings(max_examples=150, deadline=None)
@given(
    st.integers(min_value=0, max_value=10_000),
    st.sampled_from([".jpg", ".png"]),
    st.binary(max_size=16),
)
def test_truncated_or_tampered_images_only_raise_invalid_image(
    cut: int, ext: str, noise: bytes
) -> None:
    image = np.random.default_rng(cut).integers(0, 255, (40, 50, 3), dtype=np.uint8)
    ok, buf = cv2.imencode(ext, image)
    assert ok
    data = bytes(buf.tobytes())
    tampered = data[: cut % (len(data) + 1)] + noise
    try:
        out = decode_frame(tampered)
    except InvalidImage:
        return
    assert out.ndim == 3
    assert out.shape[2] == 3


def test_an_operators_own_camera_photo_decodes_where_a_request_frame_may_not() -> None:
    """``bioverify eval`` and the benches read full-size camera photos from the
    operator's disk (one test photo is 3061x4600): the request limit must not refuse
    them, and must still refuse the same image sent as a frame."""
    big = np.zeros((2200, 4000, 3), np.uint8)
    ok, png = cv2.imencode(".png", big)
    assert ok
    with pytest.raises(InvalidImage, match="limit per frame"):
        decode_frame(png.tobytes())
    assert decode_frame(png.tobytes(), max_pixels=LOCAL_MAX_PIXELS).shape == (2200, 4000, 3)


def test_every_labelled_test_photo_loads_for_the_evaluation() -> None:
    from bioverify.engine.evaluation import read_identities  # noqa: PLC0415
    from bioverify.engine.samples import read_image_bytes  # noqa: PLC0415
    from fixtures_faces import FACES  # noqa: PLC0415

    for path, _ in read_identities(FACES):
        image = decode_frame(read_image_bytes(path), max_pixels=LOCAL_MAX_PIXELS)
        assert image.ndim == 3, path
