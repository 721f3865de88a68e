"""The client's own audit verifiers agree with the server's on every input.

The client distribution cannot import the server, so it carries a second
implementation of the verification half of RFC 9162 proofs, C2SP notes and JWKS
parsing (CONVENTIONS: where the client must stay independent, a property test
proves the two copies agree).
"""

from __future__ import annotations

import base64
import hashlib

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import given, settings
from hypothesis import strategies as st

from bioverify.audit import merkle, note, receipt
from bioverify_client import _audit

ORIGIN, NAME = "bioverify/test", "bioverify"
KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
OTHER = Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33)))


def client_accepts(leaf: bytes, index: int, size: int, proof: list[bytes], root: bytes) -> bool:
    try:
        return _audit.root_from_inclusion(leaf, index, size, proof) == root
    except _audit.AuditFormatError:
        return False


@settings(deadline=None)  # correctness, not speed
@given(
    size=st.integers(1, 70),
    data=st.data(),
    flip=st.sampled_from(["none", "leaf", "proof", "index", "size", "short", "long"]),
)
def test_inclusion_verdicts_agree(size: int, data: st.DataObject, flip: str) -> None:
    leaves = [hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(size)]
    index = data.draw(st.integers(0, size - 1))
    proof = merkle.inclusion_proof(index, size, leaves)
    root = merkle.root_from_leaf_hashes(leaves)
    leaf = leaves[index]
    if flip == "leaf":
        leaf = hashlib.sha256(leaf).digest()
    elif flip == "proof" and proof:
        proof[0] = hashlib.sha256(proof[0]).digest()
    elif flip == "index":
        index = data.draw(st.integers(0, size + 2))
    elif flip == "size":
        size = data.draw(st.integers(0, 80))
    elif flip == "short" and proof:
        proof.pop()
    elif flip == "long":
        proof.append(root)
    expected = merkle.verify_inclusion(leaf, index, size, proof, root)
    assert client_accepts(leaf, index, size, proof, root) is expected
    if flip == "none":
        assert expected


def client_checkpoint(text: str, keys: list[object]) -> tuple[int, bytes] | None:
    try:
        found = _audit.verify_checkpoint(text, keys, NAME, ORIGIN)  # type: ignore[arg-type]
    except _audit.AuditFormatError:
        return None
    return found.size, found.root


def server_checkpoint(text: str, keys: list[object]) -> tuple[int, bytes] | None:
    try:
        found = note.parse_and_verify_checkpoint(text, keys, NAME, ORIGIN)  # type: ignore[arg-type]
    except note.CheckpointError:
        return None
    return found.size, found.root


@settings(deadline=None)  # correctness, not speed
@given(
    size=st.integers(0, 2**40),
    at=st.integers(0, 400),
    char=st.sampled_from(["A", "0", "\n", " ", "+", "\u2014", ""]),
    extra_signer=st.booleans(),
)
def test_checkpoint_verdicts_agree(size: int, at: int, char: str, extra_signer: bool) -> None:
    root = hashlib.sha256(size.to_bytes(8, "big")).digest()
    text = note.sign_checkpoint(ORIGIN, size, root, KEY, NAME)
    if extra_signer:
        other = note.sign_checkpoint(ORIGIN, size, root, OTHER, "witness")
        text = text + other.split("\n\n", 1)[1]
    assert client_checkpoint(text, [KEY.public_key()]) == (size, root)
    tampered = text[:at] + char + text[at + 1 :]
    keys: list[object] = [KEY.public_key()]
    assert client_checkpoint(tampered, keys) == server_checkpoint(tampered, keys)
    assert client_checkpoint(text, [OTHER.public_key()]) is None


def test_jwks_parsing_agrees() -> None:
    raw = KEY.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    x = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    jwks = {"keys": [{"kty": "RSA", "n": "AQAB"}, {"kty": "OKP", "crv": "Ed25519", "x": x}]}
    mine = [k.public_bytes(Encoding.Raw, PublicFormat.Raw) for k in _audit.ed25519_keys(jwks)]
    theirs = [
        k.public_bytes(Encoding.Raw, PublicFormat.Raw) for k in receipt.public_keys_from(jwks)
    ]
    assert mine == theirs == [raw]
    assert _audit.note_key_id(NAME, KEY.public_key()) == note.key_id(NAME, KEY.public_key())
