"""Offline receipt checks, as an integrator runs them on a final webhook's `audit` field."""

from __future__ import annotations

import base64

import pytest
from audit_helpers import KEY_NAME, ORIGIN, FillLog
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from bioverify.audit.models import AuditEntry
from bioverify.audit.receipt import ReceiptError, verify_receipt


def jwks_of(*keys: Ed25519PrivateKey) -> dict[str, object]:
    def jwk(k: Ed25519PrivateKey) -> dict[str, str]:
        raw = k.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        return {
            "kty": "OKP",
            "crv": "Ed25519",
            "kid": "k",
            "x": base64.urlsafe_b64encode(raw).rstrip(b"=").decode(),
        }

    return {"keys": [{"kty": "RSA", "n": "AQAB", "e": "AQAB"}, *map(jwk, keys)]}


@pytest.fixture
def issued(fill: FillLog, engine: Engine, signer: Ed25519PrivateKey) -> tuple[bytes, dict]:
    log = fill(40, 40)
    with Session(engine) as db:
        receipt = log.receipt(db, 13)
        body = db.scalars(select(AuditEntry.body).where(AuditEntry.idx == 13)).one()
    assert receipt is not None
    return body, receipt


def test_a_receipt_verifies_with_the_jwks(
    issued: tuple[bytes, dict], signer: Ed25519PrivateKey
) -> None:
    body, receipt = issued
    other = Ed25519PrivateKey.generate()
    assert verify_receipt(body, receipt, jwks_of(other, signer), KEY_NAME, ORIGIN)
    assert verify_receipt(body.decode(), receipt, signer.public_key(), KEY_NAME, ORIGIN)


def test_a_receipt_verifies_from_the_leaf_hash(
    issued: tuple[bytes, dict], engine: Engine, signer: Ed25519PrivateKey
) -> None:
    _, receipt = issued
    with Session(engine) as db:
        leaf = db.scalars(select(AuditEntry.leaf_hash).where(AuditEntry.idx == 13)).one()
    assert verify_receipt(leaf, receipt, [signer.public_key()], KEY_NAME, ORIGIN)


def test_wrong_entry_key_index_or_proof_is_refused(
    issued: tuple[bytes, dict], signer: Ed25519PrivateKey
) -> None:
    body, receipt = issued
    key = signer.public_key()
    with pytest.raises(ReceiptError, match="index"):
        verify_receipt(body, {**receipt, "index": 14}, key, KEY_NAME, ORIGIN)
    with pytest.raises(ReceiptError, match="inclusion"):
        verify_receipt(body.replace(b"FAILED", b"PASSED"), receipt, key, KEY_NAME, ORIGIN)
    with pytest.raises(ReceiptError, match="checkpoint"):
        verify_receipt(body, receipt, jwks_of(Ed25519PrivateKey.generate()), KEY_NAME, ORIGIN)
    with pytest.raises(ReceiptError, match="checkpoint"):
        verify_receipt(body, receipt, key, KEY_NAME, "another/log")
    proof = list(receipt["inclusionProof"])
    proof[0] = base64.b64encode(bytes(32)).decode()
    with pytest.raises(ReceiptError, match="inclusion"):
        verify_receipt(body, {**receipt, "inclusionProof": proof}, key, KEY_NAME, ORIGIN)
    with pytest.raises(ReceiptError):
        verify_receipt(body, receipt, {"keys": []}, KEY_NAME, ORIGIN)


@settings(deadline=None)  # timing is not what these test; the machine is shared
@given(
    st.dictionaries(
        st.sampled_from(["index", "checkpoint", "inclusionProof", "x"]),
        st.one_of(st.none(), st.integers(), st.text(), st.lists(st.text())),
    )
)
def test_garbage_receipts_raise_receipt_error(receipt: dict[str, object]) -> None:
    key = Ed25519PrivateKey.from_private_bytes(bytes(32)).public_key()
    with pytest.raises(ReceiptError):
        verify_receipt(b'{"index":0}', receipt, key, KEY_NAME, ORIGIN)
