"""Tables of verification sessions, their nonces, idempotency keys and enrolments."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from bioverify.storage.base import Base, new_id, utcnow


class SessionRow(Base):
    """One verification session. ``codes`` holds ``[{"code", "at"}]`` in first-seen order."""

    __tablename__ = "sessions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    client_id: Mapped[str] = mapped_column(String(36), ForeignKey("clients.id"), index=True)
    type: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), index=True)
    customer_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    puid: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # The matched customer's stable guid (from their enrolment), once known.
    guid: Mapped[str | None] = mapped_column(String(36), nullable=True)
    transaction_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    callback_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    callback_headers: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    redirect_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    enable_desktop: Mapped[bool] = mapped_column(Boolean, default=True)
    bind_device: Mapped[bool] = mapped_column(Boolean, default=False)
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    attempts_left: Mapped[int] = mapped_column(Integer, default=3)
    liveness: Mapped[str] = mapped_column(String(16), default="active")
    requirements: Mapped[list[str]] = mapped_column(JSON, default=list)
    send_images: Mapped[bool] = mapped_column(Boolean, default=False)
    send_event_webhooks: Mapped[bool] = mapped_column(Boolean, default=False)
    device_info: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    # What the capture client reported about the device (validated, closed schema).
    client_device_info: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    locale: Mapped[str | None] = mapped_column(String(35), nullable=True)
    product_group_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    external_uuid: Mapped[str | None] = mapped_column(String(128), nullable=True)
    codes: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    # SHA-256 of the capture token's secret; the token itself is never stored.
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    token_consumed: Mapped[bool] = mapped_column(Boolean, default=False)
    # Wrong token secrets presented for this session: it ends (-14) at the limit only.
    wrong_token_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Liveness challenges issued by loads: bounded, so steps cannot be re-rolled at will.
    challenges_issued: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Until when a capture holds the session's one analysis slot (None: free).
    capture_until: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    device_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    challenge: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    indicators: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    # The portrait asked for with sendImages, encrypted with the tenant's data key, kept
    # only until the final webhook is delivered.
    portrait: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True, deferred=True)
    # Document sessions (API.md section 4), both encrypted with the tenant's data key:
    # the selfie's (and a card front's portrait) embedding, kept only while the document
    # step is open (its presence means the face step passed); and identityInformation,
    # kept until the customer is erased. Never pixels.
    document_state: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True, deferred=True)
    identity: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True, deferred=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(index=True)
    completed_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)


class IdempotencyKey(Base):
    """First answer to a create with an ``Idempotency-Key``, replayed for 24 h."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("client_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    client_id: Mapped[str] = mapped_column(String(36))
    key: Mapped[str] = mapped_column(String(255))
    body_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    status_code: Mapped[int] = mapped_column(Integer)
    response: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)


class CaptureNonce(Base):
    """Nonces seen in a session's capture envelopes: a repeat is a replay (-15)."""

    __tablename__ = "capture_nonces"
    __table_args__ = (UniqueConstraint("session_id", "nonce"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    session_id: Mapped[str] = mapped_column(String(36), index=True)
    nonce: Mapped[str] = mapped_column(String(128))
    seen_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)


class Enrolment(Base):
    """A customer's protected template (encrypted) and device binding, per client."""

    __tablename__ = "enrolments"
    __table_args__ = (UniqueConstraint("client_id", "customer_id"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    client_id: Mapped[str] = mapped_column(String(36), ForeignKey("clients.id"), index=True)
    customer_id: Mapped[str] = mapped_column(String(128))
    puid: Mapped[str] = mapped_column(String(64))
    # A second stable, non-guessable id of the customer (PrivateID's ``guid``): random,
    # kept across re-enrolments, distinct from ``puid``.
    guid: Mapped[str] = mapped_column(String(36), default=new_id)
    template: Mapped[bytes] = mapped_column(LargeBinary)
    model_version: Mapped[str] = mapped_column(String(128))
    device_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    enrolled_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)


__all__ = ["CaptureNonce", "Enrolment", "IdempotencyKey", "SessionRow"]
