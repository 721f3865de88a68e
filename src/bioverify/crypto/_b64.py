"""Strict base64 decoding (RFC 4648): one accepted spelling for every byte string.

``base64.b64decode`` tolerates non-canonical input (stray trailing bits, and
without ``validate`` any junk character); decoding then re-encoding and comparing
rejects all of it, so two different strings never decode to the same bytes.
"""

from __future__ import annotations

import base64
import binascii
import re

import pybase64

_URL_ALPHABET = re.compile(r"[A-Za-z0-9_-]*={0,2}")


def decode_std(value: str) -> bytes:
    """Decode standard base64 with padding (RFC 4648 section 4); ``ValueError`` if not canonical."""
    try:
        data = value.encode("ascii")
        raw = pybase64.b64decode(data, validate=True)
    except (UnicodeEncodeError, binascii.Error) as exc:
        raise ValueError("not standard base64") from exc
    if pybase64.b64encode(raw) != data:
        raise ValueError("not canonical standard base64 with padding")
    return raw


def decode_validated(value: str) -> bytes:
    """``base64.b64decode(value, validate=True)``, SIMD-fast (capture frames are
    hundreds of kilobytes); ``ValueError`` (``binascii.Error``) as it would raise."""
    try:
        data = value.encode("ascii")
    except UnicodeEncodeError as exc:
        raise ValueError("not standard base64") from exc
    return pybase64.b64decode(data, validate=True)


def encode_std(raw: bytes) -> str:
    """Standard base64 with padding."""
    return pybase64.b64encode(raw).decode("ascii")


def decode_url(value: str) -> bytes:
    """Decode base64url (RFC 4648 section 5), padding optional; ``ValueError`` if not canonical."""
    if not _URL_ALPHABET.fullmatch(value):
        raise ValueError("not base64url")
    unpadded = value.rstrip("=")
    try:
        raw = base64.urlsafe_b64decode(unpadded + "=" * (-len(unpadded) % 4))
    except binascii.Error as exc:
        raise ValueError("not base64url") from exc
    if encode_url(raw) != unpadded or (
        value != unpadded and base64.urlsafe_b64encode(raw).decode("ascii") != value
    ):
        raise ValueError("not canonical base64url")
    return raw


def encode_url(raw: bytes) -> str:
    """base64url without padding (the JOSE form)."""
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")
