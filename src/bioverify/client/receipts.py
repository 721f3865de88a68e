"""Verify the audit receipt a final webhook carries, offline.

A receipt (``payload["audit"]``) proves that the service's signed, append-only
audit log holds the entry that ended the session. The check itself is
:func:`bioverify.audit.receipt.verify_receipt` (pure: no server code); this
module adapts the SDK's inputs to it and raises the SDK's error.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Iterable, Mapping
from typing import Any

import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from bioverify.audit.merkle import leaf_hash
from bioverify.audit.receipt import ReceiptError
from bioverify.audit.receipt import verify_receipt as _verify
from bioverify.client.errors import ReceiptVerificationError
from bioverify.client.models import AuditEntry

EntryLike = bytes | AuditEntry | Mapping[str, Any]
Keys = Mapping[str, Any] | Ed25519PublicKey | Iterable[Ed25519PublicKey]


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


def _entry_bytes(entry: EntryLike) -> bytes:
    """The canonical entry body (preferred: it proves the content) or the 32-byte leaf hash.

    Accepts the leaf hash, an :class:`AuditEntry`, an item of ``/v2/audit/entries``
    (``{"index", "leafHash", "entry"}``) or the entry body itself. When both a body
    and a served leaf hash are there, they must agree.
    """
    if isinstance(entry, bytes):
        return entry
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
        return served
    canonical = _canonical(body)
    if served is not None and not hmac.compare_digest(leaf_hash(canonical), served):
        raise ReceiptVerificationError("The entry body does not hash to its leaf hash")
    return canonical


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
    receipt = _receipt_of(payload_or_receipt)
    entry = _entry_bytes(leaf_hash_or_entry)
    try:
        _verify(entry, receipt, jwks, key_name, origin)
    except ReceiptError as exc:
        raise ReceiptVerificationError(f"Audit receipt does not verify: {exc}") from exc


__all__ = ["verify_receipt"]
