"""Tables of the audit log: the queue, the entries (leaves), tiles, the head, checkpoints.

A request's transaction only inserts into ``audit_queue``; the sequencer moves
rows from there to ``audit_entries`` with dense indexes, extends ``audit_tiles``
and re-signs ``audit_head``, one transaction per batch.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Index, Integer, LargeBinary, SmallInteger, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from bioverify.storage.base import Base, utcnow

#: SQLite needs INTEGER (a rowid alias) for AUTOINCREMENT; PostgreSQL gets BIGSERIAL.
_QUEUE_ID = BigInteger().with_variant(Integer(), "sqlite")


class AuditQueued(Base):
    """An audit entry waiting for its index: ``id`` orders arrivals and is never reused.

    ``body`` is the entry's RFC 8785 form with :data:`~bioverify.audit.service.INDEX_MARK`
    where its index goes, so sequencing is a byte splice, not a re-encoding.
    """

    __tablename__ = "audit_queue"
    # AUTOINCREMENT on SQLite: a rowid is never reused after the queue empties,
    # so a queue id names one entry forever (sessions keep it to find their receipt).
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(_QUEUE_ID, primary_key=True, autoincrement=True)
    client_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    session_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    event: Mapped[str] = mapped_column(String(64))
    body: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class AuditEntry(Base):
    """One leaf: ``idx`` is dense from 0; ``body`` is the RFC 8785 JSON its hash covers."""

    __tablename__ = "audit_entries"

    # autoincrement=False: the sequencer assigns indexes, densely.
    idx: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    #: The ``audit_queue`` id it came from (unique: nothing is sequenced twice);
    #: empty for entries written before the queue existed.
    queue_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    client_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    session_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    event: Mapped[str] = mapped_column(String(64))
    body: Mapped[bytes] = mapped_column(LargeBinary)
    leaf_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        # The integrator's view (GET /v2/audit/entries) filters by client and range.
        Index("ix_audit_entries_client_id_idx", "client_id", "idx"),
        Index("ix_audit_entries_queue_id", "queue_id", unique=True),
    )


class AuditTile(Base):
    """A C2SP tlog-tiles hash tile; a partial tile grows in place until it is full."""

    __tablename__ = "audit_tiles"

    level: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    idx: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class AuditHead(Base):
    """The one row (``id`` 1) the sequencer updates: size and latest signed checkpoint."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    tree_size: Mapped[int] = mapped_column(BigInteger)
    checkpoint_size: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    root_hash: Mapped[bytes | None] = mapped_column(LargeBinary(32), nullable=True)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    signed_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)


class AuditCheckpoint(Base):
    """A kept signed note (C2SP checkpoint) over the first ``tree_size`` entries.

    The head is re-signed every batch; one checkpoint in so many entries or
    seconds is kept here, the history that ``audit verify`` checks.
    """

    __tablename__ = "audit_checkpoints"

    tree_size: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    root_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    note: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


__all__ = ["AuditCheckpoint", "AuditEntry", "AuditHead", "AuditQueued", "AuditTile"]
