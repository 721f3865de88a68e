"""Integrator ``callback.headers`` at rest: sealed like webhook secrets.

They usually carry credentials for the integrator's endpoint (``Authorization``),
so the session row and the outbox hold only a sealed blob (AES-256-GCM under the
master key, bound to the client id); the dispatcher opens it just before sending.
Rows written before sealing existed (a plain ``{name: value}``) still open as is.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Final, Protocol

#: The one key of a stored, sealed header map.
SEALED_KEY: Final = "sealed"
#: The sealer's purpose: a sealed header map never opens as any other secret.
PURPOSE: Final = "callback-headers"


class Sealer(Protocol):
    def seal(self, client_id: str, secret: str) -> str: ...

    def open(self, client_id: str, sealed: str) -> str: ...


def seal_headers(sealer: Sealer, client_id: str, headers: Mapping[str, str]) -> dict[str, str]:
    """What to store for ``headers``: ``{"sealed": "<blob>"}`` (empty stays empty)."""
    if not headers:
        return {}
    return {SEALED_KEY: sealer.seal(client_id, json.dumps(dict(headers)))}


def open_headers(sealer: Sealer, client_id: str, stored: Mapping[str, str]) -> dict[str, str]:
    """The headers to send, from what :func:`seal_headers` stored (or a legacy map)."""
    if set(stored) != {SEALED_KEY}:
        return dict(stored)
    opened = json.loads(sealer.open(client_id, stored[SEALED_KEY]))
    return {str(k): str(v) for k, v in opened.items()}


__all__ = ["PURPOSE", "SEALED_KEY", "open_headers", "seal_headers"]
