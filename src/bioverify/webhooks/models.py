"""Tables of the durable webhook outbox and its delivery log (SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import enum
import secrets

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    literal_column,
    text,
)
from sqlalchemy.orm import Mapped, QueryableAttribute, mapped_column

from bioverify.storage.base import Base

# SQLite only auto-increments an INTEGER PRIMARY KEY, PostgreSQL wants BIGINT.
_BigIntId = BigInteger().with_variant(Integer(), "sqlite")


class MessageStatus(enum.StrEnum):
    """Life of an outbox message; ``delivered``, ``dead`` and ``stopped`` are final."""

    PENDING = "pending"
    DELIVERING = "delivering"
    DELIVERED = "delivered"
    DEAD = "dead"
    STOPPED = "stopped"


class MessageKind(enum.StrEnum):
    """A session's one ``final`` webhook, or an ``event`` webhook sent before it."""

    FINAL = "final"
    EVENT = "event"


ACTIVE_STATUSES = (MessageStatus.PENDING.value, MessageStatus.DELIVERING.value)
FAILED_STATUSES = (MessageStatus.DEAD.value, MessageStatus.STOPPED.value)


def is_active(status: ColumnElement[str] | QueryableAttribute[str]) -> ColumnElement[bool]:
    """``status IN ('pending', 'delivering')`` with the values written into the SQL.

    The due index is partial on exactly this predicate, and a planner uses a partial
    index only when it can see that the query implies the index's WHERE: with the
    statuses as bound parameters SQLite scanned and sorted the whole outbox, delivered
    rows included, on every claim (and a PostgreSQL generic plan cannot use it either).
    """
    return status.in_([literal_column(f"'{s}'") for s in ACTIVE_STATUSES])


def new_message_id() -> str:
    """A ``webhook-id``: ``msg_`` and 128 random bits, stable across retries."""
    return "msg_" + secrets.token_urlsafe(16)


class WebhookMessage(Base):
    """One webhook to deliver at least once; the row is written with the session's end."""

    __tablename__ = "webhook_outbox"

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=new_message_id)
    session_id: Mapped[str] = mapped_column(String(64))
    client_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(8), default=MessageKind.FINAL.value)
    event: Mapped[str | None] = mapped_column(String(64))
    # The body is frozen at enqueue time so every retry signs the same bytes.
    payload: Mapped[str] = mapped_column(Text)
    url: Mapped[str] = mapped_column(Text)
    headers: Mapped[str] = mapped_column(Text, default="{}")
    created_at: Mapped[dt.datetime]
    # When it is due: the retry time, or while ``delivering`` the end of the lease,
    # so "due" is one range scan on one partial index for both cases.
    next_attempt_at: Mapped[dt.datetime]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # Attempts made before the current retry schedule began (a redelivery restarts it).
    schedule_base: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(12), default=MessageStatus.PENDING.value)
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_until: Mapped[dt.datetime | None]
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(200))
    delivered_at: Mapped[dt.datetime | None]
    # Per-session order: a message waits while an earlier one of its session is
    # pending, so events (enqueued while the session runs) precede the final one.
    sequence: Mapped[int] = mapped_column(Integer, default=1)

    __table_args__ = (
        Index("ix_webhook_outbox_session_sequence", "session_id", "sequence"),
        Index(
            "ix_webhook_outbox_due",
            "next_attempt_at",
            postgresql_where=text("status IN ('pending', 'delivering')"),
            sqlite_where=text("status IN ('pending', 'delivering')"),
        ),
    )


class WebhookDelivery(Base):
    """One HTTP attempt of a message: what the receiver answered and when we try next."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[int] = mapped_column(_BigIntId, primary_key=True, autoincrement=True)
    message_id: Mapped[str] = mapped_column(ForeignKey("webhook_outbox.id"), index=True)
    attempt: Mapped[int] = mapped_column(Integer)
    at: Mapped[dt.datetime]
    http_status: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(String(200))
    latency_ms: Mapped[int] = mapped_column(Integer)
    next_retry_at: Mapped[dt.datetime | None]


TABLES = (WebhookMessage.__table__, WebhookDelivery.__table__)

__all__ = [
    "ACTIVE_STATUSES",
    "FAILED_STATUSES",
    "TABLES",
    "MessageKind",
    "MessageStatus",
    "WebhookDelivery",
    "WebhookMessage",
    "is_active",
    "new_message_id",
]
