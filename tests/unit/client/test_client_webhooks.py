"""verify_webhook against the Standard Webhooks reference signer, and every way to fail."""

from __future__ import annotations

import base64
import datetime as dt
import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import given
from hypothesis import strategies as st
from standardwebhooks.webhooks import Webhook

from bioverify_client import WebhookVerificationError, verify_webhook

NOW = 1_750_000_000
SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()
OTHER = "whsec_" + base64.b64encode(b"o" * 32).decode()


def signed(
    body: bytes, secret: str = SECRET, *, msg_id: str = "msg_1", at: int = NOW
) -> dict[str, str]:
    signature = Webhook(secret).sign(msg_id, dt.datetime.fromtimestamp(at, dt.UTC), body.decode())
    return {"webhook-id": msg_id, "webhook-timestamp": str(at), "webhook-signature": signature}


def ed25519_signed(
    body: bytes, key: Ed25519PrivateKey, *, msg_id: str = "msg_1", at: int = NOW
) -> dict[str, str]:
    signature = base64.b64encode(key.sign(f"{msg_id}.{at}.".encode() + body)).decode()
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(at),
        "webhook-signature": f"v1a,{signature}",
    }


def jwks_of(key: Ed25519PrivateKey) -> dict[str, object]:
    raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    x = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    return {"keys": [{"kty": "OKP", "crv": "Ed25519", "x": x, "kid": "k1", "alg": "EdDSA"}]}


payloads = st.dictionaries(st.text(max_size=8), st.integers() | st.text(max_size=20), max_size=5)


@given(
    payload=payloads,
    msg_id=st.from_regex(r"msg_[A-Za-z0-9]{1,20}", fullmatch=True),
    skew=st.integers(-300, 300),
)
def test_reference_signatures_verify_and_return_the_payload(
    payload: dict[str, object], msg_id: str, skew: int
) -> None:
    body = json.dumps(payload).encode()
    headers = signed(body, msg_id=msg_id, at=NOW + skew)
    assert verify_webhook(body, headers, SECRET, now=NOW) == payload


@given(payload=payloads, flip=st.integers(0, 10_000))
def test_any_changed_body_byte_fails(payload: dict[str, object], flip: int) -> None:
    body = bytearray(json.dumps(payload).encode())
    headers = signed(bytes(body))
    body[flip % len(body)] ^= 0x01
    with pytest.raises(WebhookVerificationError):
        verify_webhook(bytes(body), headers, SECRET, now=NOW)


def test_v1a_verifies_with_the_jwks_and_not_with_another_key() -> None:
    key = Ed25519PrivateKey.generate()
    body = b'{"status":"SUCCESS"}'
    assert verify_webhook(body, ed25519_signed(body, key), jwks_of(key), now=NOW) == {
        "status": "SUCCESS"
    }
    with pytest.raises(WebhookVerificationError):
        verify_webhook(
            body, ed25519_signed(body, key), jwks_of(Ed25519PrivateKey.generate()), now=NOW
        )
    # A v1a signature is no use to an HMAC-only receiver, and the reverse.
    with pytest.raises(WebhookVerificationError):
        verify_webhook(body, ed25519_signed(body, key), SECRET, now=NOW)
    with pytest.raises(WebhookVerificationError):
        verify_webhook(body, signed(body), jwks_of(key), now=NOW)


@pytest.mark.parametrize("at", [NOW - 301, NOW + 301])
def test_timestamps_outside_the_window_fail(at: int) -> None:
    body = b"{}"
    with pytest.raises(WebhookVerificationError, match="tolerance"):
        verify_webhook(body, signed(body, at=at), SECRET, now=NOW)
    assert verify_webhook(body, signed(body, at=at), SECRET, now=NOW, tolerance=400) == {}


def test_wrong_secret_and_missing_headers_fail() -> None:
    body = b"{}"
    with pytest.raises(WebhookVerificationError, match="No matching"):
        verify_webhook(body, signed(body), OTHER, now=NOW)
    for missing in ("webhook-id", "webhook-timestamp", "webhook-signature"):
        headers = {k: v for k, v in signed(body).items() if k != missing}
        with pytest.raises(WebhookVerificationError, match="Missing"):
            verify_webhook(body, headers, SECRET, now=NOW)


def test_a_signed_id_cannot_be_swapped() -> None:
    body = b"{}"
    headers = {**signed(body), "webhook-id": "msg_other"}
    with pytest.raises(WebhookVerificationError):
        verify_webhook(body, headers, SECRET, now=NOW)


def test_rotation_accepts_any_live_secret_and_skips_malformed_entries() -> None:
    body = b'{"a":1}'
    good = signed(body)["webhook-signature"]
    headers = {**signed(body), "webhook-signature": f"v1,@@notbase64 nonsense {good}"}
    assert verify_webhook(body, headers, [OTHER, SECRET], now=NOW) == {"a": 1}
    upper = {k.title(): v for k, v in headers.items()}  # header names are case-insensitive
    assert verify_webhook(body, upper, SECRET, now=NOW) == {"a": 1}


def test_signed_non_object_bodies_are_refused() -> None:
    body = b"[1,2]"
    with pytest.raises(WebhookVerificationError, match="object"):
        verify_webhook(body, signed(body), SECRET, now=NOW)


def test_misuse_is_a_programming_error_not_a_pass() -> None:
    body = b"{}"
    with pytest.raises(ValueError, match="at least one"):
        verify_webhook(body, signed(body), [], now=NOW)
    with pytest.raises(ValueError, match="base64"):
        verify_webhook(body, signed(body), "whsec_***", now=NOW)
    with pytest.raises(TypeError, match="raw body"):
        verify_webhook({}, signed(body), SECRET, now=NOW)  # type: ignore[arg-type]


def test_secrets_are_compared_without_the_prefix_too() -> None:
    body = b"{}"
    raw = SECRET.removeprefix("whsec_")
    assert verify_webhook(body, signed(body), raw, now=NOW) == {}
