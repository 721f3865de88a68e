"""Verify the audit receipt a final webhook carries, offline.

A receipt (``payload["audit"]``, also served by the polling route) is
``{"index", "checkpoint": signed note, "inclusionProof": [base64 hashes]}``: it
proves that the service's signed, append-only audit log holds the entry that
ended the session. It verifies when the checkpoint note is signed by one of the
service's Ed25519 keys (its JWKS) under the expected key name and origin, and the
RFC 9162 proof puts the entry's leaf at ``index`` under the checkpoint's root.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Iterable, Mapping
from typing import Any

import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from bioverify_client._audit import (
    HASH_SIZE,
    AuditFormatError,
    ed25519_keys,
    leaf_hash,
    root_from_inclusion,
    verify_checkpoint,
)
from bioverify_client.errors import ReceiptVerificationError
from bioverify_client.models import AuditEntry

EntryLike = bytes | AuditEntry | Mapping[str, Any]
Keys = Mapping[str, Any] | Ed25519PublicKey | Iterable[Ed25519PublicKey]
#: Deeper than any tree of 2**64 leaves: a longer proof is an attack on CPU.
_MAX_PROOF = 64


def _receipt_of(payload_or_receipt: Mapping[str, Any]) -> Mapping[str, Any]:
    audit = payload_or_receipt.get("audit", payload_or_receipt)
    if not isinstance(audit, Mapping):
        raise ReceiptVerificationError("The payload carries no audit receipt")
    return audit


def _canonical(body: Mapping[str, Any]) -> bytes:
    try:
        return bytes(rfc8785.dumps(dict(body)))
    except (TypeError, ValueError, rfc8785.CanonicalizationError) as exc:
        raise ReceiptVerificationError("The audit entry is not canonicalizable JSON") from exc


def _served_leaf(value: object) -> bytes | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        return value
    try:
        return base64.b64decode(str(value), validate=True)
    except binascii.Error as exc:
        raise ReceiptVerificationError("leafHash is not base64") from exc


def _entry(entry: EntryLike) -> tuple[bytes, Mapping[str, Any] | None]:
    """The canonical entry body (preferred: it proves the content) or the 32-byte leaf hash.

    Accepts the leaf hash, an :class:`AuditEntry`, an item of ``/v2/audit/entries``
    (``{"index", "leafHash", "entry"}``) or the entry body itself. When both a body
    and a served leaf hash are there, they must agree.
    """
    if isinstance(entry, bytes):
        if len(entry) != HASH_SIZE:
            raise ReceiptVerificationError("A leaf hash is 32 bytes")
        return entry, None
    if isinstance(entry, AuditEntry):
        body: Mapping[str, Any] | None = entry.entry or None
        served = entry.leaf_hash or None
    elif isinstance(entry.get("entry"), Mapping):
        body, served = entry["entry"], _served_leaf(entry.get("leafHash"))
    else:
        body, served = entry, None
    if body is None:
        if served is None:
            raise ReceiptVerificationError("The audit entry has neither a body nor a leaf hash")
        return served, None
    leaf = leaf_hash(_canonical(body))
    if served is not None and not hmac.compare_digest(leaf, served):
        raise ReceiptVerificationError("The entry body does not hash to its leaf hash")
    return leaf, body


def _proof(receipt: Mapping[str, Any]) -> tuple[int, str, list[bytes]]:
    index, note, proof = (
        receipt.get("index"),
        receipt.get("checkpoint"),
        receipt.get("inclusionProof"),
    )
    if isinstance(index, bool) or not isinstance(index, int) or index < 0:
        raise ReceiptVerificationError("receipt 'index' must be a non-negative integer")
    if not isinstance(note, str):
        raise ReceiptVerificationError("receipt 'checkpoint' must be a signed note")
    if not isinstance(proof, list) or len(proof) > _MAX_PROOF:
        raise ReceiptVerificationError("receipt 'inclusionProof' must be a list of hashes")
    try:
        hashes = [base64.b64decode(p, validate=True) for p in proof]
    except (binascii.Error, TypeError, ValueError) as exc:
        raise ReceiptVerificationError("receipt 'inclusionProof' must be base64") from exc
    return index, note, hashes


def verify_receipt(
    payload_or_receipt: Mapping[str, Any],
    leaf_hash_or_entry: EntryLike,
    jwks: Keys,
    key_name: str,
    origin: str,
) -> None:
    """Check that the receipt proves the entry is in the log the service signed.

    ``payload_or_receipt`` is the final webhook payload (or its ``audit`` object);
    ``leaf_hash_or_entry`` is the entry (see ``GET /v2/audit/entries`` or
    :meth:`Client.audit_entry`) or its leaf hash; ``jwks`` is the service's JWKS
    (pin it: fetched from the same service it proves nothing against that
    service); ``key_name`` and ``origin`` are the checkpoint's (from
    :meth:`Client.audit_checkpoint`, also fixed per deployment). Raises
    :class:`ReceiptVerificationError` unless it all checks out.
    """
    index, note, proof = _proof(_receipt_of(payload_or_receipt))
    leaf, body = _entry(leaf_hash_or_entry)
    if body is not None and body.get("index") != index:
        raise ReceiptVerificationError("The entry records another index than the receipt")
    try:
        checkpoint = verify_checkpoint(note, ed25519_keys(jwks), key_name, origin)
        root = root_from_inclusion(leaf, index, checkpoint.size, proof)
    except AuditFormatError as exc:
        raise ReceiptVerificationError(f"Audit receipt does not verify: {exc}") from exc
    if not hmac.compare_digest(root, checkpoint.root):
        raise ReceiptVerificationError(
            "Audit receipt does not verify: the proof does not lead to the signed root"
        )


__all__ = ["verify_receipt"]
