"""Capture tokens: the credential in ``launchUrl``.

A token is ``cs_<session ref>.<secret>``: the reference (the session id's 16 bytes,
base64url) finds the session, and the 256-bit secret proves the bearer was given
the link. Only SHA-256 of the secret is stored. Knowing the reference without the
secret lets a caller name a live session but not act on it (that is -14).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import uuid

PREFIX = "cs_"


def issue(session_id: str) -> tuple[str, bytes]:
    """A fresh token for ``session_id`` and the hash to store."""
    ref = base64.urlsafe_b64encode(uuid.UUID(session_id).bytes).rstrip(b"=").decode()
    secret = secrets.token_urlsafe(32)
    return f"{PREFIX}{ref}.{secret}", hash_secret(secret)


def hash_secret(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def parse(token: str) -> tuple[str, str] | None:
    """``(session_id, secret)`` of a well-formed token, else ``None``."""
    if not token.startswith(PREFIX) or len(token) > 200:
        return None
    ref, sep, secret = token[len(PREFIX) :].partition(".")
    if not sep or not secret:
        return None
    try:
        raw = base64.urlsafe_b64decode(ref + "=" * (-len(ref) % 4))
        return str(uuid.UUID(bytes=raw)), secret
    except (ValueError, binascii.Error):
        return None


def secret_matches(secret: str, stored_hash: bytes) -> bool:
    return hmac.compare_digest(hash_secret(secret), stored_hash)


def looks_like_uuid(value: str) -> bool:
    try:
        return str(uuid.UUID(value)) == value.lower()
    except ValueError:
        return False


__all__ = ["issue", "looks_like_uuid", "parse", "secret_matches"]
