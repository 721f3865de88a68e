"""Webhook secrets at rest: sealed under the master key, opened only to sign.

HMAC signing needs the ``whsec_`` secret itself (a hash will not do), so it is kept
encrypted (AES-256-GCM under the key ring's master key, bound to the client id)
rather than in plain text in the store.
"""

from __future__ import annotations

import base64
from typing import Protocol

from bioverify.crypto.keyring import KeyRing

_PREFIX = "sealed:v1:"


class SecretSealer(Protocol):
    def seal(self, client_id: str, secret: str) -> str: ...

    def open(self, client_id: str, sealed: str) -> str: ...


def _aad(client_id: str) -> bytes:
    return f"webhook-secret:{client_id}".encode()


class KeyRingSealer:
    """Seals with the key ring's master key."""

    def __init__(self, keyring: KeyRing) -> None:
        self._keyring = keyring

    def seal(self, client_id: str, secret: str) -> str:
        wrapped = self._keyring.wrap_key(secret.encode(), aad=_aad(client_id))
        return _PREFIX + base64.b64encode(wrapped).decode("ascii")

    def open(self, client_id: str, sealed: str) -> str:
        if not sealed.startswith(_PREFIX):
            raise ValueError("stored webhook secret is not sealed")
        raw = base64.b64decode(sealed[len(_PREFIX):])
        return self._keyring.unwrap_key(raw, aad=_aad(client_id)).decode()


__all__ = ["KeyRingSealer", "SecretSealer"]
