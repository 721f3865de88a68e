"""The durable outbox: webhooks are rows written in the transaction that ends a session.

Nothing here commits: the caller's transaction decides, so a session can never end
without its webhook (nor a webhook exist for a session that did not end).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from bioverify import errors
from bioverify.storage.base import utcnow
from bioverify.webhooks.models import (
    FAILED_STATUSES,
    MessageKind,
    MessageStatus,
    WebhookDelivery,
    WebhookMessage,
    new_message_id,
)


def _iso(value: dt.datetime | None) -> str | None:
    return None if value is None else value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class DeliveryView:
    """One attempt, as ``GET .../deliveries`` shows it."""

    message_id: str
    event: str | None
    attempt: int
    at: dt.datetime
    http_status: int | None
    error: str | None
    latency_ms: int
    next_retry_at: dt.datetime | None

    def as_json(self) -> dict[str, Any]:
        """The API's camelCase form."""
        return {
            "webhookId": self.message_id,
            "event": self.event,
            "attempt": self.attempt,
            "at": _iso(self.at),
            "httpStatus": self.http_status,
            "error": self.error,
            "latencyMs": self.latency_ms,
            "nextRetryAt": _iso(self.next_retry_at),
        }


@dataclass(frozen=True, slots=True)
class MessageView:
    """An outbox message without its payload (which may hold a portrait)."""

    id: str
    session_id: str
    client_id: str
    kind: str
    event: str | None
    url: str
    status: str
    attempts: int
    created_at: dt.datetime
    next_attempt_at: dt.datetime
    last_status: int | None
    last_error: str | None
    delivered_at: dt.datetime | None

    @classmethod
    def of(cls, row: WebhookMessage) -> MessageView:
        return cls(
            row.id,
            row.session_id,
            row.client_id,
            row.kind,
            row.event,
            row.url,
            row.status,
            row.attempts,
            row.created_at,
            row.next_attempt_at,
            row.last_status,
            row.last_error,
            row.delivered_at,
        )

    def as_json(self) -> dict[str, Any]:
        """camelCase form for the CLI and operator routes."""
        return {
            "webhookId": self.id,
            "sessionId": self.session_id,
            "clientId": self.client_id,
            "kind": self.kind,
            "event": self.event,
            "url": self.url,
            "status": self.status,
            "attempts": self.attempts,
            "createdAt": _iso(self.created_at),
            "nextAttemptAt": _iso(self.next_attempt_at),
            "lastStatus": self.last_status,
            "lastError": self.last_error,
            "deliveredAt": _iso(self.delivered_at),
        }


