"""Engine and transaction helpers, one code path for SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from functools import partial
from typing import Any, Final

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.exc import DBAPIError, DisconnectionError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from bioverify.errors import ServiceUnavailable


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


#: WAL pages at which a commit checkpoints the WAL itself, on an engine whose WAL a
#: :class:`~bioverify.storage.wal.WalCheckpointer` keeps short (SQLite's default is
#: 1,000): a backstop only, reached if that thread falls behind or stops.
BACKGROUND_AUTOCHECKPOINT_PAGES = 20_000


def _sqlite_on_connect(dbapi_conn: Any, _record: Any, *, autocheckpoint: int | None) -> None:
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
    if autocheckpoint is not None:
        cur.execute(f"PRAGMA wal_autocheckpoint={int(autocheckpoint)}")
    cur.close()


#: Set while :func:`read_transaction` opens its transaction (in that thread).
_read_only = threading.local()
#: How long a transaction waits for SQLite's write lock (also the busy timeout).
SQLITE_BUSY_S = 30.0


def _execute(dbapi_conn: Any, sql: str) -> None:
    cursor = dbapi_conn.cursor()
    try:
        cursor.execute(sql)
    finally:
        cursor.close()


class _WriterGate:
    """One SQLite transaction at a time in this process, handed over on commit.

    Every transaction is ``BEGIN IMMEDIATE``, so SQLite runs one at a time anyway;
    but a transaction that finds the lock taken waits in SQLite's busy handler, which
    sleeps in growing steps (up to 100 ms) and misses the moment it is released: under
    16 concurrent requests that sleeping, not the work, set the tail latency. Here the
    threads of one process queue on a lock released right after each COMMIT/ROLLBACK;
    SQLite's busy timeout still serialises other processes. The wait is bounded like
    SQLite's (then BEGIN IMMEDIATE waits in SQLite as before), so a transaction opened
    while this thread already holds one fails after the timeout instead of hanging.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._owner: Any = None

    def begin(self, dbapi_conn: Any) -> None:
        if getattr(_read_only, "on", False):
            # A read-only transaction takes no write lock (WAL readers never wait on
            # the writer), so it may run while this very thread holds a write
            # transaction: it neither takes the gate nor waits for it.
            _execute(dbapi_conn, "BEGIN DEFERRED")
            return
        raw = getattr(dbapi_conn, "dbapi_connection", dbapi_conn)
        if self._lock.acquire(timeout=SQLITE_BUSY_S):
            self._owner = raw
        try:
            _execute(dbapi_conn, "BEGIN IMMEDIATE")
        except BaseException:
            self.release(raw)
            raise

    def release(self, dbapi_conn: Any) -> None:
        raw = getattr(dbapi_conn, "dbapi_connection", dbapi_conn)
        if raw is not None and self._owner is raw:
            self._owner = None
            self._lock.release()

    def install(self, engine: Engine) -> None:
        dialect = engine.dialect
        commit, rollback = dialect.do_commit, dialect.do_rollback

        def do_commit(dbapi_conn: Any) -> None:
            try:
                commit(dbapi_conn)
            finally:
                self.release(dbapi_conn)

        def do_rollback(dbapi_conn: Any) -> None:
            try:
                rollback(dbapi_conn)
            finally:
                self.release(dbapi_conn)

        dialect.do_commit = do_commit  # type: ignore[method-assign,assignment]
        dialect.do_rollback = do_rollback  # type: ignore[method-assign,assignment]
        # The dialect's BEGIN hook, not the engine's "begin" event: any connection
        # event listener makes SQLAlchemy dispatch events around every statement.
        dialect.do_begin = self.begin  # type: ignore[method-assign,assignment]
        # Backstops: a connection returned or discarded mid-transaction frees the gate.
        event.listen(engine, "checkin", lambda dbapi_conn, _rec: self.release(dbapi_conn))
        event.listen(engine, "invalidate", lambda dbapi_conn, _rec, _exc: self.release(dbapi_conn))


#: Connections kept open per process. Up to 40 requests run in worker threads at once
#: (anyio's default), each holding one connection for its one transaction; with fewer
#: kept, every burst above the pool opened and closed connections (a connect and, on
#: SQLite, four PRAGMAs each), a measured cost under 16 concurrent creates.
POOL_SIZE = 20


#: A pooled PostgreSQL connection idle longer than this is pinged before use.
PING_IDLE_S = 1.0
_CHECKED_IN_AT = "bioverify_checked_in_at"


