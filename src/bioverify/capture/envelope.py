"""Sealing capture bodies into encrypted envelopes (device side, API.md section 4).

Produces exactly what the hosted page builds with WebCrypto: a fresh AES-256-GCM
key and 12-byte iv encrypt the UTF-8 JSON plaintext (the 16-byte tag, which
WebCrypto appends to the ciphertext, is split off into ``gcmTag``), and RSA-OAEP
with SHA-256 (MGF1-SHA-256, no label) wraps the key to the server's ``/public-key``.
Imports nothing from the server side.
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Mapping
from typing import Final

import pybase64
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_IV_BYTES: Final = 12
_TAG_BYTES: Final = 16
_MIN_RSA_BITS: Final = 2048
_OAEP: Final = padding.OAEP(
    mgf=padding.MGF1(algorithm=hashes.SHA256()), algorithm=hashes.SHA256(), label=None
)


class SealError(ValueError):
    """The public key or the plaintext cannot be sealed (a caller or server bug)."""


def _b64(raw: bytes) -> str:
    # SIMD: the sealed message holds the frames, hundreds of kilobytes of base64.
    return pybase64.b64encode(raw).decode("ascii")


def _public_key(public_key_pem: str | bytes) -> rsa.RSAPublicKey:
    pem = public_key_pem.encode("ascii") if isinstance(public_key_pem, str) else public_key_pem
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError) as exc:
        raise SealError("publicKey is not a PEM SubjectPublicKeyInfo") from exc
    if not isinstance(key, rsa.RSAPublicKey) or key.key_size < _MIN_RSA_BITS:
        raise SealError(f"publicKey must be an RSA key of at least {_MIN_RSA_BITS} bits")
    return key


def capture_aad(session_id: str, route: str) -> bytes:
    """The AAD the server expects for ``route`` ("events" or "capture") of a session."""
    return f"bioverify:v1:{session_id}:{route}".encode()


def seal(
    plaintext: Mapping[str, object],
    *,
    public_key_pem: str | bytes,
    kid: str,
    session_id: str,
    route: str,
) -> dict[str, str]:
    """Encrypt ``plaintext`` (a JSON object) to the capture key ``kid``; return the envelope."""
    try:
        message = json.dumps(
            dict(plaintext), separators=(",", ":"), ensure_ascii=False, allow_nan=False
        ).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise SealError("plaintext must be a JSON-serialisable object") from exc
    return seal_bytes(
        message, public_key_pem=public_key_pem, kid=kid, session_id=session_id, route=route
    )


def seal_bytes(
    message: bytes, *, public_key_pem: str | bytes, kid: str, session_id: str, route: str
) -> dict[str, str]:
    """Seal already-serialised plaintext bytes (what :func:`seal` does after ``json.dumps``)."""
    public_key = _public_key(public_key_pem)
    key = AESGCM.generate_key(bit_length=256)
    iv = secrets.token_bytes(_IV_BYTES)
    aad = capture_aad(session_id, route)
    sealed = AESGCM(key).encrypt(iv, message, aad)
    return {
        "encryptedKey": _b64(public_key.encrypt(key, _OAEP)),
        "encryptedMessage": _b64(sealed[:-_TAG_BYTES]),
        "iv": _b64(iv),
        "gcmTag": _b64(sealed[-_TAG_BYTES:]),
        "gcmAad": _b64(aad),
        "kid": kid,
    }


def fresh_nonce() -> str:
    """A new plaintext ``nonce``: 32 random bytes, base64url without padding."""
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode("ascii")


__all__ = ["SealError", "capture_aad", "fresh_nonce", "seal", "seal_bytes"]
