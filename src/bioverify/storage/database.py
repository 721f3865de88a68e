"""Engine and transaction helpers, one code path for SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from bioverify.errors import ServiceUnavailable


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def _sqlite_on_connect(dbapi_conn: Any, _record: Any) -> None:
    # Let SQLAlchemy own transaction boundaries (pysqlite's implicit BEGIN is deferred,
    # which lets two writers deadlock-upgrade); we issue BEGIN IMMEDIATE ourselves so
    # writers queue on the busy timeout instead of failing.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    # Deleted rows are overwritten, not left in free pages (erasure means erased).
    cur.execute("PRAGMA secure_delete=ON")
    cur.close()


#: Connection execution option of :func:`read_transaction`.
_READ_ONLY = "bioverify_read_only"


def _sqlite_on_begin(conn: Any) -> None:
    # A read-only transaction takes no write lock (WAL readers never wait on the
    # writer), so it may run while this very thread holds a write transaction.
    if conn.get_execution_options().get(_READ_ONLY):
        conn.exec_driver_sql("BEGIN DEFERRED")
    else:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(url: str, *, pool_size: int = 10) -> Engine:
    """An engine configured for our workload on either backend."""
    # hide_parameters: a logged SQL error must not carry the bound values (secret
    # hashes, customer ids, sealed blobs) into the logs.
    if url.startswith("sqlite"):
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, hide_parameters=True
        )
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_on_begin)
        return engine
    return create_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        pool_timeout=10,
        hide_parameters=True,
    )


def checkpoint_wal(engine: Engine) -> None:
    """SQLite: copy the WAL into the database and truncate it, so content deleted
    since (overwritten there under ``secure_delete``) leaves no copy in the WAL.
    Outside any transaction (a checkpoint cannot run inside one); no-op elsewhere."""
    if not is_sqlite(engine):
        return
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        cursor.close()
    finally:
        raw.close()


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def _is_schema_error(exc: OperationalError) -> bool:
    # SQLite reports a missing table/column as OperationalError too.
    text = str(exc.orig).lower()
    return "no such table" in text or "no such column" in text or "has no column" in text


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any error.

    A lost or unreachable database surfaces as :class:`ServiceUnavailable` (503),
    never as a driver traceback.
    """
    try:
        with factory.begin() as db:
            yield db
    except OperationalError as exc:
        if _is_schema_error(exc):
            raise  # a programming or migration error, not an outage: a 500, audited
        raise ServiceUnavailable(
            "The database is unavailable, try again shortly", retry_after=5
        ) from exc
    except DBAPIError as exc:
        if exc.connection_invalidated:
            raise ServiceUnavailable(
                "The database connection was lost, try again shortly", retry_after=5
            ) from exc
        raise


@contextmanager
def read_transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A :func:`transaction` for reads only. On SQLite it does not take the write lock,
    so code running inside a locked write transaction (a capture's conclusion) can
    read a row its cache lacks without waiting on its own lock until the busy timeout.
    Writing in it is a programming error (SQLite would then fail to upgrade)."""
    with transaction(factory) as db:
        db.connection(execution_options={_READ_ONLY: True})
        yield db


__all__ = [
    "checkpoint_wal",
    "is_sqlite",
    "make_engine",
    "read_transaction",
    "session_factory",
    "transaction",
]
