"""verify_receipt over a small signed log: every accepted entry form, and what must fail."""

from __future__ import annotations

import base64
from typing import Any

import pytest
import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import given
from hypothesis import strategies as st

from bioverify.audit.merkle import inclusion_proof, leaf_hash, root_from_leaf_hashes
from bioverify.audit.note import sign_checkpoint
from bioverify_client import AuditEntry, ReceiptVerificationError, verify_receipt

ORIGIN, KEY_NAME = "bioverify/test", "bioverify"
KEY = Ed25519PrivateKey.generate()
X = base64.urlsafe_b64encode(KEY.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))
JWKS = {"keys": [{"kty": "OKP", "crv": "Ed25519", "x": X.rstrip(b"=").decode()}]}


def log(size: int) -> tuple[list[dict[str, Any]], list[bytes], str]:
    bodies: list[dict[str, Any]] = [
        {"index": i, "event": "session:state:ended", "n": i * 7} for i in range(size)
    ]
    leaves = [leaf_hash(rfc8785.dumps(b)) for b in bodies]
    note = sign_checkpoint(ORIGIN, size, root_from_leaf_hashes(leaves), KEY, KEY_NAME)
    return bodies, leaves, note


def payload_for(index: int, leaves: list[bytes], note: str) -> dict[str, Any]:
    proof = inclusion_proof(index, len(leaves), leaves)
    return {
        "sessionId": "s",
        "audit": {
            "index": index,
            "checkpoint": note,
            "inclusionProof": [base64.b64encode(p).decode() for p in proof],
        },
    }


@given(size=st.integers(1, 20), data=st.data())
def test_every_entry_form_verifies(size: int, data: st.DataObject) -> None:
    bodies, leaves, note = log(size)
    index = data.draw(st.integers(0, size - 1))
    payload = payload_for(index, leaves, note)
    item = {
        "index": index,
        "leafHash": base64.b64encode(leaves[index]).decode(),
        "entry": bodies[index],
    }
    for evidence in (
        AuditEntry(index, leaves[index], bodies[index]),
        item,
        bodies[index],
        leaves[index],
    ):
        verify_receipt(payload, evidence, JWKS, KEY_NAME, ORIGIN)
    verify_receipt(payload["audit"], leaves[index], JWKS, KEY_NAME, ORIGIN)


def test_a_body_that_does_not_match_its_served_leaf_hash_fails() -> None:
    bodies, leaves, note = log(4)
    payload = payload_for(2, leaves, note)
    with pytest.raises(ReceiptVerificationError, match="leaf hash"):
        verify_receipt(
            payload, AuditEntry(2, leaves[2], {**bodies[2], "n": 0}), JWKS, KEY_NAME, ORIGIN
        )


def test_another_entry_or_key_or_origin_fails() -> None:
    bodies, leaves, note = log(4)
    payload = payload_for(2, leaves, note)
    other = Ed25519PrivateKey.generate().public_key()
    for evidence, keys, origin in (
        (leaves[1], JWKS, ORIGIN),
        (bodies[3], JWKS, ORIGIN),
        (leaves[2], [other], ORIGIN),
        (leaves[2], JWKS, "elsewhere/log"),
    ):
        with pytest.raises(ReceiptVerificationError):
            verify_receipt(payload, evidence, keys, KEY_NAME, origin)


def test_a_payload_without_a_receipt_fails_closed() -> None:
    _, leaves, _ = log(1)
    with pytest.raises(ReceiptVerificationError):
        verify_receipt({"sessionId": "s", "audit": None}, leaves[0], JWKS, KEY_NAME, ORIGIN)
    with pytest.raises(ReceiptVerificationError):
        verify_receipt({"sessionId": "s"}, leaves[0], JWKS, KEY_NAME, ORIGIN)
