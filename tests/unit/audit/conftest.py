"""Fixtures of the audit tests: a file SQLite store, a signing key, a filled log."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from audit_helpers import FillLog, make_engine, make_sequencer, sample_entry
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from bioverify.audit.service import AuditLog


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    eng = make_engine(tmp_path / "audit.db")
    yield eng
    eng.dispose()


@pytest.fixture
def signer() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def fill(engine: Engine, signer: Ed25519PrivateKey) -> FillLog:
    """``fill(n, every)``: queue n entries, sequence them in batches of ``every`` (each kept)."""

    def _fill(n: int, every: int) -> AuditLog:
        log = AuditLog()
        with Session(engine) as db, db.begin():
            for i in range(n):
                log.append(db, sample_entry(i, "client-a" if i % 2 else "client-b"))
        make_sequencer(signer, every).drain(engine)
        return log

    return _fill
