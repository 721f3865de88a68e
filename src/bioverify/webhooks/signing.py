"""Standard Webhooks signatures: ``v1`` (HMAC-SHA256) and ``v1a`` (Ed25519).

The signed content is ``{webhook-id}.{webhook-timestamp}.{body}``; the
``webhook-signature`` header holds space-separated ``version,base64`` pairs, so a
secret rotation simply sends one ``v1`` per live secret and receivers accept any.
Spec: https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets as _secrets
import time
from collections.abc import Mapping, Sequence

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from bioverify import errors

SECRET_PREFIX = "whsec_"  # noqa: S105 -- the spec's prefix, not a secret
DEFAULT_TOLERANCE = 300
_SECRET_BYTES = 32


class SignatureError(errors.Unauthorized):
    """A webhook's headers or signature do not check out (never says which secret)."""

    default_message = "Webhook signature verification failed"


def new_webhook_secret() -> str:
    """A fresh ``whsec_`` secret: base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(_secrets.token_bytes(_SECRET_BYTES)).decode()


def secret_key(secret: str) -> bytes:
    """The HMAC key bytes of a ``whsec_`` secret (the prefix is optional)."""
    raw = secret.removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(raw + "=" * (-len(raw) % 4), validate=True)
    except binascii.Error as exc:
        raise ValueError("webhook secret is not base64 after the whsec_ prefix") from exc
    if not key:
        raise ValueError("webhook secret is empty")
    return key


def signed_content(msg_id: str, timestamp: int | str, body: bytes) -> bytes:
    """The exact bytes both signature versions cover (the timestamp as sent)."""
    return f"{msg_id}.{timestamp}.".encode() + body


def _hmac(secret: str, content: bytes) -> bytes:
    return hmac.new(secret_key(secret), content, hashlib.sha256).digest()


def sign(
    msg_id: str,
    timestamp: int,
    body: bytes,
    *,
    secrets: Sequence[str],
    ed25519_keys: Sequence[Ed25519PrivateKey] = (),
) -> str:
    """The ``webhook-signature`` header value: one ``v1,`` per secret, one ``v1a,`` per key."""
    if not secrets and not ed25519_keys:
        # Fail closed: an unsigned webhook would be accepted by nobody careful.
        raise ValueError("sign() needs at least one secret or Ed25519 key")
    content = signed_content(msg_id, timestamp, body)
    parts = [f"v1,{base64.b64encode(_hmac(s, content)).decode()}" for s in secrets]
    parts += [f"v1a,{base64.b64encode(k.sign(content)).decode()}" for k in ed25519_keys]
    return " ".join(parts)


def _parse_signatures(header: str) -> list[tuple[str, bytes]]:
    out: list[tuple[str, bytes]] = []
    for item in header.split(" "):
        if not item:
            continue
        version, sep, value = item.partition(",")
        if not sep:
            raise SignatureError("Malformed webhook-signature header")
        try:
            out.append((version, base64.b64decode(value, validate=True)))
        except binascii.Error as exc:
            raise SignatureError("Malformed webhook-signature header") from exc
    return out


def _check_timestamp(raw: str, tolerance: int, now: float) -> None:
    try:
        timestamp = int(raw)
    except ValueError as exc:
        raise SignatureError("Malformed webhook-timestamp header") from exc
    if timestamp < now - tolerance:
        raise SignatureError("Webhook timestamp too old")
    if timestamp > now + tolerance:
        raise SignatureError("Webhook timestamp too new")


def verify(
    body: bytes,
    headers: Mapping[str, str],
    *,
    secrets: Sequence[str] = (),
    public_keys: Sequence[Ed25519PublicKey] = (),
    tolerance: int = DEFAULT_TOLERANCE,
    now: float | None = None,
) -> None:
    """Check a received webhook; raise :class:`SignatureError` unless one signature matches.

    ``now`` is epoch seconds (defaults to the wall clock). Fails closed when no secret
    and no public key is given.
    """
    lower = {k.lower(): v for k, v in headers.items()}
    msg_id = lower.get("webhook-id")
    raw_ts = lower.get("webhook-timestamp")
    raw_sig = lower.get("webhook-signature")
    if not (msg_id and raw_ts and raw_sig):
        raise SignatureError("Missing webhook-id, webhook-timestamp or webhook-signature")
    if not secrets and not public_keys:
        raise SignatureError("No webhook secret or public key to verify with")
    _check_timestamp(raw_ts, tolerance, time.time() if now is None else now)
    content = signed_content(msg_id, raw_ts, body)
    expected = [_hmac(s, content) for s in secrets]
    for version, sig in _parse_signatures(raw_sig):
        if version == "v1":
            # Compare against every secret (no early exit) so timing says nothing.
            matched = False
            for candidate in expected:
                matched |= hmac.compare_digest(candidate, sig)
            if matched:
                return
        elif version == "v1a":
            for key in public_keys:
                try:
                    key.verify(sig, content)
                except InvalidSignature:
                    continue
                return
    raise SignatureError("No matching webhook signature")


__all__ = [
    "DEFAULT_TOLERANCE",
    "SECRET_PREFIX",
    "SignatureError",
    "new_webhook_secret",
    "secret_key",
    "sign",
    "signed_content",
    "verify",
]
