"""The audit log on the store: append in the caller's transaction, checkpoints, proofs.

Concurrency (what :meth:`AuditLog.append` relies on): indexes are ``max(idx)+1``
read under a log-wide lock held until the caller's transaction ends, so they are
dense and never collide, and a rolled-back append frees its index.

- PostgreSQL: ``pg_advisory_xact_lock(LOCK_KEY)`` (released at commit/rollback).
- SQLite: the first statement of an append is a write (an ``UPDATE`` matching no
  row), which takes the database's single writer lock before ``max(idx)`` is read;
  the lock is held until commit. This needs the connection's transaction to have
  made no earlier *read-only* statement in WAL mode, or SQLite may answer
  ``database is locked`` for a stale snapshot: engines should begin transactions
  with ``BEGIN IMMEDIATE`` (what bioverify's SQLite engine does) or write first.

Subtree roots of perfect, aligned subtrees are immutable in an append-only log,
so one :class:`AuditLog` per process caches them: checkpoints and proofs then
hash only the leaves added since. A cached node is trusted only while its last
leaf still has the same hash in the store, which catches an index freed by a
rolled-back append (rollbacks only ever remove the newest leaves).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Connection, false, func, insert, select, text, update
from sqlalchemy.orm import Session

from bioverify import errors
from bioverify.audit import merkle
from bioverify.audit.events import canonical_bytes
from bioverify.audit.models import AuditCheckpoint, AuditEntry
from bioverify.audit.note import sign_checkpoint
from bioverify.storage.base import utcnow

#: PostgreSQL advisory lock id of the audit log ("bioaudit" in ASCII).
LOCK_KEY: Final = 0x62696F6175646974
#: Perfect subtrees of at least 2**CACHE_MIN_LEVEL leaves are cached.
CACHE_MIN_LEVEL: Final = 8
_CACHE_MAX_NODES: Final = 2_000_000
#: Perfect subtrees up to 2**_LOAD_MAX_LEVEL leaves are hashed from one leaf query.
_LOAD_MAX_LEVEL: Final = 12
MAX_ENTRIES_PAGE: Final = 1000


@dataclass(frozen=True, slots=True)
class SignedCheckpoint:
    """A stored checkpoint: the signed note and what it commits to."""

    size: int
    root: bytes
    note: str
    created_at: dt.datetime


@dataclass(frozen=True, slots=True)
class _Node:
    root: bytes
    last_leaf: bytes


# Built once: SQLAlchemy then reuses their compiled form on every append.
_PG_LOCK: Final = text("SELECT pg_advisory_xact_lock(:key)")
# A write statement takes SQLite's writer lock even when it matches no row.
_SQLITE_LOCK: Final = (
    update(AuditCheckpoint).where(false()).values(tree_size=AuditCheckpoint.tree_size)
)
_NEXT_INDEX: Final = select(func.coalesce(func.max(AuditEntry.idx) + 1, 0))
_INSERT: Final = insert(AuditEntry)


def _lock(db: Session) -> Connection:
    """Take the log-wide append lock for the rest of the caller's transaction."""
    conn = db.connection()
    dialect = conn.dialect.name
    if dialect == "postgresql":
        conn.execute(_PG_LOCK, {"key": LOCK_KEY})
    elif dialect == "sqlite":
        conn.execute(_SQLITE_LOCK)
    else:
        raise RuntimeError(f"audit log does not support the {dialect} dialect")
    return conn


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


