"""C2SP checkpoints (c2sp.org/tlog-checkpoint) as signed notes (c2sp.org/signed-note).

A checkpoint body is ``"{origin}\\n{size}\\n{base64(root)}\\n"``; the note is the
body, a blank line, and one signature line per signer:
``"\\u2014 {key name} {base64(key id (4 bytes) || Ed25519 signature)}\\n"`` where the
key id is ``SHA-256(key name || "\\n" || 0x01 || public key)[:4]`` and the signature
covers the body bytes. Verification fails closed: a note needs one valid
signature by the expected key; a line that claims that key but does not verify
rejects the note; lines from other keys are ignored, as the spec says.

Pure module: the client SDK imports it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

_SIG_PREFIX: Final = "\u2014 "
_ED25519_TYPE: Final = b"\x01"
_MAX_NOTE: Final = 64 * 1024
_MAX_SIGNATURES: Final = 100
_SIZE_RE: Final = re.compile(r"(0|[1-9][0-9]{0,19})")
_HASH_SIZE: Final = 32


class CheckpointError(ValueError):
    """A checkpoint note is malformed, unsigned by the expected key, or for another log."""


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A verified (or freshly signed) log state."""

    origin: str
    size: int
    root: bytes


def _check_key_name(key_name: str) -> None:
    if not key_name or "+" in key_name or any(c.isspace() for c in key_name):
        raise CheckpointError("key name must be non-empty, without spaces or '+'")


def _check_origin(origin: str) -> None:
    if not origin or origin != origin.strip() or "\n" in origin:
        raise CheckpointError("origin must be one non-empty line without outer spaces")


def _raw_public(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def key_id(key_name: str, public_key: Ed25519PublicKey) -> bytes:
    """The 4-byte signed-note key id of an Ed25519 key."""
    data = key_name.encode() + b"\n" + _ED25519_TYPE + _raw_public(public_key)
    return hashlib.sha256(data).digest()[:4]


def checkpoint_body(origin: str, size: int, root: bytes) -> str:
    """The unsigned checkpoint text."""
    _check_origin(origin)
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise CheckpointError("size must be a non-negative integer")
    if len(root) != _HASH_SIZE:
        raise CheckpointError("root must be 32 bytes")
    return f"{origin}\n{size}\n{base64.b64encode(root).decode()}\n"


def sign_checkpoint(
    origin: str, size: int, root: bytes, private_key: Ed25519PrivateKey, key_name: str
) -> str:
    """A signed checkpoint note for ``(origin, size, root)``."""
    _check_key_name(key_name)
    body = checkpoint_body(origin, size, root)
    signature = private_key.sign(body.encode())
    blob = key_id(key_name, private_key.public_key()) + signature
    return f"{body}\n{_SIG_PREFIX}{key_name} {base64.b64encode(blob).decode()}\n"


def _split_note(note: str) -> tuple[str, list[str]]:
    if not isinstance(note, str) or len(note) > _MAX_NOTE or not note.endswith("\n"):
        raise CheckpointError("checkpoint note is malformed")
    cut = note.rfind("\n\n")
    if cut < 0:
        raise CheckpointError("checkpoint note has no signature block")
    body, sigs = note[: cut + 1], note[cut + 2 :]
    lines = sigs[:-1].split("\n")
    if not lines or len(lines) > _MAX_SIGNATURES:
        raise CheckpointError("checkpoint note has no signatures")
    return body, lines


def _parse_body(body: str) -> Checkpoint:
    lines = body[:-1].split("\n")
    if len(lines) < 3:
        raise CheckpointError("checkpoint body needs origin, size and root lines")
    origin, size_text, root_text = lines[0], lines[1], lines[2]
    if not origin or origin != origin.strip():
        raise CheckpointError("checkpoint origin line is malformed")
    if not _SIZE_RE.fullmatch(size_text):
        raise CheckpointError("checkpoint size line is malformed")
    try:
        root = base64.b64decode(root_text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise CheckpointError("checkpoint root line is not base64") from exc
    if len(root) != _HASH_SIZE:
        raise CheckpointError("checkpoint root is not 32 bytes")
    return Checkpoint(origin=origin, size=int(size_text), root=root)


def _signature_blobs(lines: Iterable[str], key_name: str) -> list[bytes]:
    """The decoded signatures of lines naming ``key_name``; other names are skipped."""
    found: list[bytes] = []
    for line in lines:
        if not line.startswith(_SIG_PREFIX):
            raise CheckpointError("checkpoint signature line is malformed")
        name, sep, b64 = line[len(_SIG_PREFIX) :].partition(" ")
        if not sep or not name or " " in b64:
            raise CheckpointError("checkpoint signature line is malformed")
        try:
            blob = base64.b64decode(b64.encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError) as exc:
            raise CheckpointError("checkpoint signature is not base64") from exc
        if len(blob) < 5:
            raise CheckpointError("checkpoint signature is too short")
        if name == key_name:
            found.append(blob)
    return found


def parse_and_verify_checkpoint(
    note: str,
    public_key: Ed25519PublicKey | Iterable[Ed25519PublicKey],
    key_name: str,
    origin: str,
) -> Checkpoint:
    """Verify a checkpoint note and return its contents.

    ``public_key`` may be several keys (rotation): the note must carry a valid
    signature by one of them under ``key_name``. Raises :class:`CheckpointError`.
    """
    _check_key_name(key_name)
    keys = [public_key] if isinstance(public_key, Ed25519PublicKey) else list(public_key)
    if not keys:
        raise CheckpointError("no public key to verify the checkpoint with")
    body, lines = _split_note(note)
    checkpoint = _parse_body(body)
    if checkpoint.origin != origin:
        raise CheckpointError("checkpoint is for another log origin")
    by_id = {key_id(key_name, k): k for k in keys}
    verified = False
    for blob in _signature_blobs(lines, key_name):
        key = by_id.get(blob[:4])
        if key is None:
            continue
        try:
            key.verify(blob[4:], body.encode())
        except InvalidSignature as exc:
            # A known key whose signature fails rejects the whole note (C2SP signed-note).
            raise CheckpointError("checkpoint signature does not verify") from exc
        verified = True
    if not verified:
        raise CheckpointError("checkpoint is not signed by a known key")
    return checkpoint


__all__ = [
    "Checkpoint",
    "CheckpointError",
    "checkpoint_body",
    "key_id",
    "parse_and_verify_checkpoint",
    "sign_checkpoint",
]
