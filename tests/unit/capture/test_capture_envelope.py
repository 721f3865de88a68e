"""The device-side sealer produces envelopes the server opens (and WebCrypto would make)."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from bioverify.capture.envelope import SealError, capture_aad, fresh_nonce, seal
from bioverify.crypto import EnvelopeError, KeyRing, check_freshness, open_envelope

SESSION = "0b6d9d36-3b55-4b8e-8f5e-2f6f0e1f9a10"
STD_B64 = re.compile(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")


@pytest.fixture(scope="module")
def ring(tmp_path_factory: pytest.TempPathFactory) -> KeyRing:
    return KeyRing.load_or_create(Path(tmp_path_factory.mktemp("capture")) / "keys")


def _seal(ring: KeyRing, plaintext: dict[str, object], route: str = "capture") -> dict[str, str]:
    doc = ring.public_key_document()
    return seal(
        plaintext, public_key_pem=doc["publicKey"], kid=doc["kid"], session_id=SESSION, route=route
    )


def test_envelope_shape(ring: KeyRing) -> None:
    body = _seal(ring, {"nonce": fresh_nonce(), "timestamp": 1})
    assert set(body) == {"encryptedKey", "encryptedMessage", "iv", "gcmTag", "gcmAad", "kid"}
    assert body["kid"] == ring.current_capture_kid
    for field in ("encryptedKey", "encryptedMessage", "iv", "gcmTag", "gcmAad"):
        assert STD_B64.fullmatch(body[field]), field
    assert len(base64.b64decode(body["iv"])) == 12
    assert len(base64.b64decode(body["gcmTag"])) == 16
    assert len(base64.b64decode(body["encryptedKey"])) == 3072 // 8
    assert base64.b64decode(body["gcmAad"]) == f"bioverify:v1:{SESSION}:capture".encode()


def test_decrypts_with_the_webcrypto_recipe(ring: KeyRing) -> None:
    """RSA-OAEP(SHA-256) unwraps the AES key; AES-GCM opens ciphertext || tag with the AAD."""
    plaintext = {"nonce": fresh_nonce(), "timestamp": 1, "frames": ["/9j/4AAQ"], "é": "ü"}
    body = _seal(ring, plaintext, route="events")
    private = ring.capture_private_key(body["kid"])
    key = private.decrypt(
        base64.b64decode(body["encryptedKey"]),
        padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None),
    )
    assert len(key) == 32
    message = AESGCM(key).decrypt(
        base64.b64decode(body["iv"]),
        base64.b64decode(body["encryptedMessage"]) + base64.b64decode(body["gcmTag"]),
        capture_aad(SESSION, "events"),
    )
    assert json.loads(message.decode("utf-8")) == plaintext


@pytest.mark.parametrize("route", ["events", "capture"])
def test_server_opens_what_the_client_seals(ring: KeyRing, route: str) -> None:
    plaintext = {"nonce": fresh_nonce(), "timestamp": 1_900_000_000, "events": [{"code": -7}]}
    opened = open_envelope(
        _seal(ring, plaintext, route),
        keyring=ring,
        session_id=SESSION,
        route="events" if route == "events" else "capture",
    )
    assert opened == plaintext


def test_sealed_for_one_route_does_not_open_on_the_other(ring: KeyRing) -> None:
    with pytest.raises(EnvelopeError, match="gcmAad"):
        open_envelope(
            _seal(ring, {"a": 1}, "events"), keyring=ring, session_id=SESSION, route="capture"
        )


def test_every_seal_uses_a_fresh_key_and_iv(ring: KeyRing) -> None:
    first, second = _seal(ring, {"a": 1}), _seal(ring, {"a": 1})
    for field in ("encryptedKey", "encryptedMessage", "iv", "gcmTag"):
        assert first[field] != second[field], field


def test_fresh_nonce_is_256_bits_of_unpadded_base64url() -> None:
    nonces = {fresh_nonce() for _ in range(50)}
    assert len(nonces) == 50
    for nonce in nonces:
        assert re.fullmatch(r"[A-Za-z0-9_-]{43}", nonce)
        assert len(base64.urlsafe_b64decode(nonce + "=")) == 32
        assert check_freshness({"nonce": nonce, "timestamp": 10}, now=10) == (nonce, 10)


def _pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@pytest.mark.parametrize(
    "pem",
    [
        "not a pem",
        _pem(ec.generate_private_key(ec.SECP256R1())),
        _pem(rsa.generate_private_key(65537, 1024)),  # noqa: S505 - must be refused
    ],
)
def test_unusable_public_key_is_refused(pem: str | bytes) -> None:
    with pytest.raises(SealError, match="publicKey"):
        seal({"a": 1}, public_key_pem=pem, kid="k", session_id=SESSION, route="capture")


@pytest.mark.parametrize("plaintext", [{"a": {1, 2}}, {"a": float("nan")}])
def test_non_json_plaintext_is_refused(ring: KeyRing, plaintext: dict[str, object]) -> None:
    with pytest.raises(SealError, match="JSON"):
        _seal(ring, plaintext)
