"""Audit log figures: appends per second with concurrent writers, and verifying 1M entries.

Goals: >= 10,000 appends/s, and `verify_log` over 1,000,000 entries in <= 10 s.
Baselines printed in the same run: raw INSERT rate of the same rows without
hashing or canonical JSON, and raw SHA-256 over 1M leaves.

Usage: python bench/audit.py [--entries 1000000] [--seconds 3] [--writers 4]
Every phase is bounded (appends run for --seconds; the 1M log is built in bulk).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import sqlite3
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine, create_engine, event, insert, text
from sqlalchemy.orm import Session

from bioverify.audit.events import AuditEvent, build_entry
from bioverify.audit.merkle import CompactRange
from bioverify.audit.models import AuditEntry
from bioverify.audit.note import sign_checkpoint
from bioverify.audit.service import AuditLog
from bioverify.audit.verify import verify_log
from bioverify.storage.base import Base

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
ORIGIN, KEY_NAME = "bench.bioverify.local/audit", "bench.bioverify.local"
TABLES = [Base.metadata.tables[t] for t in ("audit_entries", "audit_checkpoints")]


def sqlite_engine(path: Path) -> Engine:
    """File SQLite as the service runs it: WAL, synchronous=NORMAL, BEGIN IMMEDIATE."""
    engine = create_engine(f"sqlite:///{path}", connect_args={"timeout": 60})

    @event.listens_for(engine, "connect")
    def _pragmas(conn: sqlite3.Connection, _record: object) -> None:
        conn.isolation_level = None  # let SQLAlchemy's "begin" event issue BEGIN
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")

    @event.listens_for(engine, "begin")
    def _begin(conn: object) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")  # type: ignore[attr-defined]

    Base.metadata.create_all(engine, tables=TABLES)
    return engine


def pg_engine() -> tuple[Engine, str] | None:
    try:
        engine = create_engine(PG_URL, connect_args={"connect_timeout": 2}, pool_size=10)
        schema = f"bench_audit_{uuid.uuid4().hex[:8]}"
        with engine.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        engine = engine.execution_options(schema_translate_map={None: schema})
        Base.metadata.create_all(engine, tables=TABLES)
        return engine, schema
    except Exception as exc:  # noqa: BLE001 - reported, never fatal here
        print(f"PostgreSQL not reachable ({type(exc).__name__}); skipping its figures")
        return None


def drop_pg(engine: Engine, schema: str) -> None:
    with engine.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    engine.dispose()


def entry(i: int) -> dict[str, object]:
    return build_entry(
        AuditEvent.SESSION_ENDED,
        client_id="8d7f6b2e-1c1d-4e5f-9a0b-123456789abc",
        session_id=str(uuid.UUID(int=i)),
        code=-9,
        subject_hashes={"customer": hashlib.sha256(str(i).encode()).hexdigest()},
        details={"status": "FAILED", "attempt": 1},
        at=dt.datetime.now(dt.UTC),
    )


def run_writers(writers: int, seconds: float, work: Callable[[int], int]) -> float:
    """Run ``work(writer)`` repeatedly in threads for ``seconds``; appends per second."""
    done = [0] * writers
    stop = time.perf_counter() + seconds

    def loop(w: int) -> None:
        while time.perf_counter() < stop:
            done[w] += work(w)

    threads = [threading.Thread(target=loop, args=(w,)) for w in range(writers)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(done) / (time.perf_counter() - start)


def bench_appends(engine: Engine, label: str, writers: int, seconds: float) -> None:
    log = AuditLog()

    def one(_w: int) -> int:
        with Session(engine) as db, db.begin():
            log.append(db, entry(0))
        return 1

    def batch(_w: int) -> int:
        with Session(engine) as db, db.begin():
            for _ in range(20):
                log.append(db, entry(0))
        return 20

    def many(_w: int) -> int:
        with Session(engine) as db, db.begin():
            log.append_many(db, [entry(0) for _ in range(100)])
        return 100

    counter = iter(range(10**12))
    lock = threading.Lock()

    raw_insert = insert(AuditEntry)

    def raw(_w: int) -> int:
        with lock:
            i = next(counter) + 10**9  # well above the log's own indexes
        with Session(engine) as db, db.begin():
            db.connection().execute(
                raw_insert,
                {
                    "idx": i,
                    "client_id": "c",
                    "session_id": None,
                    "event": "x",
                    "body": b"{}",
                    "leaf_hash": b"\0" * 32,
                    "created_at": dt.datetime.now(dt.UTC),
                },
            )
        return 1

    print(f"[{label}] {writers} writers, {seconds:.0f} s each:")
    print(f"  append, 1 entry per transaction : {run_writers(writers, seconds, one):9.0f} /s")
    print(f"  append, 20 entries per txn      : {run_writers(writers, seconds, batch):9.0f} /s")
    print(f"  append_many, 100 per txn        : {run_writers(writers, seconds, many):9.0f} /s")
    print(f"  baseline raw INSERT, 1 per txn  : {run_writers(writers, seconds, raw):9.0f} /s")


def build_log(path: Path, n: int, key: Ed25519PrivateKey, every: int) -> float:
    """Write an n-entry log with a checkpoint every ``every`` entries, in bulk; seconds."""
    start = time.perf_counter()
    template = entry(0)
    enc = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    tree = CompactRange()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=OFF")
    now = dt.datetime.now(dt.UTC).isoformat()
    rows: list[tuple[int, str, str, str, bytes, bytes, str]] = []
    cps: list[tuple[int, bytes, str, str]] = []
    for i in range(n):
        # ASCII-only bodies: json.dumps(sort_keys) is RFC 8785 for them (tested), and fast.
        body = enc.encode({**template, "sessionId": str(uuid.UUID(int=i)), "index": i}).encode()
        leaf = hashlib.sha256(b"\x00" + body).digest()
        tree.append(leaf)
        rows.append((i, "c", str(uuid.UUID(int=i)), "session:state:ended", body, leaf, now))
        if tree.size % every == 0 or tree.size == n:
            root = tree.root()
            cps.append(
                (tree.size, root, sign_checkpoint(ORIGIN, tree.size, root, key, KEY_NAME), now)
            )
        if len(rows) == 50_000:
            conn.executemany("INSERT INTO audit_entries VALUES (?,?,?,?,?,?,?)", rows)
            rows.clear()
    conn.executemany("INSERT INTO audit_entries VALUES (?,?,?,?,?,?,?)", rows)
    conn.executemany("INSERT INTO audit_checkpoints VALUES (?,?,?,?)", cps)
    conn.commit()
    conn.close()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--writers", type=int, default=4)
    args = parser.parse_args()
    key = Ed25519PrivateKey.generate()
    print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as tmp:
        bench_appends(
            sqlite_engine(Path(tmp) / "appends.db"), "SQLite file, WAL", args.writers, args.seconds
        )
        pg = pg_engine()
        if pg is not None:
            try:
                bench_appends(pg[0], "PostgreSQL", args.writers, args.seconds)
            finally:
                drop_pg(*pg)

        path = Path(tmp) / "big.db"
        sqlite_engine(path).dispose()
        n = args.entries
        built = build_log(path, n, key, every=10_000)
        print(f"[verify] built {n:,} entries with {n // 10_000} checkpoints in {built:.1f} s")

        leaves = [bytes(32)] * n
        start = time.perf_counter()
        for leaf in leaves:
            hashlib.sha256(b"\x00" + leaf).digest()
        print(f"  baseline raw sha256 of {n:,} leaves : {time.perf_counter() - start:6.2f} s")

        engine = sqlite_engine(path)
        for workers in (1, 2):
            start = time.perf_counter()
            report = verify_log(
                engine,
                public_keys=key.public_key(),
                key_name=KEY_NAME,
                origin=ORIGIN,
                workers=workers,
            )
            took = time.perf_counter() - start
            print(
                f"  verify_log, {workers} process(es)       : {took:6.2f} s  ok={report.ok} "
                f"({report.reason}); goal <= 10 s"
            )
        log = AuditLog()
        with Session(engine) as db:
            start = time.perf_counter()
            log.inclusion_proof(db, n - 1, n)
            cold = time.perf_counter() - start
            start = time.perf_counter()
            log.inclusion_proof(db, n // 3, n)
            warm = time.perf_counter() - start
        print(f"  inclusion proof at {n:,}: cold {cold * 1000:.0f} ms, warm {warm * 1000:.1f} ms")
        engine.dispose()


if __name__ == "__main__":
    main()
