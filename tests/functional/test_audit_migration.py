"""Migration 0003: a log written in the layout before the queue and tiles keeps its root.

The log is written exactly as the previous ``AuditLog`` did (dense ``max(idx)+1``
indexes, the body with its index as RFC 8785 JSON, ``SHA-256(0x00 || body)``,
checkpoints signed over the recomputed root), on a store at revision 0001.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from alembic import command
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy.orm import Session, sessionmaker

from bioverify.audit.events import AuditEvent, build_entry, canonical_bytes
from bioverify.audit.merkle import leaf_hash, root_from_leaf_hashes, verify_consistency
from bioverify.audit.note import sign_checkpoint
from bioverify.audit.receipt import verify_receipt
from bioverify.audit.sequencer import Sequencer
from bioverify.audit.service import KEY_NAME, AuditLog
from bioverify.audit.verify import verify_log
from bioverify.storage.database import make_engine
from bioverify.storage.migrate import alembic_config

ORIGIN = "bioverify.test/migration"
OLD_ENTRIES = sa.table(
    "audit_entries",
    *(sa.column(c) for c in ("idx", "client_id", "session_id", "event", "body", "leaf_hash")),
    sa.column("created_at"),
)
OLD_CHECKPOINTS = sa.table(
    "audit_checkpoints", *(sa.column(c) for c in ("tree_size", "root_hash", "note", "created_at"))
)


def write_legacy_log(engine: sa.Engine, signer: Ed25519PrivateKey, n: int, every: int) -> bytes:
    """The previous writer; the root of its last checkpoint."""
    now = dt.datetime.now(dt.UTC)
    leaves: list[bytes] = []
    root = b""
    with engine.begin() as conn:
        for idx in range(n):
            entry = build_entry(
                AuditEvent.SESSION_ENDED,
                client_id="legacy",
                session_id=f"old-{idx}",
                details={"status": "FAILED"},
                at=now,
            )
            body = canonical_bytes({**entry, "index": idx})
            leaves.append(leaf_hash(body))
            conn.execute(
                sa.insert(OLD_ENTRIES).values(
                    idx=idx,
                    client_id="legacy",
                    session_id=f"old-{idx}",
                    event=entry["event"],
                    body=body,
                    leaf_hash=leaves[-1],
                    created_at=now,
                )
            )
            if (idx + 1) % every == 0:
                root = root_from_leaf_hashes(leaves)
                conn.execute(
                    sa.insert(OLD_CHECKPOINTS).values(
                        tree_size=idx + 1,
                        root_hash=root,
                        note=sign_checkpoint(ORIGIN, idx + 1, root, signer, KEY_NAME),
                        created_at=now,
                    )
                )
    return root


def test_a_log_written_before_the_migration_verifies_and_keeps_its_root(
    database_url: str,
) -> None:
    engine = make_engine(database_url)
    cfg = alembic_config(engine)
    command.upgrade(cfg, "0001")
    signer = Ed25519PrivateKey.generate()
    # 600 entries, checkpoints at 250 and 500: the last 100 no checkpoint covers yet.
    old_root = write_legacy_log(engine, signer, 600, 250)

    command.upgrade(cfg, "head")
    log = AuditLog()
    keys = {"public_keys": signer.public_key(), "key_name": KEY_NAME, "origin": ORIGIN}
    assert verify_log(engine, **keys).ok  # type: ignore[arg-type]
    with Session(engine) as db:
        head = log.latest_checkpoint(db)
        assert head is not None and (head.size, head.root) == (500, old_root)
        assert log.root(db, 500) == old_root
        assert log.size(db) == 600

    sequencer = Sequencer(
        signer=lambda: signer,
        key_name=KEY_NAME,
        origin=ORIGIN,
        clock=lambda: dt.datetime.now(dt.UTC),
        batch_size=64,
    )
    # The first batch signs over the uncovered entries, then new entries follow them.
    with engine.connect() as conn:
        assert sequencer.step(conn) == 0
    with Session(engine) as db, db.begin():
        queued = log.append(
            db,
            build_entry(AuditEvent.SESSION_CREATED, client_id="new", at=dt.datetime.now(dt.UTC)),
        )
    sequencer.drain(engine)
    with Session(engine) as db:
        head = log.latest_checkpoint(db)
        assert head is not None and head.size == 601
        assert log.index_of(db, queued) == 600
        assert verify_consistency(
            500, 601, old_root, head.root, log.consistency_proof(db, 500, 601)
        )
        old_body = db.scalar(sa.select(OLD_ENTRIES.c.body).where(OLD_ENTRIES.c.idx == 3))
    assert verify_log(engine, **keys).ok  # type: ignore[arg-type]
    # A session ended before the migration stored its index: its receipt still verifies.
    receipt = log.receipt_for(sessionmaker(engine), {"index": 3}, timeout_s=0)
    assert verify_receipt(bytes(old_body), receipt, signer.public_key(), KEY_NAME, ORIGIN)
    engine.dispose()