def _ping_idle_connections(engine: Engine, idle_s: float = PING_IDLE_S) -> None:
    """Ping a pooled connection before use only when it sat idle over ``idle_s``.

    ``pool_pre_ping`` pings on every checkout: one more round trip per transaction,
    a sixth of a create's on PostgreSQL. Connections go stale while idle (a server
    restart, an idle timeout, a firewall); one in constant use that breaks fails its
    first statement instead, which SQLAlchemy detects as a disconnect (the whole pool
    is replaced) and :func:`transaction` answers 503 with Retry-After, as a restart in
    the middle of a transaction always did.
    """
    dialect = engine.dialect

    def on_checkin(_dbapi_conn: Any, record: Any) -> None:
        record.info[_CHECKED_IN_AT] = time.monotonic()

    def on_checkout(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get(_CHECKED_IN_AT)
        if since is None or time.monotonic() - since <= idle_s:
            return  # fresh from connect, or just used
        try:
            dialect.do_ping(dbapi_conn)
        except Exception as exc:
            # The pool discards this connection and checks out another (a new one).
            raise DisconnectionError(f"pooled connection failed its ping: {exc}") from exc

    event.listen(engine, "checkin", on_checkin)
    event.listen(engine, "checkout", on_checkout)


def make_engine(
    url: str,
    *,
    pool_size: int = POOL_SIZE,
    ping_idle_s: float = PING_IDLE_S,
    background_checkpoints: bool = False,
) -> Engine:
    """An engine configured for our workload on either backend.

    ``background_checkpoints`` (SQLite): the caller runs a
    :class:`~bioverify.storage.wal.WalCheckpointer` on this engine, so commits leave
    checkpointing to it (up to :data:`BACKGROUND_AUTOCHECKPOINT_PAGES`).
    """
    # hide_parameters: a logged SQL error must not carry the bound values (secret
    # hashes, customer ids, sealed blobs) into the logs.
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_S},
            pool_size=pool_size,
            max_overflow=pool_size,
            hide_parameters=True,
        )
        autocheckpoint = BACKGROUND_AUTOCHECKPOINT_PAGES if background_checkpoints else None
        event.listen(engine, "connect", partial(_sqlite_on_connect, autocheckpoint=autocheckpoint))
        _WriterGate().install(engine)
        return engine
    engine = create_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_timeout=10,
        hide_parameters=True,
    )
    _ping_idle_connections(engine, ping_idle_s)
    return engine


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
def _store_errors() -> Iterator[None]:
    """A lost or unreachable database as :class:`ServiceUnavailable` (503), never as a
    driver traceback."""
    try:
        yield
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
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any error.

    A lost or unreachable database surfaces as :class:`ServiceUnavailable` (503),
    never as a driver traceback.
    """
    with _store_errors(), factory.begin() as db:
        yield db


#: ``Connection.info`` key of the calls to make once a :func:`core_transaction` commits.
_AFTER_COMMIT: Final = "bioverify.after_commit"


def after_commit(conn: Connection, hook: Callable[[], None]) -> None:
    """Call ``hook`` once the :func:`core_transaction` running on ``conn`` has committed
    (never if it rolls back); registering the same hook twice calls it once."""
    hooks: dict[Callable[[], None], None] = conn.info.setdefault(_AFTER_COMMIT, {})
    hooks[hook] = None


@contextmanager
def core_transaction(engine: Engine) -> Iterator[Connection]:
    """:func:`transaction` on a Core :class:`Connection`, for hot paths of a few
    prebuilt statements: the same BEGIN (``BEGIN IMMEDIATE`` and the writer gate on
    SQLite), COMMIT and error mapping, without an ORM Session (its begin, commit and
    close, and its per-statement ORM execution, cost more CPU than a create's SQL,
    on SQLite with the write lock held)."""
    with _store_errors(), engine.connect() as conn:
        # ``info`` lives as long as the pooled connection: start and end clean.
        conn.info.pop(_AFTER_COMMIT, None)
        try:
            with conn.begin():
                yield conn
        except BaseException:
            with suppress(Exception):  # an invalidated connection may have no info
                conn.info.pop(_AFTER_COMMIT, None)
            raise
        hooks = conn.info.pop(_AFTER_COMMIT, None) or {}
    for hook in hooks:
        hook()


@contextmanager
def read_transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A :func:`transaction` for reads only. On SQLite it does not take the write lock,
    so code running inside a locked write transaction (a capture's conclusion) can
    read a row its cache lacks without waiting on its own lock until the busy timeout.
    Writing in it is a programming error (SQLite would then fail to upgrade)."""
    with transaction(factory) as db:
        _read_only.on = True
        try:
            db.connection()  # begins here, in this thread
        finally:
            _read_only.on = False
        yield db


__all__ = [
    "BACKGROUND_AUTOCHECKPOINT_PAGES",
    "after_commit",
    "checkpoint_wal",
    "core_transaction",
    "is_sqlite",
    "make_engine",
    "read_transaction",
    "session_factory",
    "transaction",
]
