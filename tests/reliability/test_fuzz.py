"""Fuzzing: the whole API from its own OpenAPI schema (schemathesis), and the two
decoders that read attacker-controlled bytes (Hypothesis).

The API must answer every generated request without a 5xx, and every non-2xx with
the error envelope. The envelope and image decoders must turn any malformed input
into their own 400-family errors, quickly, and never into anything else.
"""

from __future__ import annotations

import base64
import struct
import time
import zlib
from collections.abc import Iterator
from typing import Any

import cv2
import numpy as np
import pytest
import schemathesis
import schemathesis.openapi
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bioverify import errors
from bioverify.api.app import create_app
from bioverify.config import Settings
from bioverify.crypto.envelope import ENVELOPE_FIELDS, envelope_aad, open_envelope
from bioverify.crypto.keyring import KeyRing
from bioverify.engine.decode import MAX_FRAME_PIXELS, decode_frame
from bioverify.engine.interfaces import Engine as BioEngine
from support import Creds, assert_envelope, make_client, migrated, serve

EXAMPLES_PER_OPERATION = 25
SESSION_ID = "7f1c1f9e-2b0e-4a4c-9d49-6a3f0e9d2c11"


@pytest.fixture(scope="module")
def fuzz_world(
    tmp_path_factory: pytest.TempPathFactory, keyring: KeyRing, bio_engine: BioEngine
) -> Iterator[tuple[Any, Creds]]:
    """The real app (SQLite) with a real client's credentials."""
    tmp = tmp_path_factory.mktemp("fuzz")
    engine = migrated(f"sqlite:///{tmp / 'bioverify.sqlite3'}")
    creds = make_client(engine, keyring=keyring)
    # A high throttle limit: the fuzzer may send wrong credential headers many times,
    # and a 429 would hide what the routes behind it do.
    cfg = Settings(
        data_dir=tmp / "data",
        public_url="http://testserver",
        allow_private_callbacks=False,
        auth_failure_limit=100_000,
        max_body_bytes=2 * 1024 * 1024,
    )
    app = create_app(cfg, db_engine=engine, keyring=keyring, bio_engine=bio_engine)
    yield app, creds
    engine.dispose()


def _check_answer(response: Any) -> None:
    """No 5xx (but the Age API's 501 "not offered"); every non-2xx is the error envelope."""
    not_offered = response.status_code == 501 and "Age estimation" in response.text
    assert response.status_code < 500 or not_offered, (response.status_code, response.text[:500])
    if response.status_code >= 400:
        body = response.json()
        assert body["status"] == "error", body
        assert isinstance(body["message"], str) and body["message"], body
        assert isinstance(body["errorCodes"], list), body
        assert all(isinstance(c, int) for c in body["errorCodes"]), body
        assert body["requestId"] == response.headers["x-request-id"][0], body
        assert "Traceback" not in response.text


@pytest.mark.slow
def test_every_operation_answers_generated_requests_without_5xx_and_with_envelopes(
    fuzz_world: tuple[Any, Creds],
) -> None:
    app, creds = fuzz_world
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 10, "the schema lost its operations"
    failures: list[str] = []
    for operation in operations:

        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def fuzz(case: Any) -> None:
            try:
                _check_answer(case.call(headers=creds.headers()))
            except AssertionError as exc:
                raise AssertionError(f"{case.as_curl_command()}: {exc}") from None

        try:
            fuzz()
        except AssertionError as exc:  # keep fuzzing the other operations, report all
            failures.append(f"{operation.label}: {str(exc).splitlines()[0][:400]}")
    assert not failures, "\n".join(failures)


# ----------------------------------------------------------------- envelope decoder

_b64 = st.binary(max_size=600).map(lambda b: base64.b64encode(b).decode())
_junk = st.one_of(
    st.none(),
    st.integers(),
    st.text(max_size=50),
    _b64,
    st.lists(st.integers(), max_size=3),
    st.booleans(),
)


@st.composite
def envelopes(draw: st.DrawFn) -> dict[str, object]:
    """Envelope-shaped bodies: right or wrong fields, base64 or not, right or wrong AAD."""
    fields = draw(st.sets(st.sampled_from(sorted(ENVELOPE_FIELDS)), min_size=1))
    body: dict[str, object] = {name: draw(st.one_of(_b64, _junk)) for name in fields}
    if draw(st.booleans()):
        body["gcmAad"] = base64.b64encode(envelope_aad(SESSION_ID, "events")).decode()
        body["iv"] = base64.b64encode(draw(st.binary(min_size=12, max_size=12))).decode()
        body["gcmTag"] = base64.b64encode(draw(st.binary(min_size=16, max_size=16))).decode()
    if draw(st.booleans()):
        body[draw(st.text(min_size=1, max_size=10))] = draw(_junk)
    return body


