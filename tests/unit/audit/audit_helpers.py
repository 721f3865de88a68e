"""Helpers of the audit tests: constants, engines and sample entries."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine, create_engine

from bioverify.audit.events import AuditEvent, build_entry
from bioverify.audit.models import (
    AuditCheckpoint,
    AuditEntry,
    AuditHead,
    AuditQueued,
    AuditTile,
)
from bioverify.audit.sequencer import Sequencer
from bioverify.audit.service import AuditLog
from bioverify.storage.base import Base

ORIGIN = "bioverify.test/audit"
KEY_NAME = "bioverify.test"
T0 = dt.datetime(2025, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
TABLES = [t.__table__ for t in (AuditQueued, AuditEntry, AuditTile, AuditHead, AuditCheckpoint)]


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


def make_sequencer(signer: Ed25519PrivateKey, every: int = 1000) -> Sequencer:
    """A sequencer whose batches (and kept checkpoints) are ``every`` entries."""
    return Sequencer(
        signer=lambda: signer,
        key_name=KEY_NAME,
        origin=ORIGIN,
        clock=lambda: dt.datetime.now(dt.UTC),
        batch_size=every,
        keep_every_entries=every,
        keep_every_s=3600,
    )


#: ``fill(n, every)``: append n entries, with a checkpoint every ``every`` and at the end.
FillLog = Callable[[int, int], AuditLog]
