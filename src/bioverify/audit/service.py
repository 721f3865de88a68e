"""The audit log on the store: queue entries in the caller's transaction; read, prove, receipt.

Writing (what :meth:`AuditLog.append` relies on): a request's transaction only
inserts its entries into ``audit_queue``, under no log-wide lock, so audited
writes of any number of processes proceed in parallel. The one sequencer
(:mod:`bioverify.audit.sequencer`) later gives them dense indexes in arrival
order. An append therefore returns a *queue id*; :meth:`AuditLog.index_of` maps it
to the entry's index once sequenced, and :meth:`AuditLog.wait_indexes` waits for
that, bounded.

Reading: the tree is stored as C2SP tlog-tiles (:mod:`bioverify.audit.tiles`),
so every tree head and proof reads O(log n) tiles and hashes at most 127 nodes
per tile, whatever the size of the log. Nothing is cached in memory.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, cast

from sqlalchemy import Connection, Table, func, insert, select
from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session, sessionmaker

from bioverify import errors
from bioverify.audit import merkle, tiles
from bioverify.audit.events import AuditEntryError, canonical_bytes
from bioverify.audit.models import AuditEntry, AuditHead, AuditQueued
from bioverify.audit.tilestore import read_tiles
from bioverify.storage.base import utcnow
from bioverify.storage.database import after_commit, transaction
from bioverify.storage.together import Row, insert_both

#: The placeholder index a queued body carries; the sequencer splices the real one in.
#: The largest JSON-safe integer: it canonicalises like any index, so the splice keeps
#: the body RFC 8785 canonical (integers are written the same whatever their value).
MARK_VALUE: Final = 2**53 - 1
INDEX_MARK: Final = b'"index":%d' % MARK_VALUE
MAX_ENTRIES_PAGE: Final = 1000
HEAD_ID: Final = 1
#: The key name of the log's checkpoint signatures (C2SP signed-note).
KEY_NAME: Final = "bioverify"
#: How long a final webhook waits for its entry's index before the attempt is put off.
WEBHOOK_RECEIPT_WAIT_S: Final = 10.0
#: How long the polling route waits before answering 503 with ``Retry-After``.
POLL_RECEIPT_WAIT_S: Final = 5.0
#: How often a waiting reader looks again for its entry's index.
_POLL_S: Final = 0.02


@dataclass(frozen=True, slots=True)
class SignedCheckpoint:
    """A signed note and what it commits to."""

    size: int
    root: bytes
    note: str
    created_at: dt.datetime


_QUEUE: Final = cast("Table", AuditQueued.__table__)
_QUEUE_ONE: Final = insert(_QUEUE).returning(_QUEUE.c.id)
_QUEUE_MANY: Final = insert(_QUEUE).returning(_QUEUE.c.id, sort_by_parameter_order=True)
#: ``Session.info`` key: the wake-up to call once the appending transaction commits.
_WAKE_KEY: Final = "bioverify.audit.wake"


def _queue_row(entry: Mapping[str, Any], now: dt.datetime | None = None) -> dict[str, Any]:
    """The ``audit_queue`` row of ``entry``."""
    return {
        "client_id": entry.get("clientId"),
        "session_id": entry.get("sessionId"),
        "event": str(entry["event"]),
        "body": queued_body(entry),
        "created_at": now or utcnow(),
    }


def _wake(session: Session) -> None:
    wake = session.info.pop(_WAKE_KEY, None)
    if wake is not None:
        wake()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def queued_body(entry: Mapping[str, Any]) -> bytes:
    """The entry's RFC 8785 bytes with :data:`INDEX_MARK` where its index goes."""
    if "index" in entry:
        raise AuditEntryError("audit entry must not carry an index; the log assigns it")
    body = canonical_bytes({**entry, "index": MARK_VALUE})
    if body.count(INDEX_MARK) != 1:
        # Only possible if a detail value spells the mark itself: refuse, never guess.
        raise AuditEntryError("audit entry details must not contain the index placeholder")
    return body


def sequenced_body(queued: bytes, index: int) -> bytes:
    """The stored body of a queued entry at ``index``."""
    head, mark, tail = queued.partition(INDEX_MARK)
    if not mark:
        raise AuditEntryError("queued audit body has no index placeholder")
    return head + b'"index":%d' % index + tail


