"""Verify a received webhook (Standard Webhooks ``v1`` HMAC-SHA256 and ``v1a`` Ed25519).

The receiving side of the service's signatures, written independently of the
server's signing code: the signed content is ``{webhook-id}.{webhook-timestamp}.{body}``
over the RAW body bytes (re-serialised JSON would not match), and
``webhook-signature`` holds space-separated ``version,base64`` pairs, any of which
may match (secret rotation sends one ``v1`` per live secret).
Spec: https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Mapping, Sequence
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from bioverify_client._audit import AuditFormatError, ed25519_keys
from bioverify_client.errors import WebhookVerificationError

SECRET_PREFIX = "whsec_"  # noqa: S105 - the spec's prefix, not a secret
DEFAULT_TOLERANCE = 300
#: More signatures than this in one header is not a rotation, it is an attack on CPU.
MAX_SIGNATURES = 16

WebhookKeys = str | Sequence[str] | Mapping[str, Any]


def hmac_key(secret: str) -> bytes:
    """The HMAC key bytes of a ``whsec_`` secret (the prefix is optional)."""
    raw = secret.removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(raw + "=" * (-len(raw) % 4), validate=True)
    except binascii.Error as exc:
        raise ValueError("the webhook secret is not base64 after its whsec_ prefix") from exc
    if not key:
        raise ValueError("the webhook secret is empty")
    return key


def _keys(secret_or_jwks: WebhookKeys) -> tuple[list[bytes], list[Ed25519PublicKey]]:
    """HMAC keys (from ``whsec_`` secrets) and Ed25519 keys (from a JWKS)."""
    if isinstance(secret_or_jwks, str):
        return [hmac_key(secret_or_jwks)], []
    if isinstance(secret_or_jwks, Mapping):
        try:
            return [], ed25519_keys(secret_or_jwks)
        except AuditFormatError as exc:
            raise ValueError(f"unusable JWKS: {exc}") from exc
    secrets = [hmac_key(s) for s in secret_or_jwks]
    if not secrets:
        # Fail closed: verifying against nothing must never pass.
        raise ValueError("give at least one webhook secret or a JWKS")
    return secrets, []


def _signatures(header: str) -> list[tuple[str, bytes]]:
    out: list[tuple[str, bytes]] = []
    for item in header.split(" ")[:MAX_SIGNATURES]:
        version, sep, value = item.partition(",")
        if not sep:
            continue
        try:
            out.append((version, base64.b64decode(value, validate=True)))
        except ValueError:
            # binascii.Error, or a non-ASCII value (headers decode as Latin-1): one
            # malformed entry must not hide a valid one next to it.
            continue
    return out


def _check_time(raw: str, tolerance: int, now: float) -> None:
    if not raw.isdigit():
        raise WebhookVerificationError("Malformed webhook-timestamp header")
    if abs(now - int(raw)) > tolerance:
        raise WebhookVerificationError("Webhook timestamp outside the tolerance window")


def _matches(
    content: bytes,
    signatures: list[tuple[str, bytes]],
    hmac_keys: list[bytes],
    public_keys: list[Ed25519PublicKey],
) -> bool:
    expected = [hmac.new(k, content, hashlib.sha256).digest() for k in hmac_keys]
    matched = False
    for version, signature in signatures:
        if version == "v1":
            # Compare against every secret, no early exit: timing says nothing.
            for candidate in expected:
                matched |= hmac.compare_digest(candidate, signature)
        elif version == "v1a":
            for key in public_keys:
                try:
                    key.verify(signature, content)
                except InvalidSignature:
                    continue
                matched = True
    return matched


def check_signature(
    body: bytes,
    headers: Mapping[str, str],
    *,
    hmac_keys: Sequence[bytes],
    public_keys: Sequence[Ed25519PublicKey],
    tolerance: int = DEFAULT_TOLERANCE,
    now: float | None = None,
) -> None:
    """Raise :class:`WebhookVerificationError` unless the headers carry a fresh signature
    of ``body`` by one of the keys (the one check behind :func:`verify_webhook`)."""
    lower = {k.lower(): v for k, v in headers.items()}
    msg_id = lower.get("webhook-id", "")
    raw_ts = lower.get("webhook-timestamp", "")
    raw_sig = lower.get("webhook-signature", "")
    if not (msg_id and raw_ts and raw_sig):
        raise WebhookVerificationError(
            "Missing webhook-id, webhook-timestamp or webhook-signature header"
        )
    _check_time(raw_ts, tolerance, time.time() if now is None else now)
    content = f"{msg_id}.{raw_ts}.".encode() + bytes(body)
    if not _matches(content, _signatures(raw_sig), list(hmac_keys), list(public_keys)):
        raise WebhookVerificationError("No matching webhook signature")


def verify_webhook(
    body: bytes,
    headers: Mapping[str, str],
    secret_or_jwks: WebhookKeys,
    *,
    tolerance: int = DEFAULT_TOLERANCE,
    now: float | None = None,
) -> dict[str, Any]:
    """Check a received webhook and return its parsed JSON payload.

    ``body`` is the raw request body. ``secret_or_jwks`` is the client's ``whsec_``
    webhook secret (``v1``), several secrets during a rotation, or the service's
    JWKS from ``/.well-known/jwks.json`` (``v1a``). ``now`` is epoch seconds (the
    wall clock by default). Raises :class:`WebhookVerificationError` on any failure:
    missing headers, a timestamp more than ``tolerance`` seconds away, no matching
    signature, or a body that is not a JSON object.
    """
    if not isinstance(body, bytes | bytearray | memoryview):
        raise TypeError("verify_webhook needs the raw body as bytes, not parsed JSON")
    hmac_keys, public_keys = _keys(secret_or_jwks)
    check_signature(
        body, headers, hmac_keys=hmac_keys, public_keys=public_keys, tolerance=tolerance, now=now
    )
    try:
        payload = json.loads(bytes(body))
    except (ValueError, UnicodeDecodeError) as exc:
        raise WebhookVerificationError("The webhook body is not JSON") from exc
    if not isinstance(payload, dict):
        raise WebhookVerificationError("The webhook body is not a JSON object")
    return payload


__all__ = [
    "DEFAULT_TOLERANCE",
    "SECRET_PREFIX",
    "WebhookKeys",
    "check_signature",
    "hmac_key",
    "verify_webhook",
]
