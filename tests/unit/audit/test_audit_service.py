"""The stored log: dense appends in the caller's transaction, checkpoints, proofs, receipts."""

from __future__ import annotations

import base64
import datetime as dt
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from audit_helpers import KEY_NAME, ORIGIN, TABLES, FillLog, make_engine, sample_entry
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine, create_engine, select, text
from sqlalchemy.orm import Session

from bioverify import errors
from bioverify.audit.events import canonical_bytes
from bioverify.audit.merkle import (
    leaf_hash,
    root_from_leaf_hashes,
    verify_consistency,
    verify_inclusion,
)
from bioverify.audit.models import AuditCheckpoint, AuditEntry
from bioverify.audit.note import parse_and_verify_checkpoint
from bioverify.audit.receipt import verify_receipt
from bioverify.audit.service import AuditLog
from bioverify.storage.base import Base


def stored_leaves(engine: Engine) -> list[bytes]:
    with Session(engine) as db:
        return list(db.scalars(select(AuditEntry.leaf_hash).order_by(AuditEntry.idx)))


def test_append_assigns_dense_indexes_and_stores_the_canonical_body(engine: Engine) -> None:
    log = AuditLog()
    with Session(engine) as db, db.begin():
        assert [log.append(db, sample_entry(i)) for i in range(3)] == [0, 1, 2]
    with Session(engine) as db:
        row = db.get(AuditEntry, 1)
        assert row is not None
        assert row.body == canonical_bytes({**sample_entry(1), "index": 1})
        assert row.leaf_hash == leaf_hash(row.body)
        assert (row.client_id, row.session_id, row.event) == (
            "client-a",
            "session-1",
            "session:state:ended",
        )


def test_append_rolls_back_with_the_callers_transaction(engine: Engine) -> None:
    log = AuditLog()
    with Session(engine) as db:
        db.begin()
        log.append(db, sample_entry(0))
        db.rollback()
    with Session(engine) as db, db.begin():
        assert log.append(db, sample_entry(1)) == 0
    with pytest.raises(ValueError, match="index"), Session(engine) as db:
        log.append(db, {**sample_entry(2), "index": 9})


def test_checkpoints_sign_the_current_root_only_when_grown(
    engine: Engine, signer: Ed25519PrivateKey
) -> None:
    log = AuditLog()
    with Session(engine) as db, db.begin():
        assert log.checkpoint(db, signer=signer, key_name=KEY_NAME, origin=ORIGIN) is None
        for i in range(5):
            log.append(db, sample_entry(i))
        cp = log.checkpoint(db, signer=signer, key_name=KEY_NAME, origin=ORIGIN)
        assert cp is not None
        assert log.checkpoint(db, signer=signer, key_name=KEY_NAME, origin=ORIGIN) is None
    parsed = parse_and_verify_checkpoint(cp.note, signer.public_key(), KEY_NAME, ORIGIN)
    assert (parsed.size, parsed.root) == (5, root_from_leaf_hashes(stored_leaves(engine)))
    with Session(engine) as db:
        assert log.latest_checkpoint(db) == cp


def test_due_by_entries_or_age(engine: Engine, signer: Ed25519PrivateKey) -> None:
    log = AuditLog()
    with Session(engine) as db, db.begin():
        now = dt.datetime.now(dt.UTC)
        assert not log.due(db, 10, 60, now)
        log.append(db, sample_entry(0))
        assert log.due(db, 10, 60, now)  # first entry, no checkpoint yet
        log.checkpoint(db, signer=signer, key_name=KEY_NAME, origin=ORIGIN)
        assert not log.due(db, 10, 60, now + dt.timedelta(hours=1))  # nothing new
        log.append(db, sample_entry(1))
        assert not log.due(db, 10, 60, now)
        assert log.due(db, 10, 60, now + dt.timedelta(seconds=61))
        for i in range(2, 11):
            log.append(db, sample_entry(i))
        assert log.due(db, 10, 60, now)


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
        # A fresh instance (empty cache) gives the same answers.
        assert AuditLog().inclusion_proof(db, 5, 300) == log.inclusion_proof(db, 5, 300)


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


