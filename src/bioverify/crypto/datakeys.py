"""Per-tenant data keys and the cipher that protects templates (and kept portraits).

Each tenant has AES-256 data keys, stored only wrapped by the master key (AES-GCM
with the tenant id as AAD, so a wrapped key moved to another tenant does not
unwrap). :class:`TemplateCipher` encrypts with the tenant's current key and
decrypts with whichever key a blob names, so adding a key never strands old data.

Blob layout (self-describing)::

    version (1 byte = 1) | key id length (1 byte) | key id (ASCII) | nonce (12) | ciphertext+tag

The AEAD's AAD covers the header, the tenant id and the caller's ``aad`` (e.g. the
customer id), so a blob swapped between tenants, customers or key ids fails.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from typing import Final, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from bioverify import errors
from bioverify.crypto._files import KeyRingError
from bioverify.crypto._manifest import new_kid
from bioverify.crypto.keyring import KeyRing

_VERSION: Final = 1
_NONCE_BYTES: Final = 12
_KEY_BYTES: Final = 32


class TemplateDecryptError(errors.InternalError):
    """A stored blob does not decrypt: tampered, truncated, or its key is gone."""

    crypto_failure: Final = True

    def __init__(self, message: str = "stored biometric data does not decrypt") -> None:
        super().__init__(message)


class DataKeyStore(Protocol):
    """Where wrapped data keys live (the SQL store in production, memory in tests)."""

    def get_wrapped(self, tenant_id: str) -> list[tuple[str, bytes]]:
        """The tenant's ``(key_id, wrapped key)`` pairs, current key first; [] if none."""
        ...

    def put_wrapped(self, tenant_id: str, key_id: str, wrapped: bytes) -> None:
        """Store a new wrapped key; it becomes the tenant's current key."""
        ...


class InMemoryDataKeyStore:
    """A :class:`DataKeyStore` in a dict, for tests of other components."""

    def __init__(self) -> None:
        self._keys: dict[str, list[tuple[str, bytes]]] = {}
        self._lock = threading.Lock()

    def get_wrapped(self, tenant_id: str) -> list[tuple[str, bytes]]:
        with self._lock:
            return list(self._keys.get(tenant_id, ()))

    def put_wrapped(self, tenant_id: str, key_id: str, wrapped: bytes) -> None:
        with self._lock:
            self._keys.setdefault(tenant_id, []).insert(0, (key_id, wrapped))


def customer_scope(client_id: str, customer_id: str) -> str:
    """The key scope of one customer's template: its own data key, destroyed on erase
    (so a copy of the template left anywhere no longer decrypts). Fits the 36
    characters a scope id may have."""
    digest = hashlib.sha256(f"{client_id}\0{customer_id}".encode()).hexdigest()
    return "cu_" + digest[:32]


def key_id_of(blob: bytes) -> str:
    """The data key id a blob names (its header), without decrypting anything."""
    if len(blob) < 2 or blob[0] != _VERSION:
        raise TemplateDecryptError("stored biometric data has an unknown format")
    return blob[2 : 2 + blob[1]].decode("ascii", errors="replace")


def _wrap_aad(tenant_id: str) -> bytes:
    return tenant_id.encode("utf-8")


def _blob_aad(header: bytes, tenant_id: str, aad: bytes) -> bytes:
    tenant = tenant_id.encode("utf-8")
    # Length prefix: the (tenant, aad) split is unambiguous.
    return header + len(tenant).to_bytes(4, "big") + tenant + aad