@settings(
    max_examples=300, deadline=1000, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    body=st.one_of(envelopes(), st.dictionaries(st.text(max_size=12), _junk, max_size=8)),
    real_kid=st.booleans(),
)
def test_malformed_envelopes_are_bad_requests_only(
    body: dict[str, object], real_kid: bool, keyring: KeyRing
) -> None:
    if real_kid and "kid" in body:
        body["kid"] = keyring.current_capture_kid  # get past the key lookup to RSA/GCM
    with pytest.raises(errors.BadRequest):
        open_envelope(body, keyring=keyring, session_id=SESSION_ID, route="events")


# ----------------------------------------------------------------- image decoder


def _jpeg() -> bytes:
    rng = np.random.default_rng(3)
    ok, buf = cv2.imencode(".jpg", rng.integers(0, 255, (96, 128, 3), dtype=np.uint8))
    assert ok
    return bytes(buf.tobytes())


def _png(width: int, height: int, idat: bytes) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )


def _jpeg_claiming(width: int, height: int) -> bytes:
    """A real JPEG whose SOF header is rewritten to claim another size."""
    data = bytearray(_jpeg())
    pos = data.index(b"\xff\xc0")
    data[pos + 5 : pos + 9] = struct.pack(">HH", height, width)
    return bytes(data)


JPEG = _jpeg()


def _decodes_or_refuses(data: bytes) -> None:
    start = time.perf_counter()
    try:
        image = decode_frame(data)
    except errors.BadRequest:
        pass
    else:
        assert image.ndim == 3 and image.shape[2] == 3
        assert image.shape[0] * image.shape[1] <= MAX_FRAME_PIXELS
    assert time.perf_counter() - start < 2.0, "decoding a malformed frame took too long"


@settings(max_examples=200, deadline=2000)
@given(
    data=st.one_of(
        st.binary(max_size=4096),
        st.integers(0, len(JPEG)).map(lambda n: JPEG[:n]),
        st.tuples(st.integers(0, len(JPEG) - 1), st.binary(min_size=1, max_size=8)).map(
            lambda t: JPEG[: t[0]] + t[1] + JPEG[t[0] + len(t[1]) :]
        ),
        st.binary(max_size=512).map(lambda b: b"\xff\xd8\xff" + b),
        st.binary(max_size=512).map(lambda b: b"\x89PNG\r\n\x1a\n" + b),
    )
)
def test_malformed_frames_are_invalid_images_only(data: bytes) -> None:
    _decodes_or_refuses(data)


@pytest.mark.parametrize(("width", "height"), [(65535, 65535), (8000, 6000), (0, 10)])
def test_jpeg_declaring_huge_or_empty_dimensions_is_refused_before_decoding(
    width: int, height: int
) -> None:
    start = time.perf_counter()
    with pytest.raises(errors.BadRequest):
        decode_frame(_jpeg_claiming(width, height))
    assert time.perf_counter() - start < 0.5


def test_png_decompression_bomb_is_refused_before_inflating() -> None:
    # 100,000 x 100,000 grey pixels of zeros deflate to a few kilobytes: 10 GB if decoded.
    compressor = zlib.compressobj(9)
    row = b"\x00" * (100_000 + 1)
    idat = b"".join(compressor.compress(row) for _ in range(200)) + compressor.flush()
    bomb = _png(100_000, 100_000, idat)
    assert len(bomb) < 100_000
    start = time.perf_counter()
    with pytest.raises(errors.BadRequest, match="megapixel"):
        decode_frame(bomb)
    assert time.perf_counter() - start < 0.5


def test_a_real_frame_still_decodes() -> None:
    """The fuzz baseline: the unmodified frame is accepted (so refusals mean something)."""
    assert decode_frame(JPEG).shape == (96, 128, 3)


@pytest.mark.parametrize(
    "query",
    [
        "/v2/audit/entries?start=9223372036854775808",
        "/v2/audit/entries?start=0&end=9223372036854775808",
        "/v2/audit/proof/inclusion?index=9223372036854775808&treeSize=1",
        "/v2/audit/proof/consistency?first=1&second=9223372036854775808",
    ],
)
def test_integers_beyond_64_bits_are_a_bad_request_not_a_server_error(
    fuzz_world: tuple[Any, Creds], query: str
) -> None:
    """Found by the fuzzer: an index past 2**63-1 reached the database driver (500)."""
    app, creds = fuzz_world
    with serve(app) as client:
        response = client.get(query, headers=creds.headers())
    assert_envelope(response, 400)