def test_cached_subtrees_never_outlive_a_rollback(engine: Engine) -> None:
    """A rolled-back append frees its index; proofs must use the new leaf, not a cached one."""
    log = AuditLog()
    with Session(engine) as db, db.begin():
        for i in range(511):
            log.append(db, sample_entry(i))
    with Session(engine) as db:
        db.begin()
        log.append(db, sample_entry(9999))
        log.root(db, 512)  # caches perfect subtrees that include the doomed leaf
        db.rollback()
    with Session(engine) as db, db.begin():
        log.append(db, sample_entry(511))
        assert log.root(db, 512) == root_from_leaf_hashes(stored_leaves_in(db))


def stored_leaves_in(db: Session) -> list[bytes]:
    return list(db.scalars(select(AuditEntry.leaf_hash).order_by(AuditEntry.idx)))


def test_entries_are_scoped_to_the_client(fill: FillLog, engine: Engine) -> None:
    log = fill(20, 20)
    with Session(engine) as db:
        mine = log.entries(db, "client-a", 4, 12)
        assert [e["index"] for e in mine] == [5, 7, 9, 11]
        assert all(e["entry"]["clientId"] == "client-a" for e in mine)
        assert mine[0]["entry"]["index"] == 5
        assert log.entries(db, "nobody") == []


def test_receipts_verify_offline(engine: Engine, signer: Ed25519PrivateKey) -> None:
    log = AuditLog()
    with Session(engine) as db, db.begin():
        for i in range(6):
            log.append(db, sample_entry(i))
        assert log.receipt(db, 2) is None  # no checkpoint yet
        receipt = log.receipt_with_fresh_checkpoint(
            db, 5, signer=signer, key_name=KEY_NAME, origin=ORIGIN
        )
        body = db.scalars(select(AuditEntry.body).where(AuditEntry.idx == 5)).one()
        older = log.receipt(db, 2)
    assert receipt["index"] == 5
    assert verify_receipt(body, receipt, signer.public_key(), KEY_NAME, ORIGIN)
    assert older is not None and older["checkpoint"] == receipt["checkpoint"]
    assert base64.b64decode(older["inclusionProof"][0])


def test_receipt_with_fresh_checkpoint_reuses_a_covering_one(
    engine: Engine, signer: Ed25519PrivateKey
) -> None:
    log = AuditLog()
    with Session(engine) as db, db.begin():
        for i in range(3):
            log.append(db, sample_entry(i))
        first = log.receipt_with_fresh_checkpoint(
            db, 1, signer=signer, key_name=KEY_NAME, origin=ORIGIN
        )
        again = log.receipt_with_fresh_checkpoint(
            db, 2, signer=signer, key_name=KEY_NAME, origin=ORIGIN
        )
        assert first["checkpoint"] == again["checkpoint"]
        assert db.scalar(select(AuditCheckpoint.tree_size)) == 3
        with pytest.raises(errors.NotFound):
            log.receipt_with_fresh_checkpoint(
                db, 3, signer=signer, key_name=KEY_NAME, origin=ORIGIN
            )


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


def test_concurrent_writers_on_sqlite_file_get_dense_unique_indexes(tmp_path: Path) -> None:
    engine = make_engine(tmp_path / "concurrent.db")
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA journal_mode=WAL")
    assert append_concurrently(engine, writers=4, each=40) == []
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
    assert_dense(pg_engine, 100)


@pytest.mark.postgres
def test_postgres_log_proves_and_rolls_back(pg_engine: Engine) -> None:
    signer = Ed25519PrivateKey.generate()
    log = AuditLog()
    with Session(pg_engine) as db, db.begin():
        for i in range(20):
            log.append(db, sample_entry(i))
        receipt = log.receipt_with_fresh_checkpoint(
            db, 7, signer=signer, key_name=KEY_NAME, origin=ORIGIN
        )
        body = db.scalars(select(AuditEntry.body).where(AuditEntry.idx == 7)).one()
    assert verify_receipt(body, receipt, signer.public_key(), KEY_NAME, ORIGIN)
    with Session(pg_engine) as db:
        db.begin()
        log.append(db, sample_entry(99))
        db.rollback()
    with Session(pg_engine) as db, db.begin():
        assert log.append(db, sample_entry(20)) == 20
        assert log.root(db, 21) == root_from_leaf_hashes(stored_leaves_in(db))