class TemplateCipher:
    """Encrypts and decrypts per-tenant blobs; unwrapped keys are cached in memory."""

    def __init__(self, keyring: KeyRing, store: DataKeyStore) -> None:
        self._keyring = keyring
        self._store = store
        self._cache: dict[tuple[str, str], AESGCM] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"TemplateCipher(cached_keys={len(self._cache)})"

    def _unwrap(self, tenant_id: str, key_id: str, wrapped: bytes) -> AESGCM:
        cached = self._cache.get((tenant_id, key_id))
        if cached is None:
            try:
                key = self._keyring.unwrap_key(wrapped, aad=_wrap_aad(tenant_id))
            except KeyRingError as exc:
                raise TemplateDecryptError(
                    "a data key does not unwrap under the master key"
                ) from exc
            cached = self._cache[(tenant_id, key_id)] = AESGCM(key)
        return cached

    def _current(self, tenant_id: str) -> tuple[str, AESGCM]:
        wrapped = self._store.get_wrapped(tenant_id)
        if not wrapped:
            with self._lock:  # one new key per tenant from this process
                wrapped = self._store.get_wrapped(tenant_id)
                if not wrapped:
                    self.rotate(tenant_id)
                    wrapped = self._store.get_wrapped(tenant_id)
        key_id, blob = wrapped[0]
        return key_id, self._unwrap(tenant_id, key_id, blob)

    def has_key(self, tenant_id: str, key_id: str) -> bool:
        """True when ``tenant_id`` (the scope) holds ``key_id``."""
        return (tenant_id, key_id) in self._cache or key_id in dict(
            self._store.get_wrapped(tenant_id)
        )

    def forget(self, tenant_id: str) -> None:
        """Drop a destroyed scope's keys from this process's caches."""
        with self._lock:
            for cached in [k for k in self._cache if k[0] == tenant_id]:
                del self._cache[cached]
        forget = getattr(self._store, "forget", None)
        if forget is not None:
            forget(tenant_id)

    def ensure_key(self, tenant_id: str) -> None:
        """Load (or create) the tenant's current key now, outside any transaction."""
        self._current(tenant_id)

    def rotate(self, tenant_id: str) -> str:
        """Give ``tenant_id`` a new current data key; older blobs still decrypt."""
        key_id = new_kid()
        wrapped = self._keyring.wrap_key(secrets.token_bytes(_KEY_BYTES), aad=_wrap_aad(tenant_id))
        self._store.put_wrapped(tenant_id, key_id, wrapped)
        return key_id

    def encrypt(self, tenant_id: str, plaintext: bytes, aad: bytes) -> bytes:
        """Encrypt ``plaintext`` for ``tenant_id``, bound to ``aad``."""
        key_id, aead = self._current(tenant_id)
        kid = key_id.encode("ascii")
        header = bytes([_VERSION, len(kid)]) + kid
        nonce = secrets.token_bytes(_NONCE_BYTES)
        return header + nonce + aead.encrypt(nonce, plaintext, _blob_aad(header, tenant_id, aad))

    def decrypt(self, tenant_id: str, blob: bytes, aad: bytes) -> bytes:
        """Reverse :meth:`encrypt`; :class:`TemplateDecryptError` on any mismatch."""
        if len(blob) < 2 or blob[0] != _VERSION:
            raise TemplateDecryptError("stored biometric data has an unknown format")
        header_len = 2 + blob[1]
        header = blob[:header_len]
        nonce = blob[header_len : header_len + _NONCE_BYTES]
        body = blob[header_len + _NONCE_BYTES :]
        if len(nonce) != _NONCE_BYTES or not body:
            raise TemplateDecryptError("stored biometric data is truncated")
        key_id = header[2:].decode("ascii", errors="replace")
        aead = self._cache.get((tenant_id, key_id))
        if aead is None:
            wrapped = dict(self._store.get_wrapped(tenant_id)).get(key_id)
            refresh = getattr(self._store, "refresh", None)
            if wrapped is None and refresh is not None:
                # Another replica may have added the key since this one cached.
                wrapped = dict(refresh(tenant_id)).get(key_id)
            if wrapped is None:
                raise TemplateDecryptError("stored biometric data names an unknown data key")
            aead = self._unwrap(tenant_id, key_id, wrapped)
        try:
            return aead.decrypt(nonce, body, _blob_aad(header, tenant_id, aad))
        except InvalidTag as exc:
            raise TemplateDecryptError() from exc


__all__ = [
    "DataKeyStore",
    "InMemoryDataKeyStore",
    "TemplateCipher",
    "TemplateDecryptError",
    "customer_scope",
    "key_id_of",
]
