"""The SQL :class:`~bioverify.crypto.datakeys.DataKeyStore` (SQLite or PostgreSQL)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bioverify.crypto.models import DataKey
from bioverify.storage.base import utcnow
from bioverify.storage.database import transaction


class SqlDataKeyStore:
    """Wrapped data keys in the ``data_keys`` table.

    No cache here: the cipher caches unwrapped keys, and reading the table each time
    means a key another replica just added is always found.
    """

    def __init__(self, factory: sessionmaker[Session]) -> None:
        self._factory = factory

    def get_wrapped(self, tenant_id: str) -> list[tuple[str, bytes]]:
        with transaction(self._factory) as db:
            rows = db.scalars(select(DataKey).where(DataKey.tenant_id == tenant_id)
                              .order_by(DataKey.created_at.desc(), DataKey.key_id)).all()
            return [(row.key_id, row.wrapped) for row in rows]

    def put_wrapped(self, tenant_id: str, key_id: str, wrapped: bytes) -> None:
        with transaction(self._factory) as db:
            db.add(DataKey(key_id=key_id, tenant_id=tenant_id, wrapped=wrapped,
                           created_at=utcnow()))


__all__ = ["SqlDataKeyStore"]
