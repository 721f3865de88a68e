"""Our signatures against the Standard Webhooks reference package, and our verifier."""

from __future__ import annotations

import base64
import time

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from bioverify.webhooks.signing import SignatureError, new_webhook_secret, sign, verify

SECRET = new_webhook_secret()


def _headers(msg_id: str, ts: int, sig: str) -> dict[str, str]:
    return {"webhook-id": msg_id, "webhook-timestamp": str(ts), "webhook-signature": sig}


def test_new_secret_is_whsec_base64_of_32_bytes() -> None:
    secret = new_webhook_secret()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 32
    assert secret != new_webhook_secret()


@given(
    msg_id=st.text(
        st.characters(codec="ascii", exclude_characters=" \r\n"), min_size=1, max_size=40
    ),
    body=st.binary(max_size=300).map(base64.b64encode),
)
def test_reference_package_accepts_our_signature(msg_id: str, body: bytes) -> None:
    ts = int(time.time())
    headers = _headers(msg_id, ts, sign(msg_id, ts, body, secrets=[SECRET]))
    Webhook(SECRET).verify(body, headers, json_parse=False)
    verify(body, headers, secrets=[SECRET])


@pytest.mark.parametrize("field", ["body", "id", "timestamp"])
def test_tampering_fails_in_reference_package_and_ours(field: str) -> None:
    ts = int(time.time())
    body = b'{"status":"SUCCESS"}'
    sig = sign("msg_1", ts, body, secrets=[SECRET])
    tampered = {
        "body": (b'{"status":"FAILED!"}', _headers("msg_1", ts, sig)),
        "id": (body, _headers("msg_2", ts, sig)),
        "timestamp": (body, _headers("msg_1", ts - 1, sig)),
    }[field]
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(tampered[0], tampered[1])
    with pytest.raises(SignatureError):
        verify(tampered[0], tampered[1], secrets=[SECRET])


def test_rotation_sends_one_signature_per_secret_and_both_verify() -> None:
    old, new = new_webhook_secret(), new_webhook_secret()
    ts = int(time.time())
    sig = sign("msg_r", ts, b"{}", secrets=[old, new])
    assert len(sig.split(" ")) == 2
    for secret in (old, new):
        Webhook(secret).verify(b"{}", _headers("msg_r", ts, sig))
    with pytest.raises(WebhookVerificationError):
        Webhook(new_webhook_secret()).verify(b"{}", _headers("msg_r", ts, sig))


def test_ed25519_v1a_verifies_with_the_public_key_only() -> None:
    key = Ed25519PrivateKey.generate()
    ts = int(time.time())
    sig = sign("msg_a", ts, b"{}", secrets=[SECRET], ed25519_keys=[key])
    assert [part.split(",")[0] for part in sig.split(" ")] == ["v1", "v1a"]
    verify(b"{}", _headers("msg_a", ts, sig), public_keys=[key.public_key()])
    with pytest.raises(SignatureError):
        verify(
            b"{}",
            _headers("msg_a", ts, sig),
            public_keys=[Ed25519PrivateKey.generate().public_key()],
        )


@pytest.mark.parametrize("offset", [-301, 301])
def test_stale_or_future_timestamps_are_refused(offset: int) -> None:
    ts = int(time.time()) + offset
    headers = _headers("msg_t", ts, sign("msg_t", ts, b"{}", secrets=[SECRET]))
    with pytest.raises(SignatureError, match=r"outside the tolerance window"):
        verify(b"{}", headers, secrets=[SECRET])
    verify(b"{}", headers, secrets=[SECRET], now=ts)


@pytest.mark.parametrize(
    "headers",
    [
        {"webhook-id": "m", "webhook-timestamp": "abc", "webhook-signature": "v1,AAAA"},
        {"webhook-id": "m", "webhook-timestamp": "1", "webhook-signature": "v1AAAA"},
        {"webhook-id": "m", "webhook-timestamp": "1", "webhook-signature": "v1,not base64!"},
        {"webhook-id": "m", "webhook-timestamp": "1"},
    ],
)
def test_malformed_headers_are_refused(headers: dict[str, str]) -> None:
    with pytest.raises(SignatureError):
        verify(b"{}", headers, secrets=[SECRET], now=1)


def test_verifier_fails_closed_without_keys_and_never_echoes_the_secret() -> None:
    ts = int(time.time())
    headers = _headers("m", ts, sign("m", ts, b"{}", secrets=[SECRET]))
    with pytest.raises(SignatureError) as info:
        verify(b"{}", headers)
    with pytest.raises(SignatureError) as wrong:
        verify(b"{}", headers, secrets=[new_webhook_secret()])
    for exc in (info.value, wrong.value):
        assert SECRET.removeprefix("whsec_") not in str(exc)
    with pytest.raises(ValueError, match="at least one"):
        sign("m", ts, b"{}", secrets=[])
