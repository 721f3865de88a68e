"""The gallery change log: one row per enrolment or erasure, in commit order.

Replicas follow it to bring their in-memory gallery up to date (``gallery_sync.py``).
A row names only the tenant and the customer, never a template: applying it reads
the customer's current state from ``enrolments`` (present: load the template;
absent: drop it), so replaying a row twice, or out of order, is harmless.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Integer, String, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from bioverify.storage.base import Base, utcnow


class GalleryChange(Base):
    """A customer whose template was enrolled, replaced or erased."""

    __tablename__ = "gallery_changes"

    # BIGINT on PostgreSQL; SQLite only autoincrements an INTEGER primary key.
    seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    client_id: Mapped[str] = mapped_column(String(36), index=True)
    customer_id: Mapped[str] = mapped_column(String(128))
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)


def record_change(db: Session, client_id: str, customer_id: str) -> None:
    """Log a change in the caller's transaction (it commits with the change itself)."""
    db.add(GalleryChange(client_id=client_id, customer_id=customer_id))


def changes_after(db: Session, seq: int, limit: int) -> list[tuple[int, str, str]]:
    """``(seq, client_id, customer_id)`` after ``seq``, oldest first."""
    rows = db.execute(
        select(GalleryChange.seq, GalleryChange.client_id, GalleryChange.customer_id)
        .where(GalleryChange.seq > seq)
        .order_by(GalleryChange.seq)
        .limit(limit)
    )
    return [(int(s), c, k) for s, c, k in rows]


def last_seq(db: Session) -> int:
    """The newest position in the log (0 when empty)."""
    return int(db.scalar(select(func.coalesce(func.max(GalleryChange.seq), 0))) or 0)


__all__ = ["GalleryChange", "changes_after", "last_seq", "record_change"]
