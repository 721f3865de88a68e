"""The SIMD base64 paths accept and refuse exactly what the standard library's do."""

from __future__ import annotations

import base64
import binascii

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bioverify.crypto._b64 import decode_std, decode_validated, encode_std

# Base64's alphabet, its padding, and characters it must refuse (space, newline,
# URL-safe letters, non-ASCII), so that near-misses are drawn as often as valid text.
_CHARS = st.sampled_from(
    [*"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=", " ", "\n", "-", "_", "é"]
)
base64ish = st.one_of(
    st.binary(max_size=300).map(lambda b: base64.b64encode(b).decode("ascii")),
    st.text(_CHARS, max_size=40),
    st.binary(max_size=60).map(lambda b: base64.b64encode(b).decode("ascii").rstrip("=")),
)


def _stdlib_validated(value: str) -> bytes | None:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None


def _stdlib_canonical(value: str) -> bytes | None:
    raw = _stdlib_validated(value)
    if raw is None or base64.b64encode(raw).decode("ascii") != value:
        return None
    return raw


def _ours(decode: object, value: str) -> bytes | None:
    assert callable(decode)
    try:
        out = decode(value)
    except ValueError:
        return None
    assert isinstance(out, bytes)
    return out


@given(base64ish)
def test_decode_validated_matches_the_standard_library(value: str) -> None:
    assert _ours(decode_validated, value) == _stdlib_validated(value)


@given(base64ish)
def test_decode_std_accepts_only_canonical_text(value: str) -> None:
    assert _ours(decode_std, value) == _stdlib_canonical(value)


@given(st.binary(max_size=2000))
def test_encode_std_round_trips(raw: bytes) -> None:
    assert encode_std(raw) == base64.b64encode(raw).decode("ascii")
    assert decode_std(encode_std(raw)) == raw


@pytest.mark.parametrize("value", ["YR==", "YQ", "YQ=", "Y Q==", "YQ==\n", "é"])
def test_non_canonical_or_invalid_text_is_refused_by_decode_std(value: str) -> None:
    with pytest.raises(ValueError, match="base64"):
        decode_std(value)
