"""Offline check of the audit receipt a final webhook carries (``payload["audit"]``).

A receipt is ``{"index", "checkpoint": signed note, "inclusionProof": [base64...]}``.
It verifies when the checkpoint note is signed by one of the service's Ed25519
keys (from ``/.well-known/jwks.json``) and the proof puts the entry's leaf at
``index`` under the checkpoint's root. Pure: the client SDK imports it, so it
imports only :mod:`merkle`, :mod:`note` and ``cryptography``.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Mapping
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from bioverify.audit.merkle import HASH_SIZE, leaf_hash, verify_inclusion
from bioverify.audit.note import CheckpointError, parse_and_verify_checkpoint

_MAX_PROOF = 64


class ReceiptError(ValueError):
    """The receipt is malformed or does not prove the entry (fail closed)."""


def _b64url(text: object) -> bytes:
    if not isinstance(text, str):
        raise ReceiptError("JWK 'x' must be a string")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise ReceiptError("JWK 'x' is not base64url") from exc


def _jwk_key(jwk: Mapping[str, Any]) -> Ed25519PublicKey | None:
    if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
        return None
    raw = _b64url(jwk.get("x"))
    if len(raw) != 32:
        raise ReceiptError("JWK Ed25519 key must be 32 bytes")
    return Ed25519PublicKey.from_public_bytes(raw)


def public_keys_from(
    keys: Mapping[str, Any] | Ed25519PublicKey | Iterable[Ed25519PublicKey],
) -> list[Ed25519PublicKey]:
    """Ed25519 keys from a JWKS (``{"keys": [...]}``), one JWK, a key, or keys."""
    if isinstance(keys, Ed25519PublicKey):
        return [keys]
    if isinstance(keys, Mapping):
        jwks = keys.get("keys", [keys])
        if not isinstance(jwks, list):
            raise ReceiptError("JWKS 'keys' must be a list")
        found = [k for k in (_jwk_key(j) for j in jwks if isinstance(j, Mapping)) if k]
    else:
        found = [k for k in keys if isinstance(k, Ed25519PublicKey)]
    if not found:
        raise ReceiptError("no Ed25519 key to check the receipt with")
    return found


def _leaf(entry: bytes | str) -> tuple[bytes, dict[str, Any] | None]:
    """The leaf hash, and the parsed body when a body (not a hash) was given."""
    data = entry.encode() if isinstance(entry, str) else bytes(entry)
    try:
        body = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        # 32 bytes that are not a JSON document are a leaf hash (one in 256 hashes
        # starts with "{", so the first byte alone cannot tell them apart).
        if len(data) == HASH_SIZE:
            return data, None
        raise ReceiptError("entry must be the canonical JSON body or its leaf hash") from exc
    if not isinstance(body, dict):
        raise ReceiptError("entry body must be a JSON object")
    return leaf_hash(data), body


def _proof(receipt: Mapping[str, Any]) -> tuple[int, str, list[bytes]]:
    index, note, proof = (
        receipt.get("index"),
        receipt.get("checkpoint"),
        receipt.get("inclusionProof"),
    )
    if isinstance(index, bool) or not isinstance(index, int) or index < 0:
        raise ReceiptError("receipt 'index' must be a non-negative integer")
    if not isinstance(note, str):
        raise ReceiptError("receipt 'checkpoint' must be a signed note string")
    if not isinstance(proof, list) or len(proof) > _MAX_PROOF:
        raise ReceiptError("receipt 'inclusionProof' must be a list of base64 hashes")
    try:
        hashes = [base64.b64decode(p, validate=True) for p in proof]
    except (binascii.Error, TypeError, ValueError) as exc:
        raise ReceiptError("receipt 'inclusionProof' must be a list of base64 hashes") from exc
    return index, note, hashes


def verify_receipt(
    entry: bytes | str,
    receipt: Mapping[str, Any],
    keys: Mapping[str, Any] | Ed25519PublicKey | Iterable[Ed25519PublicKey],
    key_name: str,
    origin: str,
) -> bool:
    """``True`` when ``receipt`` proves ``entry`` is in the signed log; else :class:`ReceiptError`.

    ``entry`` is the entry's canonical JSON body (as ``/v2/audit/entries`` serves
    it, re-encoded with RFC 8785) or its 32-byte leaf hash. A body must also
    record the receipt's index.
    """
    if not isinstance(receipt, Mapping):
        raise ReceiptError("receipt must be a JSON object")
    index, note, proof = _proof(receipt)
    leaf, body = _leaf(entry)
    if body is not None and body.get("index") != index:
        raise ReceiptError("entry body records another index than the receipt")
    try:
        checkpoint = parse_and_verify_checkpoint(note, public_keys_from(keys), key_name, origin)
    except CheckpointError as exc:
        raise ReceiptError(f"receipt checkpoint: {exc}") from exc
    if not verify_inclusion(leaf, index, checkpoint.size, proof, checkpoint.root):
        raise ReceiptError("inclusion proof does not match the signed checkpoint")
    return True


__all__ = ["ReceiptError", "public_keys_from", "verify_receipt"]
