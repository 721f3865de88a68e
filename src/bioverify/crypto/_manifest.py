"""The on-disk key ring: a manifest of key ids plus one file per private key.

Layout of ``keys_dir`` (0700, every file 0600)::

    keyring.json            {"version": 1, "capture": [...], "signing": [...]}
    capture-<kid>.pem       RSA-3072 private key, PKCS#8
    signing-<kid>.pem       Ed25519 private key, PKCS#8 (current key only)
    hash.key                32 random bytes for keyed hashes of identifiers
    master.key              base64 of the 32-byte master key, unless the environment has it
    .lock                   flock target for creation and rotation

A key file is always written before the manifest names it, and the manifest is
replaced atomically, so a reader holding the shared lock sees a consistent ring.
Private keys are stored unencrypted (protected by file modes) so that the
``keys rotate`` command works without the master key.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from bioverify.crypto import _b64, _files
from bioverify.crypto._files import KeyRingError

Kind = Literal["capture", "signing"]

MANIFEST_NAME = "keyring.json"
HASH_KEY_NAME = "hash.key"
MASTER_KEY_NAME = "master.key"
RSA_BITS = 3072
_VERSION = 1


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """Public facts about one key; never holds private material."""

    kind: Kind
    kid: str
    created_at: dt.datetime
    retired_at: dt.datetime | None = None
    usable_until: dt.datetime | None = None
    #: Signing keys only: the raw Ed25519 public key, base64url (kept after the
    #: private key is destroyed, so old checkpoints stay verifiable).
    x: str | None = None

    @property
    def file_name(self) -> str:
        return f"{self.kind}-{self.kid}.pem"

    def is_usable(self, now: dt.datetime) -> bool:
        """True for the current key and for retired keys still in their grace period."""
        return self.usable_until is None or now < self.usable_until


@dataclass(frozen=True, slots=True)
class Manifest:
    """Every key of the ring, the current one of each kind first."""

    capture: tuple[KeyInfo, ...]
    signing: tuple[KeyInfo, ...]

    def keys(self, kind: Kind) -> tuple[KeyInfo, ...]:
        return self.capture if kind == "capture" else self.signing

    def current(self, kind: Kind) -> KeyInfo:
        return self.keys(kind)[0]

    def with_keys(self, kind: Kind, keys: tuple[KeyInfo, ...]) -> Manifest:
        return replace(self, **{kind: keys})


# ------------------------------------------------------------------ manifest (de)serialisation


def _time(value: dt.datetime | None) -> str | None:
    return None if value is None else value.astimezone(dt.UTC).isoformat()


def _parse_time(value: object) -> dt.datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError("time is not a string")
    parsed = dt.datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError("time has no zone")
    return parsed


def _info_from_json(kind: Kind, raw: object) -> KeyInfo:
    if not isinstance(raw, Mapping):
        raise ValueError("key entry is not an object")
    kid, x = raw.get("kid"), raw.get("x")
    if not isinstance(kid, str) or not kid:
        raise ValueError("key entry has no kid")
    if kind == "signing" and not isinstance(x, str):
        raise ValueError("signing key entry has no x")
    created = _parse_time(raw.get("created_at"))
    if created is None:
        raise ValueError("key entry has no created_at")
    return KeyInfo(
        kind=kind,
        kid=kid,
        created_at=created,
        retired_at=_parse_time(raw.get("retired_at")),
        usable_until=_parse_time(raw.get("usable_until")),
        x=x if isinstance(x, str) else None,
    )


def _info_to_json(info: KeyInfo) -> dict[str, object]:
    out: dict[str, object] = {
        "kid": info.kid,
        "created_at": _time(info.created_at),
        "retired_at": _time(info.retired_at),
        "usable_until": _time(info.usable_until),
    }
    if info.x is not None:
        out["x"] = info.x
    return out


def read_manifest(keys_dir: Path) -> Manifest | None:
    """The manifest of ``keys_dir``, or None when no ring was created there yet."""
    path = keys_dir / MANIFEST_NAME
    if not path.exists():
        return None
    raw = _files.read_secret(path)
    try:
        doc = json.loads(raw)
        if not isinstance(doc, dict) or doc.get("version") != _VERSION:
            raise ValueError(f"unsupported manifest version (expected {_VERSION})")
        capture = tuple(_info_from_json("capture", item) for item in doc["capture"])
        signing = tuple(_info_from_json("signing", item) for item in doc["signing"])
        for keys in (capture, signing):
            if (
                not keys
                or keys[0].retired_at is not None
                or any(k.retired_at is None for k in keys[1:])
            ):
                raise ValueError("each kind needs exactly one current key, listed first")
    except (ValueError, KeyError, TypeError) as exc:
        raise KeyRingError(f"key manifest {path} is corrupt: {exc}") from exc
    return Manifest(capture=capture, signing=signing)


def write_manifest(keys_dir: Path, manifest: Manifest) -> None:
    doc = {
        "version": _VERSION,
        "capture": [_info_to_json(k) for k in manifest.capture],
        "signing": [_info_to_json(k) for k in manifest.signing],
    }
    _files.write_atomic(keys_dir / MANIFEST_NAME, json.dumps(doc, indent=2).encode("utf-8") + b"\n")


# ------------------------------------------------------------------ key files


def new_kid() -> str:
    """A short random url-safe key id (72 bits)."""
    return secrets.token_urlsafe(9)


def _pkcs8(key: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def generate_key(keys_dir: Path, kind: Kind, now: dt.datetime) -> KeyInfo:
    """Generate a key of ``kind``, write its file, and return its (current) entry."""
    info = KeyInfo(kind=kind, kid=new_kid(), created_at=now)
    if kind == "capture":
        _files.write_atomic(
            keys_dir / info.file_name, _pkcs8(rsa.generate_private_key(65537, RSA_BITS))
        )
        return info
    key = ed25519.Ed25519PrivateKey.generate()
    _files.write_atomic(keys_dir / info.file_name, _pkcs8(key))
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return replace(info, x=_b64.encode_url(raw))


def _load_pem(keys_dir: Path, info: KeyInfo) -> object:
    path = keys_dir / info.file_name
    try:
        return serialization.load_pem_private_key(_files.read_secret(path), password=None)
    except (ValueError, TypeError) as exc:
        raise KeyRingError(f"key file {path} is not a readable PKCS#8 private key") from exc


def load_capture_key(keys_dir: Path, info: KeyInfo) -> rsa.RSAPrivateKey:
    """Load the RSA private key file of capture key ``info``."""
    key = _load_pem(keys_dir, info)
    if info.kind != "capture" or not isinstance(key, rsa.RSAPrivateKey):
        raise KeyRingError(f"key file {keys_dir / info.file_name} does not hold an RSA key")
    return key


def load_signing_key(keys_dir: Path, info: KeyInfo) -> ed25519.Ed25519PrivateKey:
    """Load the Ed25519 private key file of signing key ``info``."""
    key = _load_pem(keys_dir, info)
    if info.kind != "signing" or not isinstance(key, ed25519.Ed25519PrivateKey):
        raise KeyRingError(f"key file {keys_dir / info.file_name} does not hold an Ed25519 key")
    return key


def read_or_create_random(keys_dir: Path, name: str, *, size: int = 32) -> bytes:
    """A random secret stored base64 in ``name`` (created on first use; caller holds the lock)."""
    path = keys_dir / name
    if not path.exists():
        _files.write_atomic(path, _b64.encode_std(secrets.token_bytes(size)).encode() + b"\n")
    try:
        secret = _b64.decode_std(_files.read_secret(path).decode("ascii").strip())
    except (UnicodeDecodeError, ValueError) as exc:
        raise KeyRingError(f"key file {path} must hold standard base64") from exc
    if len(secret) != size:
        raise KeyRingError(f"key file {path} must hold exactly {size} bytes")
    return secret


# ------------------------------------------------------------------ creation and rotation


def create(keys_dir: Path, now: dt.datetime) -> Manifest:
    """Create the ring's keys unless present (caller holds the exclusive lock)."""
    existing = read_manifest(keys_dir)
    if existing is not None:
        return existing
    manifest = Manifest(
        capture=(generate_key(keys_dir, "capture", now),),
        signing=(generate_key(keys_dir, "signing", now),),
    )
    write_manifest(keys_dir, manifest)
    return manifest


