"""The one sequencer: queue -> dense indexes, tiles, signed checkpoint; one transaction per batch.

One batch (:meth:`Sequencer.step`), in one transaction: lock the head row, take
the oldest queued rows (arrival order = queue id order), give them the next
indexes, insert them as entries, delete them from the queue, extend the tiles,
sign a checkpoint of the new size into the head (and keep one in the history
every so many entries or seconds). A crash anywhere before the commit leaves the
store as it was; after it, nothing is left to redo. ``audit_entries.queue_id`` is
unique and ``idx`` is the primary key, so even two sequencers racing (which the
leadership below prevents) could not sequence an entry twice or leave a gap:
the second one would wait on the head row and then see the first one's result.

Leadership (:meth:`Sequencer.lead`): on PostgreSQL, the worker that holds a
session-level advisory lock on its own connection, for as long as that
connection lives; every batch runs on that very connection, so a leader whose
connection dies stops sequencing at once and the next worker takes the lock
(within ``retry_s``). On SQLite the serving process sequences: every write is
``BEGIN IMMEDIATE``, so batches are serialised with the writers anyway.

This is the shape of Trillian's log signer and of Sunlight's sequencer (pool,
sequence, write tiles, sign), with the database as the one source of truth.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import threading
from collections.abc import Callable, Sequence
from typing import Final

import structlog
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import (
    Connection,
    Engine,
    bindparam,
    delete,
    func,
    insert,
    select,
    text,
    update,
)

from bioverify.audit.models import AuditCheckpoint, AuditEntry, AuditHead, AuditQueued
from bioverify.audit.note import sign_checkpoint
from bioverify.audit.service import HEAD_ID, sequenced_body
from bioverify.audit.tiles import TreeEdge
from bioverify.audit.tilestore import load_edge, write_tiles

log = structlog.get_logger("bioverify.audit.sequencer")

#: PostgreSQL advisory lock class of the sequencer ("bioa" in ASCII); the second key
#: is the schema's hash, so logs in separate schemas of one database (deployments,
#: parallel test runs) each get their own sequencer instead of one waiting for ever.
LOCK_KEY: Final = 0x62696F61
DEFAULT_BATCH: Final = 2000
#: Longest wait for new entries, and shortest gap between two batches (see ``lead``).
#: A batch's fixed cost (head lock, tiles, a signature, on SQLite the write lock) is
#: most of its cost: at 20 ms between batches it was 6-8 % of the serving process's
#: CPU under create load; at 50 ms batches hold 2.5x the entries for that cost.
IDLE_S: Final = 0.1
GAP_S: Final = 0.05
_TRY_LOCK: Final = text("SELECT pg_try_advisory_lock(:k, hashtext(current_schema()))")
_UNLOCK: Final = text("SELECT pg_advisory_unlock(:k, hashtext(current_schema()))")
_OLDEST: Final = select(AuditQueued.id).order_by(AuditQueued.id).limit(bindparam("n"))
#: Take the oldest rows off the queue in one statement (Core: schema maps apply).
_TAKE: Final = (
    delete(AuditQueued)
    .where(AuditQueued.id.in_(_OLDEST))
    .returning(
        AuditQueued.id,
        AuditQueued.client_id,
        AuditQueued.session_id,
        AuditQueued.event,
        AuditQueued.body,
    )
)
_ENTRY_COLUMNS: Final = (
    "idx",
    "queue_id",
    "client_id",
    "session_id",
    "event",
    "body",
    "leaf_hash",
    "created_at",
)
_COPY_ENTRIES: Final = "COPY {table} (" + ", ".join(_ENTRY_COLUMNS) + ") FROM STDIN"
# A batch's other statements, built once: building and keying them was about a sixth
# of a batch's CPU, and a batch runs every 50 ms under load.
_LOCK_HEAD: Final = (
    select(AuditHead.tree_size, AuditHead.checkpoint_size)
    .where(AuditHead.id == HEAD_ID)
    .with_for_update()
)
_INSERT_ENTRIES: Final = insert(AuditEntry)
_UPDATE_HEAD: Final = update(AuditHead).where(AuditHead.id == HEAD_ID)
_INSERT_HEAD: Final = insert(AuditHead)
_LAST_KEPT: Final = (
    select(AuditCheckpoint.tree_size, AuditCheckpoint.created_at)
    .order_by(AuditCheckpoint.tree_size.desc())
    .limit(1)
)
_INSERT_CHECKPOINT: Final = insert(AuditCheckpoint)
_LEAF: Final = b"\x00"
_sha256 = hashlib.sha256

Clock = Callable[[], dt.datetime]


def _insert_entries(conn: Connection, entries: Sequence[tuple[object, ...]]) -> None:
    """Insert a batch of entry rows: COPY on PostgreSQL (one stream, no statement per row)."""
    if conn.dialect.name == "postgresql":
        schema = (conn.get_execution_options().get("schema_translate_map") or {}).get(None)
        table = "audit_entries"
        if schema:
            table = f"{conn.dialect.identifier_preparer.quote_schema(schema)}.{table}"
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            with cursor.copy(_COPY_ENTRIES.format(table=table)) as copy:
                for row in entries:
                    copy.write_row(row)
        finally:
            cursor.close()
        return
    conn.execute(_INSERT_ENTRIES, [dict(zip(_ENTRY_COLUMNS, row, strict=True)) for row in entries])


class Sequencer:
    """Sequences the queue in batches; one instance per process (``step`` is serialised)."""

    def __init__(
        self,
        *,
        signer: Callable[[], Ed25519PrivateKey],
        key_name: str,
        origin: str,
        clock: Clock,
        batch_size: int = DEFAULT_BATCH,
        keep_every_entries: int = 256,
        keep_every_s: float = 10.0,
    ) -> None:
        self._signer = signer
        self._key_name = key_name
        self._origin = origin
        self._clock = clock
        self.batch_size = batch_size
        self._keep_entries = keep_every_entries
        self._keep_s = keep_every_s
        self._lock = threading.Lock()
        self._wake = threading.Event()
        #: Set while this process holds the leadership (tests and metrics read it).
        self.leading = threading.Event()
        # Remembered between batches (saves two reads a batch); trusted only while the
        # head's size says no one else sequenced meanwhile, and dropped on any failure.
        self._edge: TreeEdge | None = None
        self._kept: tuple[int, dt.datetime] | None = None

    def wake(self) -> None:
        """Something was queued: run a batch now instead of at the next poll."""
        self._wake.set()

    # ------------------------------------------------------------------ one batch

    def step(self, conn: Connection) -> int:
        """One batch in its own transaction on ``conn``; how many entries it sequenced."""
        with self._lock:
            try:
                with conn.begin():
                    return self._batch(conn)
            except BaseException:
                # The batch rolled back: what this process remembers may be ahead now.
                self._edge = None
                self._kept = None
                raise

    def step_on(self, engine: Engine) -> int:
        """One batch on a connection of ``engine`` (SQLite's in-process sequencing)."""
        with engine.connect() as conn:
            return self.step(conn)

    def step_if_free(self, engine: Engine) -> int:
        """One batch, on PostgreSQL only if no leader holds the lock (then 0).

        For a reader that must wait for an index while no worker leads (an API
        process started without workers): it takes the same lock for one batch, so
        there is still only ever one sequencer at a time.
        """
        if engine.dialect.name != "postgresql":
            return self.step_on(engine)
        conn = engine.connect()
        try:
            if not conn.execute(_TRY_LOCK, {"k": LOCK_KEY}).scalar():
                conn.rollback()
                return 0
            conn.commit()
            try:
                return self.step(conn)
            finally:
                conn.execute(_UNLOCK, {"k": LOCK_KEY})
                conn.commit()
        except Exception:
            conn.invalidate()  # a broken session must not keep the lock in the pool
            raise
        finally:
            conn.close()

    def drain(self, engine: Engine) -> int:
        """Sequence until the queue is empty; how many entries that took."""
        total = 0
        with engine.connect() as conn:
            while n := self.step(conn):
                total += n
        return total

    def _batch(self, conn: Connection) -> int:
        head = conn.execute(_LOCK_HEAD).first()
        size = int(head.tree_size) if head else 0
        # Take the oldest rows off the queue in one statement; the head row lock above
        # keeps any other sequencer out until this transaction ends.
        rows = sorted(conn.execute(_TAKE, {"n": self.batch_size}).all())
        if not rows:
            if head is not None and size and head.checkpoint_size != size:
                # A migrated log whose last entries no checkpoint covered yet.
                self._sign(conn, size, load_edge(conn, size).root(), head_exists=True)
            return 0
        now = self._clock()
        entries = []
        leaves = []
        for offset, (queue_id, client_id, session_id, event, body) in enumerate(rows):
            idx = size + offset
            stored = sequenced_body(bytes(body), idx)
            leaf = _sha256(_LEAF + stored).digest()
            leaves.append(leaf)
            entries.append((idx, queue_id, client_id, session_id, event, stored, leaf, now))
        edge = self._edge if self._edge is not None and self._edge.size == size else None
        if edge is None:
            edge = load_edge(conn, size)
        _insert_entries(conn, entries)
        write_tiles(conn, edge.append(b"".join(leaves)))
        self._sign(conn, edge.size, edge.root(), head_exists=head is not None)
        self._edge = edge
        return len(rows)

    def _sign(self, conn: Connection, size: int, root: bytes, *, head_exists: bool) -> None:
        now = self._clock()
        note = sign_checkpoint(self._origin, size, root, self._signer(), self._key_name)
        values = {
            "tree_size": size,
            "checkpoint_size": size,
            "root_hash": root,
            "note": note,
            "signed_at": now,
        }
        if head_exists:
            conn.execute(_UPDATE_HEAD, values)
        else:
            conn.execute(_INSERT_HEAD, {"id": HEAD_ID, **values})
        kept = self._kept
        if kept is None:
            row = conn.execute(_LAST_KEPT).first()
            kept = (int(row.tree_size), row.created_at) if row is not None else None
        if kept is None or (
            kept[0] < size
            and (
                size - kept[0] >= self._keep_entries
                or (now - kept[1]).total_seconds() >= self._keep_s
            )
        ):
            conn.execute(
                _INSERT_CHECKPOINT,
                {"tree_size": size, "root_hash": root, "note": note, "created_at": now},
            )
            kept = (size, now)
        self._kept = kept

    # ------------------------------------------------------------------ leadership

    def lead(
        self,
        engine: Engine,
        stop: threading.Event,
        *,
        idle_s: float = IDLE_S,
        gap_s: float = GAP_S,
        retry_s: float = 1.0,
    ) -> None:
        """Sequence while leader, until ``stop``; on PostgreSQL only with the advisory lock.

        After a batch that did not fill, it waits ``idle_s`` (or until this process
        queues something) and at least ``gap_s``: a batch costs a few statements and a
        commit whatever its size, so under load batches grow instead of multiplying.
        """
        postgres = engine.dialect.name == "postgresql"
        while not stop.is_set():
            conn = engine.connect()
            try:
                if postgres:
                    got = conn.execute(_TRY_LOCK, {"k": LOCK_KEY})
                    taken = bool(got.scalar())
                    conn.commit()
                    if not taken:
                        stop.wait(retry_s)
                        continue
                self.leading.set()
                log.info("audit_sequencer_leading", pid=os.getpid())
                while not stop.is_set():
                    if self.step(conn) < self.batch_size:
                        self._wake.wait(idle_s)
                        self._wake.clear()
                        stop.wait(gap_s)
                while self.step(conn):  # a clean stop leaves nothing queued behind
                    pass
            except Exception:
                log.exception("audit_sequencer_failed")
                stop.wait(retry_s)
            finally:
                self.leading.clear()
                # Closing the DBAPI connection (not returning it to the pool) is what
                # releases a session-level advisory lock.
                conn.invalidate()
                conn.close()

    def pending(self, engine: Engine) -> int:
        """Queued entries not yet sequenced."""
        with engine.connect() as conn:
            return int(conn.scalar(select(func.count()).select_from(AuditQueued)) or 0)


__all__ = ["DEFAULT_BATCH", "LOCK_KEY", "Sequencer"]