class AuditLog:
    """The tamper-evident log: queue, entries, tiles, head. Thread-safe and stateless.

    Every method taking a :class:`Session` works in the caller's transaction and
    never commits. ``inline`` (SQLite, where the serving process is the
    sequencer) runs one sequencing batch when a reader must wait for an index;
    ``on_queued`` (the sequencer's wake-up) runs after a commit that queued entries.
    """

    def __init__(
        self,
        *,
        inline: Callable[[], int] | None = None,
        on_queued: Callable[[], None] | None = None,
    ) -> None:
        self.inline = inline
        self.on_queued = on_queued
        if on_queued is not None and not sa_event.contains(Session, "after_commit", _wake):
            sa_event.listen(Session, "after_commit", _wake)

    # ------------------------------------------------------------------ writing

    def append(
        self, db: Session | Connection, entry: Mapping[str, Any], *, along: Row | None = None
    ) -> int:
        """Queue ``entry`` (from :func:`build_entry`) in the caller's transaction; its queue id.

        The stored body will be the entry plus ``"index"``, so each leaf commits
        to its own position: moved, inserted or deleted rows do not verify.
        ``along`` (a table and a row's values) is inserted first, in the same
        statement on PostgreSQL (:func:`~bioverify.storage.together.insert_both`):
        the row an entry records and the entry, in one round trip. ``db`` may be the
        Connection of a :func:`~bioverify.storage.database.core_transaction`.
        """
        if along is None:
            return self.append_many(db, [entry])[0]
        queue_id = int(insert_both(db, along, (_QUEUE, _queue_row(entry)), returning=_QUEUE.c.id))
        self._wake_on_commit(db)
        return queue_id

    def append_many(
        self, db: Session | Connection, entries: Sequence[Mapping[str, Any]]
    ) -> list[int]:
        """Queue several entries, in order; their queue ids.

        One Core INSERT ... RETURNING id of the rows, the very statement a plain
        single-row INSERT is (no ORM unit of work, no flush, no lock): the queue
        id comes from the table's own sequence, the order of arrival.
        """
        if not entries:
            return []
        now = utcnow()
        rows = [_queue_row(entry, now) for entry in entries]
        if len(rows) == 1:
            ids = [int(db.execute(_QUEUE_ONE, rows[0]).scalar_one())]
        else:
            ids = [int(i) for i in db.execute(_QUEUE_MANY, rows).scalars()]
        self._wake_on_commit(db)
        return ids

    def _wake_on_commit(self, db: Session | Connection) -> None:
        if self.on_queued is not None and isinstance(db, Connection):
            after_commit(db, self.on_queued)
        elif self.on_queued is not None:
            # One listener for all sessions (registered once): adding a listener to
            # every session that appends would cost more than the append itself.
            db.info[_WAKE_KEY] = self.on_queued

    # ------------------------------------------------------------------ sequencing state

    def index_of(self, db: Session, queue_id: int) -> int | None:
        """The index of a queued entry once sequenced, else ``None``."""
        return self.indexes_of(db, [queue_id]).get(queue_id)

    def indexes_of(self, db: Session, queue_ids: Iterable[int]) -> dict[int, int]:
        """``{queue id: index}`` of those already sequenced."""
        wanted = sorted(set(queue_ids))
        if not wanted:
            return {}
        rows = db.execute(
            select(AuditEntry.queue_id, AuditEntry.idx).where(AuditEntry.queue_id.in_(wanted))
        )
        return {int(q): int(i) for q, i in rows if q is not None}

    def wait_indexes(
        self, factory: sessionmaker[Session], queue_ids: Iterable[int], timeout_s: float
    ) -> dict[int, int]:
        """Wait (at most ``timeout_s``) until every queue id is sequenced; their indexes.

        The sequencer signs a checkpoint in the same transaction that assigns an
        index, so a returned index always has a complete receipt. Raises
        :class:`~bioverify.errors.ServiceUnavailable` when the time is up (the
        sequencer is down or far behind): callers then retry, never send less.
        """
        wanted = set(queue_ids)
        deadline = time.monotonic() + timeout_s
        while True:
            with transaction(factory) as db:
                found = self.indexes_of(db, wanted)
            if len(found) == len(wanted):
                return found
            if self.inline is not None and self.inline():
                continue  # this process is the sequencer: it just did a batch
            if time.monotonic() >= deadline:
                raise errors.ServiceUnavailable(
                    "The audit log has not sequenced this entry yet; retry shortly",
                    retry_after=1,
                )
            time.sleep(_POLL_S)

    def settle_client(
        self, factory: sessionmaker[Session], client_id: str, timeout_s: float
    ) -> None:
        """Wait (bounded) until the entries this client has queued so far are sequenced.

        Reads of a client's entries then see its own earlier writes.
        """
        with transaction(factory) as db:
            queued = list(
                db.scalars(select(AuditQueued.id).where(AuditQueued.client_id == client_id))
            )
        if queued:
            self.wait_indexes(factory, queued, timeout_s)

    # ------------------------------------------------------------------ reading

    def size(self, db: Session) -> int:
        """How many entries are sequenced (as this transaction sees it)."""
        return int(db.scalar(select(AuditHead.tree_size).where(AuditHead.id == HEAD_ID)) or 0)

    def queued(self, db: Session) -> int:
        """How many entries wait for the sequencer."""
        return int(db.scalar(select(func.count()).select_from(AuditQueued)) or 0)

    def latest_checkpoint(self, db: Session) -> SignedCheckpoint | None:
        """The head's signed checkpoint, if any entry was ever sequenced."""
        row = db.execute(
            select(
                AuditHead.checkpoint_size, AuditHead.root_hash, AuditHead.note, AuditHead.signed_at
            ).where(AuditHead.id == HEAD_ID)
        ).first()
        if row is None or row.note is None or row.checkpoint_size is None:
            return None
        return SignedCheckpoint(
            size=int(row.checkpoint_size),
            root=bytes(row.root_hash or b""),
            note=row.note,
            created_at=row.signed_at or utcnow(),
        )

    def entries(
        self,
        db: Session,
        client_id: str,
        start: int = 0,
        end: int | None = None,
        *,
        limit: int = MAX_ENTRIES_PAGE,
    ) -> list[dict[str, Any]]:
        """This client's entries with ``start <= index < end``, oldest first.

        Each item is ``{"index", "leafHash": base64, "entry": the stored JSON object}``.
        """
        query = select(AuditEntry.idx, AuditEntry.body, AuditEntry.leaf_hash).where(
            AuditEntry.client_id == client_id, AuditEntry.idx >= start
        )
        if end is not None:
            query = query.where(AuditEntry.idx < end)
        rows = db.execute(query.order_by(AuditEntry.idx).limit(min(limit, MAX_ENTRIES_PAGE)))
        return [
            {"index": idx, "leafHash": _b64(leaf), "entry": json.loads(body)}
            for idx, body, leaf in rows
        ]

    def tile(self, db: Session, level: int, index: int, width: int) -> bytes | None:
        """A tile as C2SP tlog-tiles serves it: ``width`` hashes, only if the tree has them.

        Hashes never change once written, so a partial tile is the prefix of the
        stored (possibly wider or full) tile.
        """
        data = read_tiles(db.connection(), [(level, index)]).get((level, index))
        if data is None or len(data) < width * merkle.HASH_SIZE:
            return None
        return data[: width * merkle.HASH_SIZE]

    def root(self, db: Session, size: int) -> bytes:
        """The tree head over the first ``size`` entries."""
        self._check_size(db, size, "treeSize")
        return self._range_roots(db, [(0, size)])[0]

    def inclusion_proof(self, db: Session, index: int, tree_size: int) -> list[bytes]:
        """RFC 9162 inclusion proof of entry ``index`` in the tree of ``tree_size`` entries."""
        self._check_size(db, tree_size, "treeSize")
        if not 0 <= index < tree_size:
            raise errors.BadRequest("index must be at least 0 and smaller than treeSize")
        return self._range_roots(db, merkle.inclusion_ranges(index, tree_size))

    def consistency_proof(self, db: Session, first: int, second: int) -> list[bytes]:
        """RFC 9162 consistency proof from tree size ``first`` to ``second``."""
        self._check_size(db, second, "second")
        if not 0 <= first <= second:
            raise errors.BadRequest("first must be at least 0 and at most second")
        return self._range_roots(db, merkle.consistency_ranges(first, second))

    def receipt(self, db: Session, index: int) -> dict[str, Any] | None:
        """``{"index", "checkpoint", "inclusionProof"}`` against the head's checkpoint.

        ``None`` when no checkpoint covers ``index`` yet.
        """
        latest = self.latest_checkpoint(db)
        if latest is None or latest.size <= index:
            return None
        proof = self.inclusion_proof(db, index, latest.size)
        return {
            "index": index,
            "checkpoint": latest.note,
            "inclusionProof": [_b64(p) for p in proof],
        }

    def receipt_for(
        self, factory: sessionmaker[Session], ref: Mapping[str, Any], timeout_s: float
    ) -> dict[str, Any]:
        """The complete receipt of a session's entry, waiting (bounded) until it is sequenced.

        ``ref`` is what the session stored: ``{"entry": queue id}``, or
        ``{"index": ...}`` for entries sequenced before the queue existed.
        """
        index = ref.get("index")
        if not isinstance(index, int):
            queue_id = int(ref["entry"])
            index = self.wait_indexes(factory, [queue_id], timeout_s)[queue_id]
        with transaction(factory) as db:
            receipt = self.receipt(db, index)
        if receipt is None:
            raise errors.ServiceUnavailable(
                "The audit log has not signed a checkpoint for this entry yet; retry shortly",
                retry_after=1,
            )
        return receipt

    # ------------------------------------------------------------------ tiles

    def _check_size(self, db: Session, size: int, name: str) -> None:
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise errors.BadRequest(f"{name} must be a non-negative integer")
        if size > self.size(db):
            raise errors.BadRequest(f"{name} must not exceed the log size")

    def _range_roots(self, db: Session, ranges: Sequence[tuple[int, int]]) -> list[bytes]:
        found = read_tiles(db.connection(), tiles.tiles_for_ranges(ranges))
        try:
            return tiles.range_roots(ranges, found.get)
        except tiles.TileError as exc:
            raise errors.InternalError(
                "audit log tiles are missing; run `bioverify audit verify`"
            ) from exc


__all__ = [
    "INDEX_MARK",
    "KEY_NAME",
    "MARK_VALUE",
    "MAX_ENTRIES_PAGE",
    "POLL_RECEIPT_WAIT_S",
    "WEBHOOK_RECEIPT_WAIT_S",
    "AuditLog",
    "SignedCheckpoint",
    "queued_body",
    "sequenced_body",
]