def rotate(keys_dir: Path, kind: Kind, *, grace: dt.timedelta, now: dt.datetime) -> tuple[str, str]:
    """Retire the current key of ``kind`` and make a new one; return (old kid, new kid).

    The caller holds the exclusive lock. Capture keys whose grace has ended are
    deleted with their files; a retired signing key's private file is deleted at
    once (nothing signs with it again) while its public key stays in the manifest.
    """
    if grace < dt.timedelta(0):
        raise ValueError("grace must not be negative")
    manifest = read_manifest(keys_dir)
    if manifest is None:
        raise KeyRingError(f"no key ring in {keys_dir}: start the service once to create it")
    old = manifest.current(kind)
    retired = replace(old, retired_at=now, usable_until=now + grace)
    fresh = generate_key(keys_dir, kind, now)
    others = manifest.keys(kind)[1:]
    doomed: list[KeyInfo] = []
    if kind == "capture":
        doomed = [k for k in (retired, *others) if not k.is_usable(now)]
        kept = tuple(k for k in (retired, *others) if k.is_usable(now))
    else:
        doomed = [retired]
        kept = (retired, *others)
    write_manifest(keys_dir, manifest.with_keys(kind, (fresh, *kept)))
    # Only after the manifest stops naming them, so no reader looks for a missing file.
    for info in doomed:
        _files.remove(keys_dir / info.file_name)
    return old.kid, fresh.kid
