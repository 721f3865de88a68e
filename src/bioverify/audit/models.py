"""Tables of the audit log: entries (the leaves) and signed checkpoints."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Index, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from bioverify.storage.base import Base, utcnow


class AuditEntry(Base):
    """One leaf: ``idx`` is dense from 0; ``body`` is the RFC 8785 JSON its hash covers."""

    __tablename__ = "audit_entries"

    # autoincrement=False: the log assigns indexes under its own lock, densely.
    idx: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    client_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    session_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    event: Mapped[str] = mapped_column(String(64))
    body: Mapped[bytes] = mapped_column(LargeBinary)
    leaf_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        # The integrator's view (GET /v2/audit/entries) filters by client and range.
        Index("ix_audit_entries_client_id_idx", "client_id", "idx"),
    )


class AuditCheckpoint(Base):
    """A signed note (C2SP checkpoint) over the first ``tree_size`` entries."""

    __tablename__ = "audit_checkpoints"

    tree_size: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    root_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    note: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


__all__ = ["AuditCheckpoint", "AuditEntry"]
