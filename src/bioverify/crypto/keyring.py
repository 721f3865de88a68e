"""The service's keys: capture (RSA-OAEP), signing (Ed25519), master and hash keys.

``KeyRing.load_or_create(keys_dir)`` opens (or, first time, creates) the ring kept in
``keys_dir`` (layout in :mod:`bioverify.crypto._manifest`). Retired keys keep
working until ``retired_at + grace``; after that an envelope naming them is
refused like any unknown key id. Other processes may rotate the ring at any time;
``reload_if_changed()`` picks their changes up.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives import hmac as crypto_hmac
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from bioverify import errors
from bioverify.crypto import _b64, _files, _manifest
from bioverify.crypto._files import KeyRingError
from bioverify.crypto._manifest import KeyInfo, Manifest

Clock = Callable[[], dt.datetime]

ENVELOPE_ALG: Final = "RSA-OAEP-256+A256GCM"
MASTER_KEY_ENV: Final = "BIOVERIFY_MASTER_KEY"
_WRAP_VERSION: Final = b"\x01"
_WRAP_NONCE_BYTES: Final = 12
_PURPOSE = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class UnknownKeyId(errors.BadRequest):
    """A key id the ring does not know, or whose grace period has ended."""

    default_message = "unknown kid: fetch /public-key and encrypt again"


@dataclass(frozen=True, slots=True)
class SigningKey:
    """The current Ed25519 signing key and its id (the private half never prints)."""

    kid: str
    private_key: ed25519.Ed25519PrivateKey = field(repr=False)

    def sign(self, message: bytes) -> bytes:
        """An Ed25519 signature of ``message`` (64 bytes)."""
        return self.private_key.sign(message)

    def public_key(self) -> ed25519.Ed25519PublicKey:
        """The public half, for verifying."""
        return self.private_key.public_key()

    def public_bytes(self) -> bytes:
        """The raw 32-byte public key (the JWK ``x``)."""
        return self.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )


@dataclass(frozen=True, slots=True)
class _State:
    """One consistent view of the ring, swapped whole on reload."""

    manifest: Manifest
    capture_keys: dict[str, rsa.RSAPrivateKey]
    signing: SigningKey
    stamp: tuple[int, int, int]


def _decode_master_key(master_key_b64: str) -> bytes:
    try:
        key = _b64.decode_std(master_key_b64.strip())
    except ValueError as exc:
        raise KeyRingError(
            f"{MASTER_KEY_ENV} must be standard base64 (RFC 4648) of 32 random bytes"
        ) from exc
    if len(key) != 32:
        raise KeyRingError(f"{MASTER_KEY_ENV} must decode to exactly 32 bytes, not {len(key)}")
    return key


class KeyRing:
    """All key material of one service instance; see the module docstring."""

    def __init__(self, keys_dir: Path, *, master_key: bytes, hash_key: bytes, clock: Clock) -> None:
        """Use :meth:`load_or_create`; this constructor expects already-checked secrets."""
        self._dir = keys_dir
        self._master = AESGCM(master_key)
        self._hash_key = hash_key
        self._clock = clock
        self._lock = threading.Lock()
        self._state = self._read_state()

    @classmethod
    def load_or_create(
        cls, keys_dir: Path, *, master_key_b64: str | None = None, clock: Clock = _utcnow
    ) -> KeyRing:
        """Open the ring in ``keys_dir``, creating missing keys (safe across processes).

        ``master_key_b64`` is ``BIOVERIFY_MASTER_KEY``; without it the master key is
        generated into ``keys_dir/master.key`` on first start.
        """
        master = None if master_key_b64 is None else _decode_master_key(master_key_b64)
        _files.ensure_dir(keys_dir)
        with _files.locked(keys_dir, exclusive=True):
            _manifest.create(keys_dir, clock())
            hash_key = _manifest.read_or_create_random(keys_dir, _manifest.HASH_KEY_NAME)
            if master is None:
                master = _manifest.read_or_create_random(keys_dir, _manifest.MASTER_KEY_NAME)
        return cls(keys_dir, master_key=master, hash_key=hash_key, clock=clock)

    def __repr__(self) -> str:
        state = self._state
        return (
            f"KeyRing(dir={str(self._dir)!r}, capture_kid={self.current_capture_kid!r}, "
            f"signing_kid={state.signing.kid!r})"
        )

    # ------------------------------------------------------------------ loading

    def _stamp(self) -> tuple[int, int, int]:
        path = self._dir / _manifest.MANIFEST_NAME
        try:
            info = path.stat()
        except OSError as exc:
            raise KeyRingError(f"key manifest {path} cannot be read: {exc.strerror}") from exc
        return (info.st_ino, info.st_mtime_ns, info.st_size)

    def _read_state(self, previous: _State | None = None) -> _State:
        now = self._clock()
        with _files.locked(self._dir, exclusive=False):
            stamp = self._stamp()
            manifest = _manifest.read_manifest(self._dir)
            if manifest is None:
                raise KeyRingError(f"no key ring in {self._dir}")
            # A kid always names the same key, so keys already loaded are reused (loading
            # an RSA key runs its consistency check, ~0.2 s).
            known = previous.capture_keys if previous else {}
            capture: dict[str, rsa.RSAPrivateKey] = {}
            for info in manifest.capture:
                if info.is_usable(now):
                    capture[info.kid] = known.get(info.kid) or _manifest.load_capture_key(
                        self._dir, info
                    )
            current = manifest.current("signing")
            if previous and previous.signing.kid == current.kid:
                signing = previous.signing
            else:
                signing = SigningKey(current.kid, _manifest.load_signing_key(self._dir, current))
        return _State(manifest=manifest, capture_keys=capture, signing=signing, stamp=stamp)

    def reload_if_changed(self) -> bool:
        """Re-read the ring if another process rotated it; True when it did.

        Cheap (one ``stat``), so the service may call it before each use or on a timer.
        On an unreadable ring it raises :class:`KeyRingError` and keeps the old keys.
        """
        if self._stamp() == self._state.stamp:
            return False
        with self._lock:
            if self._stamp() == self._state.stamp:
                return False
            self._state = self._read_state(self._state)
        return True

    # ------------------------------------------------------------------ capture keys

    @property
    def current_capture_kid(self) -> str:
        """The kid clients should encrypt to (the one ``/public-key`` serves)."""
        return self._state.manifest.current("capture").kid

    def _usable_info(self, kind: _manifest.Kind, kid: str) -> KeyInfo:
        now = self._clock()
        for info in self._state.manifest.keys(kind):
            if info.kid == kid and info.is_usable(now):
                return info
        raise UnknownKeyId()

    def capture_private_key(self, kid: str) -> rsa.RSAPrivateKey:
        """The capture key named ``kid``; :class:`UnknownKeyId` if unknown or past its grace."""
        info = self._usable_info("capture", kid)
        key = self._state.capture_keys.get(info.kid)
        if key is None:  # retired before this process loaded it (cannot be usable now)
            raise UnknownKeyId()
        return key

    def public_key_document(self) -> dict[str, str]:
        """The ``GET /public-key`` body for the current capture key."""
        kid = self.current_capture_kid
        pem = (
            self._state.capture_keys[kid]
            .public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        return {"kid": kid, "alg": ENVELOPE_ALG, "publicKey": pem.decode("ascii")}

    def rotate_capture_key(self, grace: dt.timedelta) -> str:
        """Make a new current capture key; the old one decrypts until now + ``grace``."""
        return self._rotate("capture", grace)

    # ------------------------------------------------------------------ signing keys

    def signing_key(self) -> SigningKey:
        """The current signing key (webhook ``v1a`` signatures, audit checkpoints)."""
        return self._state.signing

    def signing_public_key(self, kid: str) -> ed25519.Ed25519PublicKey:
        """The public key of any signing key this ring ever had (to verify old checkpoints)."""
        for info in self._state.manifest.signing:
            if info.kid == kid and info.x is not None:
                return ed25519.Ed25519PublicKey.from_public_bytes(_b64.decode_url(info.x))
        raise UnknownKeyId("unknown signing key id")

    def all_signing_public_keys(self) -> list[ed25519.Ed25519PublicKey]:
        """Every signing key this ring ever had, current first (audit verification)."""
        keys = [self.signing_key().public_key()]
        for info in self._state.manifest.signing:
            if info.x is not None and info.kid != self.signing_key().kid:
                keys.append(ed25519.Ed25519PublicKey.from_public_bytes(_b64.decode_url(info.x)))
        return keys

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        """The ``/.well-known/jwks.json`` body: current and in-grace signing keys."""
        now = self._clock()
        return {
            "keys": [
                {
                    "kty": "OKP",
                    "crv": "Ed25519",
                    "x": info.x,
                    "kid": info.kid,
                    "use": "sig",
                    "alg": "EdDSA",
                }
                for info in self._state.manifest.signing
                if info.x is not None and info.is_usable(now)
            ]
        }

    def rotate_signing_key(self, grace: dt.timedelta) -> str:
        """Make a new current signing key; the old one stays in the JWKS until now + ``grace``."""
        return self._rotate("signing", grace)

    def _rotate(self, kind: _manifest.Kind, grace: dt.timedelta) -> str:
        with self._lock:
            with _files.locked(self._dir, exclusive=True):
                _old, new = _manifest.rotate(self._dir, kind, grace=grace, now=self._clock())
            self._state = self._read_state(self._state)
        return new

    # ------------------------------------------------------------------ symmetric secrets

    def keyed_hash(self, value: str, purpose: str) -> str:
        """HMAC-SHA256 (hex) of ``value`` under the ring's hash key, separated by ``purpose``.

        Used for identifiers in the audit log: stable, not reversible without the key.
        """
        if not _PURPOSE.fullmatch(purpose):
            raise ValueError("purpose must be a short lowercase label like 'customer-id'")
        mac = crypto_hmac.HMAC(self._hash_key, hashes.SHA256())
        # Length-prefixed purpose: no (purpose, value) pair collides with another.
        mac.update(b"bioverify:keyed-hash:v1:%d:%s:" % (len(purpose), purpose.encode()))
        mac.update(value.encode("utf-8"))
        return mac.finalize().hex()

    def wrap_key(self, key: bytes, *, aad: bytes) -> bytes:
        """Encrypt a data key under the master key (AES-256-GCM, ``aad`` bound)."""
        nonce = secrets.token_bytes(_WRAP_NONCE_BYTES)
        return _WRAP_VERSION + nonce + self._master.encrypt(nonce, key, _wrap_aad(aad))

    def unwrap_key(self, wrapped: bytes, *, aad: bytes) -> bytes:
        """Reverse :meth:`wrap_key`; :class:`KeyRingError` if it does not authenticate."""
        head = len(_WRAP_VERSION) + _WRAP_NONCE_BYTES
        if len(wrapped) <= head or wrapped[:1] != _WRAP_VERSION:
            raise KeyRingError("a wrapped data key has an unknown format")
        try:
            return self._master.decrypt(wrapped[1:head], wrapped[head:], _wrap_aad(aad))
        except InvalidTag as exc:
            raise KeyRingError(
                "a wrapped data key does not authenticate under the master "
                f"key (was {MASTER_KEY_ENV} changed?)"
            ) from exc


def _wrap_aad(aad: bytes) -> bytes:
    return b"bioverify:data-key-wrap:v1:" + aad


__all__ = ["ENVELOPE_ALG", "KeyRing", "KeyRingError", "SigningKey", "UnknownKeyId"]
