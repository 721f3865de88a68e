"""Helpers of the audit tests: constants, engines and sample entries."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import Engine, create_engine

from bioverify.audit.events import AuditEvent, build_entry
from bioverify.audit.models import AuditCheckpoint, AuditEntry
from bioverify.audit.service import AuditLog
from bioverify.storage.base import Base

ORIGIN = "bioverify.test/audit"
KEY_NAME = "bioverify.test"
T0 = dt.datetime(2025, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
TABLES = [AuditEntry.__table__, AuditCheckpoint.__table__]


def make_engine(path: Path) -> Engine:
    engine = create_engine(f"sqlite:///{path}", connect_args={"timeout": 30})
    Base.metadata.create_all(engine, tables=TABLES)
    return engine


def sample_entry(i: int, client: str = "client-a") -> dict[str, object]:
    return build_entry(
        AuditEvent.SESSION_ENDED if i % 2 else AuditEvent.SESSION_CREATED,
        client_id=client,
        session_id=f"session-{i}",
        code=-9 if i % 3 == 0 else None,
        subject_hashes={"customer": f"{i:064x}"},
        details={"attempt": i % 4, "status": "FAILED"},
        at=T0 + dt.timedelta(seconds=i),
    )


#: ``fill(n, every)``: append n entries, with a checkpoint every ``every`` and at the end.
FillLog = Callable[[int, int], AuditLog]
