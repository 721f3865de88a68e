"""C2SP checkpoints as signed notes: exact bytes, round trip, and fail-closed parsing."""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import given, settings
from hypothesis import strategies as st

from bioverify.audit.note import (
    Checkpoint,
    CheckpointError,
    parse_and_verify_checkpoint,
    sign_checkpoint,
)

ORIGIN, NAME = "example.com/log", "example.com"
ROOT = hashlib.sha256(b"root").digest()
KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))


def test_note_has_the_c2sp_layout_and_key_id() -> None:
    note = sign_checkpoint(ORIGIN, 42, ROOT, KEY, NAME)
    body, sig_line = note.split("\n\n")
    assert body + "\n" == f"{ORIGIN}\n42\n{base64.b64encode(ROOT).decode()}\n"
    assert sig_line.startswith("\u2014 example.com ") and sig_line.endswith("\n")
    blob = base64.b64decode(sig_line.split(" ")[2])
    raw = KEY.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    # key ID = SHA-256(key name || 0x0A || 0x01 (Ed25519) || public key)[:4], then the signature.
    assert blob[:4] == hashlib.sha256(b"example.com\n\x01" + raw).digest()[:4]
    KEY.public_key().verify(blob[4:], (body + "\n").encode())


def test_round_trip() -> None:
    note = sign_checkpoint(ORIGIN, 7, ROOT, KEY, NAME)
    assert parse_and_verify_checkpoint(note, KEY.public_key(), NAME, ORIGIN) == Checkpoint(
        ORIGIN, 7, ROOT
    )


def test_rotated_keys_and_foreign_cosignatures() -> None:
    other = Ed25519PrivateKey.generate()
    note = sign_checkpoint(ORIGIN, 7, ROOT, KEY, NAME)
    assert (
        parse_and_verify_checkpoint(note, [other.public_key(), KEY.public_key()], NAME, ORIGIN).size
        == 7
    )
    # A witness line from an unknown name is ignored.
    witness = sign_checkpoint(ORIGIN, 7, ROOT, other, "witness.example").split("\n\n")[1]
    assert parse_and_verify_checkpoint(note + witness, KEY.public_key(), NAME, ORIGIN).size == 7


@pytest.mark.parametrize(
    ("mutate", "why"),
    [
        (lambda n: n.replace("\n7\n", "\n8\n"), "size changed"),
        (lambda n: n.replace(ORIGIN, "example.com/other"), "origin changed"),
        (lambda n: n.split("\n\n")[0] + "\n", "signature removed"),
        (lambda n: n.replace("\u2014", "-"), "not an em dash"),
        (lambda n: n[:-20] + ("A" if n[-20] != "A" else "B") + n[-19:], "signature altered"),
        (lambda n: n.replace("\n7\n", "\n07\n"), "size with leading zero"),
        (lambda n: "", "empty"),
    ],
)
def test_tampered_notes_are_rejected(mutate: object, why: str) -> None:
    note = sign_checkpoint(ORIGIN, 7, ROOT, KEY, NAME)
    with pytest.raises(CheckpointError):
        parse_and_verify_checkpoint(mutate(note), KEY.public_key(), NAME, ORIGIN)  # type: ignore[operator]


def test_unknown_key_and_wrong_origin_are_rejected() -> None:
    note = sign_checkpoint(ORIGIN, 7, ROOT, KEY, NAME)
    with pytest.raises(CheckpointError, match="known key"):
        parse_and_verify_checkpoint(note, Ed25519PrivateKey.generate().public_key(), NAME, ORIGIN)
    with pytest.raises(CheckpointError, match="origin"):
        parse_and_verify_checkpoint(note, KEY.public_key(), NAME, "elsewhere/log")
    with pytest.raises(CheckpointError):
        parse_and_verify_checkpoint(note, [], NAME, ORIGIN)


def test_a_bad_signature_from_the_known_key_rejects_even_with_a_good_one() -> None:
    note = sign_checkpoint(ORIGIN, 7, ROOT, KEY, NAME)
    body, line = note.split("\n\n")
    blob = bytearray(base64.b64decode(line.split(" ")[2]))
    blob[-1] ^= 1
    bad = f"\u2014 {NAME} {base64.b64encode(bytes(blob)).decode()}\n"
    with pytest.raises(CheckpointError, match="does not verify"):
        parse_and_verify_checkpoint(f"{body}\n\n{bad}{line}", KEY.public_key(), NAME, ORIGIN)


@settings(deadline=None)  # timing is not what these test; the machine is shared
@given(st.text(max_size=300))
def test_garbage_raises_checkpoint_error_only(text: str) -> None:
    with pytest.raises(CheckpointError):
        parse_and_verify_checkpoint(text, KEY.public_key(), NAME, ORIGIN)


def test_signing_refuses_bad_inputs() -> None:
    for args in [
        ("", 1, ROOT, NAME),
        (ORIGIN, -1, ROOT, NAME),
        (ORIGIN, 1, b"x", NAME),
        (ORIGIN, 1, ROOT, "bad name"),
        (ORIGIN, 1, ROOT, "a+b"),
    ]:
        with pytest.raises(CheckpointError):
            sign_checkpoint(args[0], args[1], args[2], KEY, args[3])  # type: ignore[arg-type]
