"""Public keys: the capture encryption key and the Ed25519 JWKS."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from bioverify.api.deps import services
from bioverify.crypto.keyring import KeyRing

router = APIRouter(tags=["keys"])


def keyring(request: Request) -> KeyRing:
    return services(request).need_keyring()


@router.get("/public-key", summary="The RSA key capture clients encrypt to")
async def public_key(request: Request) -> dict[str, str]:
    return keyring(request).public_key_document()


@router.get("/.well-known/jwks.json", summary="Ed25519 keys that sign webhooks and checkpoints")
async def jwks(request: Request) -> dict[str, Any]:
    return dict(keyring(request).jwks())


__all__ = ["router"]
