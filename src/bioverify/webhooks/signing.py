"""Standard Webhooks signatures: ``v1`` (HMAC-SHA256) and ``v1a`` (Ed25519).

The signed content is ``{webhook-id}.{webhook-timestamp}.{body}``; the
``webhook-signature`` header holds space-separated ``version,base64`` pairs, so a
secret rotation simply sends one ``v1`` per live secret and receivers accept any.
Spec: https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import secrets as _secrets
from collections.abc import Mapping, Sequence

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from bioverify import errors
from bioverify.client import webhooks as client_webhooks
from bioverify.client.errors import WebhookVerificationError

SECRET_PREFIX = client_webhooks.SECRET_PREFIX
DEFAULT_TOLERANCE = client_webhooks.DEFAULT_TOLERANCE
_SECRET_BYTES = 32


class SignatureError(errors.Unauthorized):
    """A webhook's headers or signature do not check out (never says which secret)."""

    default_message = "Webhook signature verification failed"


def new_webhook_secret() -> str:
    """A fresh ``whsec_`` secret: base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(_secrets.token_bytes(_SECRET_BYTES)).decode()


def secret_key(secret: str) -> bytes:
    """The HMAC key bytes of a ``whsec_`` secret (the prefix is optional)."""
    return client_webhooks.hmac_key(secret)


@functools.lru_cache(maxsize=1024)
def _signing_key(secret: str) -> bytes:
    # Every webhook of a client is signed with the same few secrets: decode each once.
    return secret_key(secret)


def signed_content(msg_id: str, timestamp: int | str, body: bytes) -> bytes:
    """The exact bytes both signature versions cover (the timestamp as sent)."""
    return f"{msg_id}.{timestamp}.".encode() + body


def _hmac(secret: str, content: bytes) -> bytes:
    return hmac.digest(_signing_key(secret), content, hashlib.sha256)


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
    and no public key is given. The check itself is the client SDK's (one
    implementation, which integrators run on their side).
    """
    if not secrets and not public_keys:
        raise SignatureError("No webhook secret or public key to verify with")
    try:
        client_webhooks.check_signature(
            body,
            headers,
            hmac_keys=[secret_key(s) for s in secrets],
            public_keys=public_keys,
            tolerance=tolerance,
            now=now,
        )
    except WebhookVerificationError as exc:
        raise SignatureError(exc.message) from exc


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
