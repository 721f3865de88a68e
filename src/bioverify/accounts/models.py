"""Tables of integrator client applications."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, Boolean, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from bioverify.storage.base import Base, new_id, utcnow


class Client(Base):
    """One client application of an integrator; also the tenant boundary."""

    __tablename__ = "clients"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(128))
    # SHA-256 of the API key. Keys are 256-bit random, so a fast hash is enough and
    # lets us look the client up by it.
    api_key_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    secret_hash: Mapped[bytes | None] = mapped_column(LargeBinary(32), nullable=True)
    # Secrets being rotated out still authenticate until this time.
    previous_secret_hash: Mapped[bytes | None] = mapped_column(LargeBinary(32), nullable=True)
    previous_secret_until: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    public_key_pem: Mapped[str | None] = mapped_column(Text, nullable=True)
    key_only: Mapped[bool] = mapped_column(Boolean, default=False)
    # whsec_ secrets sealed under the master key (accounts.secretbox), current first;
    # more than one during a rotation.
    webhook_secrets: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Origins allowed to frame the hosted capture page of this client's sessions
    # (CSP frame-ancestors sources); empty: the page may not be framed at all.
    frame_ancestors: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)


class SeenRequestId(Base):
    """SLC request ids seen within the timestamp window: a repeat is a replay."""

    __tablename__ = "slc_request_ids"
    __table_args__ = (UniqueConstraint("client_id", "request_id"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    client_id: Mapped[str] = mapped_column(String(36), index=True)
    request_id: Mapped[str] = mapped_column(String(128))
    seen_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)


__all__ = ["Client", "SeenRequestId"]
