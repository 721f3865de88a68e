"""The stored log: queued appends, the sequencer's batches, tile-based proofs, receipts."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from audit_helpers import (
    KEY_NAME,
    ORIGIN,
    TABLES,
    FillLog,
    make_engine,
    make_sequencer,
    sample_entry,
)
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine, create_engine, func, select, text
from sqlalchemy.orm import Session, sessionmaker

from bioverify import errors
from bioverify.audit.events import canonical_bytes
from bioverify.audit.merkle import root_from_leaf_hashes, verify_consistency, verify_inclusion
from bioverify.audit.models import AuditCheckpoint, AuditEntry, AuditQueued
from bioverify.audit.note import parse_and_verify_checkpoint
from bioverify.audit.receipt import verify_receipt
from bioverify.audit.service import AuditLog
from bioverify.storage.base import Base


def stored_leaves(engine: Engine) -> list[bytes]:
    with Session(engine) as db:
        return list(db.scalars(select(AuditEntry.leaf_hash).order_by(AuditEntry.idx)))


def count(engine: Engine, table: type[AuditQueued] | type[AuditEntry]) -> int:
    with Session(engine) as db:
        return int(db.scalar(select(func.count()).select_from(table)) or 0)


def test_append_only_queues_then_the_sequencer_indexes_in_arrival_order(
    engine: Engine, signer: Ed25519PrivateKey
) -> None:
    log = AuditLog()
    with Session(engine) as db, db.begin():
        queued = [log.append(db, sample_entry(i)) for i in range(3)]
    assert queued == sorted(queued)
    assert count(engine, AuditEntry) == 0
    with Session(engine) as db:
        assert log.index_of(db, queued[0]) is None
        assert log.receipt(db, 0) is None
    assert make_sequencer(signer).drain(engine) == 3
    assert count(engine, AuditQueued) == 0
    with Session(engine) as db:
        assert log.indexes_of(db, queued) == {q: i for i, q in enumerate(queued)}
        rows = db.execute(select(AuditEntry).order_by(AuditEntry.idx)).scalars().all()
    assert [r.idx for r in rows] == [0, 1, 2]
    for i, r in enumerate(rows):
        assert r.body == canonical_bytes({**sample_entry(i), "index": i})
        assert r.session_id == f"session-{i}"


def test_a_rolled_back_append_is_never_sequenced_and_leaves_no_gap(
    engine: Engine, signer: Ed25519PrivateKey
) -> None:
    log = AuditLog()
    with Session(engine) as db:
        db.begin()
        log.append(db, sample_entry(0))
        db.rollback()
    with Session(engine) as db, db.begin():
        kept = log.append(db, sample_entry(1))
        with pytest.raises(ValueError, match="index"):
            log.append(db, {**sample_entry(2), "index": 9})
    make_sequencer(signer).drain(engine)
    with Session(engine) as db:
        assert log.indexes_of(db, [kept]) == {kept: 0}
        assert log.size(db) == 1


def test_each_batch_signs_the_head_and_keeps_checkpoints_by_entries(
    engine: Engine, signer: Ed25519PrivateKey
) -> None:
    log = AuditLog()
    sequencer = make_sequencer(signer, every=10)
    with Session(engine) as db, db.begin():
        for i in range(25):
            log.append(db, sample_entry(i))
    with engine.connect() as conn:
        assert [sequencer.step(conn) for _ in range(4)] == [10, 10, 5, 0]
    with Session(engine) as db:
        head = log.latest_checkpoint(db)
        assert head is not None and head.size == 25
        cp = parse_and_verify_checkpoint(head.note, signer.public_key(), KEY_NAME, ORIGIN)
        assert cp.root == root_from_leaf_hashes(stored_leaves(engine))
        kept = list(db.scalars(select(AuditCheckpoint.tree_size).order_by("tree_size")))
    assert kept == [10, 20]  # the last batch grew by 5 < 10: only the head carries 25


def test_proofs_verify_against_checkpoints(fill: FillLog, engine: Engine) -> None:
    log = fill(300, 37)
    leaves = stored_leaves(engine)
    with Session(engine) as db:
        for size in (1, 37, 256, 257, 300):
            root = log.root(db, size)
            assert root == root_from_leaf_hashes(leaves[:size])
            for index in {0, size // 2, size - 1}:
                assert verify_inclusion(
                    leaves[index], index, size, log.inclusion_proof(db, index, size), root
                )
        for first, second in [(1, 300), (37, 74), (256, 300), (299, 300), (300, 300)]:
            assert verify_consistency(
                first,
                second,
                log.root(db, first),
                log.root(db, second),
                log.consistency_proof(db, first, second),
            )


def test_bad_proof_requests_are_400s(fill: FillLog, engine: Engine) -> None:
    log = fill(10, 10)
    with Session(engine) as db:
        for call in (
            lambda: log.inclusion_proof(db, 10, 10),
            lambda: log.inclusion_proof(db, 0, 11),
            lambda: log.consistency_proof(db, 5, 4),
            lambda: log.consistency_proof(db, -1, 4),
        ):
            with pytest.raises(errors.BadRequest):
                call()


def test_entries_are_scoped_to_the_client(fill: FillLog, engine: Engine) -> None:
    log = fill(20, 20)
    with Session(engine) as db:
        mine = log.entries(db, "client-a", 4, 12)
        assert [e["index"] for e in mine] == [5, 7, 9, 11]
        assert all(e["entry"]["clientId"] == "client-a" for e in mine)
        assert mine[0]["entry"]["index"] == 5
        assert log.entries(db, "nobody") == []


def test_a_waiting_receipt_is_complete_and_verifies_offline(
    engine: Engine, signer: Ed25519PrivateKey
) -> None:
    sequencer = make_sequencer(signer, every=4)
    # As on SQLite in the server: the waiting reader runs the batch itself.
    log = AuditLog(inline=lambda: sequencer.step_on(engine))
    with Session(engine) as db, db.begin():
        queued = [log.append(db, sample_entry(i)) for i in range(10)]
    receipt = log.receipt_for(sessionmaker(engine), {"entry": queued[6]}, timeout_s=0)
    assert receipt["index"] == 6
    with Session(engine) as db:
        body = db.scalars(select(AuditEntry.body).where(AuditEntry.idx == 6)).one()
    assert verify_receipt(body, receipt, signer.public_key(), KEY_NAME, ORIGIN)


def test_a_receipt_that_cannot_be_completed_is_a_503_not_a_partial_one(engine: Engine) -> None:
    log = AuditLog()  # no sequencer runs
    with Session(engine) as db, db.begin():
        queued = log.append(db, sample_entry(0))
    with pytest.raises(errors.ServiceUnavailable, match="not sequenced"):
        log.receipt_for(sessionmaker(engine), {"entry": queued}, timeout_s=0)


def append_concurrently(engine: Engine, writers: int, each: int) -> list[BaseException]:
    log = AuditLog()
    failures: list[BaseException] = []

    def work(w: int) -> None:
        try:
            for i in range(each):
                with Session(engine) as db, db.begin():
                    log.append(db, sample_entry(w * 1000 + i, client=f"writer-{w}"))
        except BaseException as exc:  # noqa: BLE001 - reported, never fatal here
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return failures


def assert_dense(engine: Engine, expected: int) -> None:
    with Session(engine) as db:
        idx = list(db.scalars(select(AuditEntry.idx).order_by(AuditEntry.idx)))
        bodies = list(db.scalars(select(AuditEntry.body).order_by(AuditEntry.idx)))
    assert idx == list(range(expected))
    assert len(set(bodies)) == expected


def test_concurrent_writers_on_sqlite_file_get_dense_unique_indexes(
    tmp_path: Path, signer: Ed25519PrivateKey
) -> None:
    engine = make_engine(tmp_path / "concurrent.db")
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA journal_mode=WAL")
    assert append_concurrently(engine, writers=4, each=40) == []
    make_sequencer(signer, every=64).drain(engine)
    assert_dense(engine, 160)
    engine.dispose()


PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@pytest.fixture
def pg_engine() -> Iterator[Engine]:
    base = create_engine(PG_URL, connect_args={"connect_timeout": 2})
    try:
        with base.begin() as conn:
            schema = f"audit_test_{uuid.uuid4().hex[:10]}"
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:  # noqa: BLE001 - reported, never fatal here
        base.dispose()
        pytest.skip(f"PostgreSQL at 127.0.0.1:5432 not reachable: {type(exc).__name__}")
    engine = base.execution_options(schema_translate_map={None: schema})
    Base.metadata.create_all(engine, tables=TABLES)
    yield engine
    with base.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    base.dispose()


@pytest.mark.postgres
def test_concurrent_writers_on_postgres_get_dense_unique_indexes(pg_engine: Engine) -> None:
    assert append_concurrently(pg_engine, writers=4, each=25) == []
    make_sequencer(Ed25519PrivateKey.generate(), every=16).drain(pg_engine)
    assert_dense(pg_engine, 100)


@pytest.mark.postgres
def test_postgres_log_proves_and_rolls_back(pg_engine: Engine) -> None:
    signer = Ed25519PrivateKey.generate()
    sequencer = make_sequencer(signer, every=8)
    log = AuditLog()
    with Session(pg_engine) as db, db.begin():
        queued = [log.append(db, sample_entry(i)) for i in range(20)]
    sequencer.drain(pg_engine)
    with Session(pg_engine) as db:
        receipt = log.receipt(db, 7)
        body = db.scalars(select(AuditEntry.body).where(AuditEntry.idx == 7)).one()
        assert log.index_of(db, queued[7]) == 7
    assert receipt is not None
    assert verify_receipt(body, receipt, signer.public_key(), KEY_NAME, ORIGIN)
    with Session(pg_engine) as db:
        db.begin()
        log.append(db, sample_entry(99))
        db.rollback()
    with Session(pg_engine) as db, db.begin():
        log.append(db, sample_entry(20))
    sequencer.drain(pg_engine)
    with Session(pg_engine) as db:
        assert log.size(db) == 21
        assert log.root(db, 21) == root_from_leaf_hashes(stored_leaves(pg_engine))
