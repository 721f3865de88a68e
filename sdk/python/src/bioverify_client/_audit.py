"""Verification half of the audit log's formats: RFC 9162 inclusion, C2SP checkpoints, JWKS.

The client is installed without the server, so it carries its own verifier of the
formats the server writes (``bioverify.audit.merkle`` / ``note``); a property test
in the server's suite proves the two agree on every proof and note. Everything
fails closed: a malformed input is a failure, never a pass.

- RFC 9162 section 2.1: leaf ``SHA-256(0x00 || data)``, node ``SHA-256(0x01 || l || r)``;
  inclusion verification is the iterative algorithm of section 2.1.3.2.
- c2sp.org/tlog-checkpoint and c2sp.org/signed-note: body ``origin\\nsize\\nbase64(root)\\n``,
  a blank line, then ``\\u2014 name base64(keyid(4) || Ed25519 signature)`` lines; the key
  id is ``SHA-256(name || "\\n" || 0x01 || public key)[:4]``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

HASH_SIZE: Final = 32
_MAX_NOTE: Final = 64 * 1024
_MAX_SIGNATURES: Final = 100
_SIZE_LINE: Final = re.compile(r"0|[1-9][0-9]{0,19}")
_SIG_PREFIX: Final = "\u2014 "

KeysLike = Mapping[str, Any] | Ed25519PublicKey | Iterable[Ed25519PublicKey]


class AuditFormatError(ValueError):
    """A proof, note or key set is malformed or does not verify."""


def leaf_hash(data: bytes) -> bytes:
    """The RFC 9162 hash of one leaf's data."""
    return hashlib.sha256(b"\x00" + data).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def root_from_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes]) -> bytes:
    """The root an inclusion proof implies for leaf hash ``leaf`` at ``index`` of ``size``."""
    if not (0 <= index < size) or len(leaf) != HASH_SIZE:
        raise AuditFormatError("index must be smaller than the tree size")
    if any(len(p) != HASH_SIZE for p in proof):
        raise AuditFormatError("proof hashes must be 32 bytes")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise AuditFormatError("inclusion proof is too long")
        if fn & 1 or fn == sn:
            r = _node(p, r)
            # Skip the levels where this node is a right edge with no sibling.
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = _node(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise AuditFormatError("inclusion proof is too short")
    return r


@dataclass(frozen=True, slots=True)
class SignedCheckpoint:
    """A checkpoint whose signature verified: the log ``origin`` at ``size`` with ``root``."""

    origin: str
    size: int
    root: bytes


def _raw(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def note_key_id(key_name: str, key: Ed25519PublicKey) -> bytes:
    """The 4-byte signed-note key id of an Ed25519 key."""
    return hashlib.sha256(key_name.encode() + b"\n\x01" + _raw(key)).digest()[:4]


def _b64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise AuditFormatError(f"{what} is not base64") from exc


def _body(body: str, origin: str) -> SignedCheckpoint:
    lines = body[:-1].split("\n")
    if len(lines) < 3:
        raise AuditFormatError("checkpoint needs origin, size and root lines")
    if lines[0] != origin:
        raise AuditFormatError("checkpoint is for another log origin")
    if not _SIZE_LINE.fullmatch(lines[1]):
        raise AuditFormatError("checkpoint size line is malformed")
    root = _b64(lines[2], "checkpoint root")
    if len(root) != HASH_SIZE:
        raise AuditFormatError("checkpoint root is not 32 bytes")
    return SignedCheckpoint(origin, int(lines[1]), root)


def verify_checkpoint(
    note: str, keys: Sequence[Ed25519PublicKey], key_name: str, origin: str
) -> SignedCheckpoint:
    """The checkpoint of a signed note that one of ``keys`` signed as ``key_name``.

    A line naming the key that does not verify rejects the note; other signers'
    lines are ignored (c2sp.org/signed-note).
    """
    if not key_name or "+" in key_name or any(c.isspace() for c in key_name):
        raise AuditFormatError("key name must be non-empty, without spaces or '+'")
    if not keys:
        raise AuditFormatError("no public key to verify the checkpoint with")
    if not isinstance(note, str) or len(note) > _MAX_NOTE or not note.endswith("\n"):
        raise AuditFormatError("checkpoint note is malformed")
    cut = note.rfind("\n\n")
    if cut < 0:
        raise AuditFormatError("checkpoint note has no signature block")
    body, signature_lines = note[: cut + 1], note[cut + 2 : -1].split("\n")
    if len(signature_lines) > _MAX_SIGNATURES:
        raise AuditFormatError("checkpoint note has too many signatures")
    checkpoint = _body(body, origin)
    by_id = {note_key_id(key_name, k): k for k in keys}
    verified = False
    for line in signature_lines:
        name, sep, encoded = line.removeprefix(_SIG_PREFIX).partition(" ")
        if not line.startswith(_SIG_PREFIX) or not sep or not name or " " in encoded:
            raise AuditFormatError("checkpoint signature line is malformed")
        blob = _b64(encoded, "checkpoint signature")
        key = by_id.get(blob[:4]) if name == key_name and len(blob) > 4 else None
        if key is None:
            continue
        try:
            key.verify(blob[4:], body.encode())
        except InvalidSignature as exc:
            raise AuditFormatError("checkpoint signature does not verify") from exc
        verified = True
    if not verified:
        raise AuditFormatError("checkpoint is not signed by a known key")
    return checkpoint


def _jwk_key(jwk: Mapping[str, Any]) -> Ed25519PublicKey | None:
    if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
        return None
    x = jwk.get("x")
    if not isinstance(x, str):
        raise AuditFormatError("JWK 'x' must be a string")
    try:
        raw = base64.urlsafe_b64decode(x + "=" * (-len(x) % 4))
    except (binascii.Error, ValueError) as exc:
        raise AuditFormatError("JWK 'x' is not base64url") from exc
    if len(raw) != 32:
        raise AuditFormatError("JWK Ed25519 key must be 32 bytes")
    return Ed25519PublicKey.from_public_bytes(raw)


def ed25519_keys(keys: KeysLike) -> list[Ed25519PublicKey]:
    """Ed25519 keys from a JWKS (``{"keys": [...]}``), one JWK, a key, or keys; never empty."""
    if isinstance(keys, Ed25519PublicKey):
        return [keys]
    if isinstance(keys, Mapping):
        jwks = keys.get("keys", [keys])
        if not isinstance(jwks, list):
            raise AuditFormatError("JWKS 'keys' must be a list")
        found = [k for k in (_jwk_key(j) for j in jwks if isinstance(j, Mapping)) if k]
    else:
        found = [k for k in keys if isinstance(k, Ed25519PublicKey)]
    if not found:
        raise AuditFormatError("no Ed25519 key in the key set")
    return found


__all__ = [
    "HASH_SIZE",
    "AuditFormatError",
    "KeysLike",
    "SignedCheckpoint",
    "ed25519_keys",
    "leaf_hash",
    "note_key_id",
    "root_from_inclusion",
    "verify_checkpoint",
]