def encode_payload(payload: Mapping[str, Any]) -> str:
    """The body bytes' text: compact JSON, UTF-8 kept (what is signed is what is sent)."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def enqueue(
    db: Session,
    *,
    session_id: str,
    client_id: str,
    url: str,
    headers: Mapping[str, str] | None,
    payload: Mapping[str, Any],
    kind: str = MessageKind.FINAL.value,
    event: str | None = None,
    now: dt.datetime | None = None,
) -> str:
    """Add a webhook to the caller's transaction and return its ``webhook-id``.

    ``kind`` is ``"final"`` (one per session) or ``"event"`` (with ``event`` named);
    event messages of a session are sent before its final one.
    """
    if kind not in (MessageKind.FINAL.value, MessageKind.EVENT.value):
        raise ValueError(f"unknown webhook kind {kind!r}")
    if (kind == MessageKind.EVENT.value) != (event is not None):
        raise ValueError("event webhooks need an event name, final ones must not have one")
    now = now or utcnow()
    last = db.scalar(
        select(func.max(WebhookMessage.sequence)).where(WebhookMessage.session_id == session_id)
    )
    msg_id = new_message_id()
    db.add(
        WebhookMessage(
            id=msg_id,
            session_id=session_id,
            client_id=client_id,
            kind=kind,
            event=event,
            payload=encode_payload(payload),
            url=url,
            headers=json.dumps(dict(headers or {})),
            created_at=now,
            next_attempt_at=now,
            attempts=0,
            schedule_base=0,
            status=MessageStatus.PENDING.value,
            sequence=(last or 0) + 1,
        )
    )
    return msg_id


def _final(db: Session, session_id: str, client_id: str | None = None) -> WebhookMessage | None:
    query = select(WebhookMessage).where(
        WebhookMessage.session_id == session_id, WebhookMessage.kind == MessageKind.FINAL.value
    )
    if client_id is not None:
        query = query.where(WebhookMessage.client_id == client_id)
    return db.scalars(query.order_by(WebhookMessage.sequence.desc()).limit(1)).first()


def redeliver(
    db: Session, session_id: str, client_id: str, *, now: dt.datetime | None = None
) -> str:
    """Queue the session's final webhook again, due now, keeping its ``webhook-id``.

    Raises :class:`bioverify.errors.NotFound` when the session (of this client) has
    no final webhook yet. Runs in the caller's transaction.
    """
    row = _final(db, session_id, client_id)
    if row is None:
        raise errors.NotFound(
            "This session has no final webhook to redeliver", session_id=session_id
        )
    now = now or utcnow()
    db.execute(
        update(WebhookMessage)
        .where(WebhookMessage.id == row.id)
        .values(
            status=MessageStatus.PENDING.value,
            next_attempt_at=now,
            claimed_by=None,
            claimed_until=None,
            schedule_base=WebhookMessage.attempts,
        )
    )
    return row.id


def release_all_claims(db: Session, *, now: dt.datetime | None = None) -> int:
    """Hand every in-flight claim back (a single-writer process starting after a crash).

    Only for SQLite's one-process deployment: there no other dispatcher can own a
    claim, so waiting out the lease would just delay webhooks a crash interrupted.
    """
    result = db.execute(
        update(WebhookMessage)
        .where(WebhookMessage.status == MessageStatus.DELIVERING.value)
        .values(
            status=MessageStatus.PENDING.value,
            claimed_by=None,
            claimed_until=None,
            next_attempt_at=now or utcnow(),
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)


def final_payload(db: Session, session_id: str) -> dict[str, Any] | None:
    """The final webhook's payload (the polling fallback), ``None`` while there is none."""
    row = _final(db, session_id)
    return None if row is None else dict(json.loads(row.payload))


def store_final_payload(db: Session, session_id: str, payload: Mapping[str, Any]) -> None:
    """Replace the final webhook's stored payload (its receipt completed by a poll), so
    every later attempt sends what the poll showed."""
    row = _final(db, session_id)
    if row is not None:
        row.payload = encode_payload(payload)


def list_deliveries(db: Session, session_id: str) -> list[DeliveryView]:
    """Every attempt of the session's webhooks, oldest first."""
    rows = db.execute(
        select(WebhookDelivery, WebhookMessage.event)
        .join(WebhookMessage, WebhookMessage.id == WebhookDelivery.message_id)
        .where(WebhookMessage.session_id == session_id)
        .order_by(WebhookDelivery.at, WebhookDelivery.id)
    ).all()
    return [
        DeliveryView(
            d.message_id,
            event,
            d.attempt,
            d.at,
            d.http_status,
            d.error,
            d.latency_ms,
            d.next_retry_at,
        )
        for d, event in rows
    ]


def list_messages(db: Session, *, failed_only: bool = False, limit: int = 100) -> list[MessageView]:
    """Outbox messages, newest first; ``failed_only``: dead-lettered or stopped ones."""
    query = select(WebhookMessage)
    if failed_only:
        query = query.where(WebhookMessage.status.in_(FAILED_STATUSES))
    query = query.order_by(WebhookMessage.created_at.desc()).limit(limit)
    return [MessageView.of(row) for row in db.scalars(query)]


def get_message(db: Session, message_id: str) -> MessageView | None:
    """One message by ``webhook-id``."""
    row = db.get(WebhookMessage, message_id)
    return None if row is None else MessageView.of(row)


__all__ = [
    "DeliveryView",
    "MessageView",
    "encode_payload",
    "enqueue",
    "final_payload",
    "get_message",
    "list_deliveries",
    "list_messages",
    "redeliver",
    "release_all_claims",
    "store_final_payload",
]
