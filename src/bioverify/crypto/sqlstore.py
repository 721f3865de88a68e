"""The SQL :class:`~bioverify.crypto.datakeys.DataKeyStore` (SQLite or PostgreSQL)."""

from __future__ import annotations

import threading

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bioverify.crypto.models import DataKey
from bioverify.storage.base import utcnow
from bioverify.storage.database import read_transaction, transaction


class SqlDataKeyStore:
    """Wrapped data keys in the ``data_keys`` table, cached per process.

    The cache matters beyond speed: template encryption runs inside a session's
    locked transaction, and on SQLite a second *write* transaction there would wait
    for the first's write lock. Reads therefore use a read transaction; callers
    create the keys they will write with before such a transaction
    (:meth:`TemplateCipher.ensure_key`); a key another replica added later is found
    by :meth:`refresh` when a blob names it.
    """

    def __init__(self, factory: sessionmaker[Session]) -> None:
        self._factory = factory
        self._cache: dict[str, list[tuple[str, bytes]]] = {}
        self._lock = threading.Lock()

    def _load(self, tenant_id: str) -> list[tuple[str, bytes]]:
        # A read transaction: a cache miss inside a capture's locked transaction (a
        # customer's key after a restart) must not wait on that transaction's lock.
        with read_transaction(self._factory) as db:
            rows = db.scalars(
                select(DataKey)
                .where(DataKey.tenant_id == tenant_id)
                .order_by(DataKey.created_at.desc(), DataKey.key_id)
            ).all()
            return [(row.key_id, row.wrapped) for row in rows]

    def get_wrapped(self, tenant_id: str) -> list[tuple[str, bytes]]:
        with self._lock:
            cached = self._cache.get(tenant_id)
        if cached:
            return list(cached)
        return self.refresh(tenant_id)

    def refresh(self, tenant_id: str) -> list[tuple[str, bytes]]:
        """Re-read a tenant's keys from the table."""
        loaded = self._load(tenant_id)
        with self._lock:
            self._cache[tenant_id] = loaded
        return list(loaded)

    def forget(self, tenant_id: str) -> None:
        """Drop a scope from the cache (its rows were deleted by the caller)."""
        with self._lock:
            self._cache.pop(tenant_id, None)

    def put_wrapped(self, tenant_id: str, key_id: str, wrapped: bytes) -> None:
        with transaction(self._factory) as db:
            db.add(
                DataKey(key_id=key_id, tenant_id=tenant_id, wrapped=wrapped, created_at=utcnow())
            )
        self.refresh(tenant_id)


__all__ = ["SqlDataKeyStore"]