class AuditLog:
    """The tamper-evident log over ``audit_entries`` and ``audit_checkpoints``.

    Every method works on the caller's :class:`Session` and never commits.
    Thread-safe; keep one instance per process so its subtree cache is shared.
    """

    def __init__(self) -> None:
        self._cache: dict[tuple[int, int], _Node] = {}
        self._cache_lock = threading.Lock()

    # ------------------------------------------------------------------ writing

    def append(self, db: Session, entry: Mapping[str, Any]) -> int:
        """Add ``entry`` (from :func:`build_entry`) in the caller's transaction; its index.

        The stored body is the entry plus ``"index"``, so each leaf commits to
        its own position: moved, inserted or deleted rows do not verify.
        """
        return self.append_many(db, [entry])[0]

    def append_many(self, db: Session, entries: Sequence[Mapping[str, Any]]) -> list[int]:
        """Add several entries, in order, under one lock; their indexes."""
        if any("index" in entry for entry in entries):
            raise ValueError("audit entry must not carry an index; the log assigns it")
        if not entries:
            return []
        conn = _lock(db)
        first = int(conn.execute(_NEXT_INDEX).scalar_one())
        now = utcnow()
        rows = []
        for idx, entry in enumerate(entries, start=first):
            body = canonical_bytes({**entry, "index": idx})
            rows.append(
                {
                    "idx": idx,
                    "client_id": entry.get("clientId"),
                    "session_id": entry.get("sessionId"),
                    "event": str(entry["event"]),
                    "body": body,
                    "leaf_hash": merkle.leaf_hash(body),
                    "created_at": now,
                }
            )
        conn.execute(_INSERT, rows)
        return list(range(first, first + len(rows)))

    def size(self, db: Session) -> int:
        """How many entries the log holds (as this transaction sees it)."""
        return int(db.connection().execute(_NEXT_INDEX).scalar_one())

    def checkpoint(
        self, db: Session, *, signer: Ed25519PrivateKey, key_name: str, origin: str
    ) -> SignedCheckpoint | None:
        """Sign and store a checkpoint of the current size; ``None`` if the log did not grow."""
        _lock(db)  # the size read must not race an append, nor another checkpointer
        size = self.size(db)
        latest = self.latest_checkpoint(db)
        if size == 0 or (latest is not None and latest.size >= size):
            return None
        root = self.root(db, size)
        note = sign_checkpoint(origin, size, root, signer, key_name)
        created = utcnow()
        db.execute(
            insert(AuditCheckpoint).values(
                tree_size=size, root_hash=root, note=note, created_at=created
            )
        )
        return SignedCheckpoint(size=size, root=root, note=note, created_at=created)

    def due(self, db: Session, every_entries: int, every_seconds: float, now: dt.datetime) -> bool:
        """Whether a checkpoint should be made: new entries and either limit reached."""
        size = self.size(db)
        latest = self.latest_checkpoint(db)
        if latest is None:
            return size > 0
        grown = size - latest.size
        if grown <= 0:
            return False
        age = (now - latest.created_at).total_seconds()
        return grown >= every_entries or age >= every_seconds

    # ------------------------------------------------------------------ reading

    def latest_checkpoint(self, db: Session) -> SignedCheckpoint | None:
        """The checkpoint of the largest tree size, if any."""
        row = db.execute(
            select(AuditCheckpoint).order_by(AuditCheckpoint.tree_size.desc()).limit(1)
        ).scalar_one_or_none()
        if row is None:
            return None
        return SignedCheckpoint(
            size=row.tree_size, root=row.root_hash, note=row.note, created_at=row.created_at
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

    def warm(self, db: Session) -> None:
        """Hash the whole tree once (at start-up) so proofs then hash only new leaves.

        Cold, a 1M-entry log takes a few seconds; warm, a proof takes milliseconds.
        """
        self.root(db, self.size(db))

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
        """``{"index", "checkpoint", "inclusionProof"}`` against the latest checkpoint.

        ``None`` when no checkpoint covers ``index`` yet.
        """
        latest = self.latest_checkpoint(db)
        if latest is None or latest.size <= index:
            return None
        return self._receipt(db, index, latest)

    def receipt_with_fresh_checkpoint(
        self, db: Session, index: int, *, signer: Ed25519PrivateKey, key_name: str, origin: str
    ) -> dict[str, Any]:
        """A receipt for ``index``, signing a new checkpoint first if none covers it."""
        latest = self.latest_checkpoint(db)
        if latest is None or latest.size <= index:
            latest = self.checkpoint(db, signer=signer, key_name=key_name, origin=origin)
            if latest is None or latest.size <= index:
                raise errors.NotFound(f"audit entry {index} does not exist")
        return self._receipt(db, index, latest)

    def _receipt(self, db: Session, index: int, cp: SignedCheckpoint) -> dict[str, Any]:
        proof = self.inclusion_proof(db, index, cp.size)
        return {"index": index, "checkpoint": cp.note, "inclusionProof": [_b64(p) for p in proof]}

    # ------------------------------------------------------------------ subtree roots

    def _check_size(self, db: Session, size: int, name: str) -> None:
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise errors.BadRequest(f"{name} must be a non-negative integer")
        if size > self.size(db):
            raise errors.BadRequest(f"{name} must not exceed the log size")

    def _range_roots(self, db: Session, ranges: Sequence[tuple[int, int]]) -> list[bytes]:
        """Roots of RFC 9162 node ranges, from cached perfect subtrees where possible."""
        pieces = {p for start, end in ranges for p in merkle.perfect_pieces(start, end)}
        known = self._valid_cached(db, pieces)
        for start, end in sorted(pieces - known.keys()):
            known[(start, end)] = self._compute_perfect(db, start, end)
        return [
            merkle.fold_pieces([known[p].root for p in merkle.perfect_pieces(start, end)])
            for start, end in ranges
        ]

    def _valid_cached(
        self, db: Session, pieces: set[tuple[int, int]]
    ) -> dict[tuple[int, int], _Node]:
        with self._cache_lock:
            hits = {p: self._cache[p] for p in pieces if p in self._cache}
        if not hits:
            return {}
        last = {end - 1 for _, end in hits}
        rows = db.execute(
            select(AuditEntry.idx, AuditEntry.leaf_hash).where(AuditEntry.idx.in_(last))
        )
        stored: dict[int, bytes] = {idx: leaf for idx, leaf in rows}  # noqa: C416
        valid: dict[tuple[int, int], _Node] = {}
        for piece, node in hits.items():
            if stored.get(piece[1] - 1) == node.last_leaf:
                valid[piece] = node
            else:
                with self._cache_lock:
                    self._cache.pop(piece, None)
        return valid

    def _leaves(self, db: Session, start: int, end: int) -> list[bytes]:
        rows = db.execute(
            select(AuditEntry.leaf_hash)
            .where(AuditEntry.idx >= start, AuditEntry.idx < end)
            .order_by(AuditEntry.idx)
        ).scalars()
        leaves = list(rows)
        if len(leaves) != end - start:
            raise errors.InternalError("audit log has a gap; run `bioverify audit verify`")
        return leaves

    def _compute_perfect(self, db: Session, start: int, end: int) -> _Node:
        """The aligned perfect subtree ``[start, end)``, caching its large nodes."""
        width = end - start
        if width > 1 << _LOAD_MAX_LEVEL:
            # Split, so cached halves (the older part of a growing log) are reused.
            mid = start + width // 2
            halves = {(start, mid), (mid, end)}
            known = self._valid_cached(db, halves)
            left = known.get((start, mid)) or self._compute_perfect(db, start, mid)
            right = known.get((mid, end)) or self._compute_perfect(db, mid, end)
            node = _Node(merkle.node_hash(left.root, right.root), right.last_leaf)
            self._remember(start, end, node)
            return node
        leaves = self._leaves(db, start, end)
        layer, size = leaves, 1
        while len(layer) > 1:
            layer = [merkle.node_hash(layer[i], layer[i + 1]) for i in range(0, len(layer), 2)]
            size *= 2
            if size >= 1 << CACHE_MIN_LEVEL:
                for i, root in enumerate(layer):
                    self._remember(
                        start + i * size,
                        start + (i + 1) * size,
                        _Node(root, leaves[(i + 1) * size - 1]),
                    )
        return _Node(layer[0], leaves[-1])

    def _remember(self, start: int, end: int, node: _Node) -> None:
        with self._cache_lock:
            if len(self._cache) < _CACHE_MAX_NODES:
                self._cache[(start, end)] = node
