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


class KeyRingSealer:
    """Seals with the key ring's master key; ``purpose`` keeps uses apart."""

    def __init__(self, keyring: KeyRing, purpose: str = "webhook-secret") -> None:
        self._keyring = keyring
        self._purpose = purpose

    def _aad(self, client_id: str) -> bytes:
        return f"{self._purpose}:{client_id}".encode()

    def seal(self, client_id: str, secret: str) -> str:
        wrapped = self._keyring.wrap_key(secret.encode(), aad=self._aad(client_id))
        return _PREFIX + base64.b64encode(wrapped).decode("ascii")

    def open(self, client_id: str, sealed: str) -> str:
        if not sealed.startswith(_PREFIX):
            raise ValueError(f"stored {self._purpose} is not sealed")
        raw = base64.b64decode(sealed[len(_PREFIX) :])
        return self._keyring.unwrap_key(raw, aad=self._aad(client_id)).decode()


__all__ = ["KeyRingSealer", "SecretSealer"]
