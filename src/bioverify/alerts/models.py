"""Tables of alert observations (for windowed rules) and raised alerts."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from bioverify.storage.base import Base, new_id, utcnow


class AlertObservation(Base):
    """One signal counted by a threshold rule (kept for the rule's window)."""

    __tablename__ = "alert_observations"
    __table_args__ = (Index("ix_alert_observations_rule_key_at", "rule", "key", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    rule: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(128))
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Alert(Base):
    """A raised alert. ``key`` is a keyed hash or an opaque id, never a raw identifier."""

    __tablename__ = "alerts"
    __table_args__ = (Index("ix_alerts_rule_key_raised", "rule", "key", "raised_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    rule: Mapped[str] = mapped_column(String(64))
    severity: Mapped[str] = mapped_column(String(16))
    key: Mapped[str] = mapped_column(String(128))
    summary: Mapped[str] = mapped_column(String(512))
    client_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    raised_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


__all__ = ["Alert", "AlertObservation"]
