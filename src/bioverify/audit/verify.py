"""Recompute the whole audit log from the store and name the first thing that does not match.

Three checks, which together tie every stored body to the signed checkpoints:

1. Entries (in index ranges of 65,536, by worker processes when the log is
   large; :mod:`bioverify.audit.verify_chunk`): indexes are dense from 0 up to
   the head's size; each body, as stored, hashes to its stored leaf hash *and*
   to the leaf hash in its level-0 tile; each body is RFC 8785 canonical JSON
   recording its own ``index`` (:mod:`bioverify.audit.canonical`). The checker
   of a range also hashes its full level-0 tiles into their roots.
2. Tiles (in this process, as the ranges come back in order): every tile above
   level 0 is recomputed from those roots, which stored tiles must equal.
3. Checkpoints: every kept checkpoint and the head verify with one of the given
   keys, and at each one's size the tree head recomputed from the tiles equals
   its root. Consistency between checkpoints follows: all roots come from one
   sequence of leaves, so each earlier tree is a prefix of every later one.

A failed entry check names the first bad entry; a bad tile or checkpoint names
itself and the entries it covers. Memory: one chunk of entries per process plus
the tiles above level 0 (1/256 of the leaf hashes).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from contextlib import closing
from dataclasses import dataclass
from typing import Final, NamedTuple

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Connection, Engine, select
from sqlalchemy.orm import Session

from bioverify.audit.canonical import parse_canonical
from bioverify.audit.merkle import HASH_SIZE
from bioverify.audit.models import AuditCheckpoint, AuditEntry, AuditHead, AuditTile
from bioverify.audit.note import CheckpointError, parse_and_verify_checkpoint
from bioverify.audit.tiles import TILE_WIDTH, TreeEdge
from bioverify.audit.verify_chunk import (
    ChunkResult,
    Connect,
    Problem,
    check_entries,
    check_range,
    check_rows,
    dialect,
)
from bioverify.audit.verify_pool import checked_in_order

#: Entries per task: a multiple of the tile width, so a task reads whole level-0 tiles.
CHUNK: Final = 1 << 16
#: Below this many entries worker processes cost more than they save.
PARALLEL_MIN: Final = 200_000

#: ``progress(entries_checked, total_entries_or_None)``.
Progress = Callable[[int, int | None], None]


class CheckpointRow(NamedTuple):
    """One stored checkpoint as the verifier reads it."""

    tree_size: int
    root_hash: bytes
    note: str


class LogRows(NamedTuple):
    """A log given as rows (for logs exported from the store), entries in index order."""

    entries: Iterable[tuple[int, bytes, bytes]]
    checkpoints: Iterable[tuple[int, bytes, str]]


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """The verdict: ``first_bad_index`` names the first bad entry, ``bad_checkpoint`` a size."""

    ok: bool
    first_bad_index: int | None
    reason: str
    entries: int = 0
    checkpoints: int = 0
    bad_checkpoint: int | None = None


# ---------------------------------------------------------------- 1. entries


def _schema(bind: Connection | Engine) -> str | None:
    """The quoted schema an engine maps the tables into, if any (tests do)."""
    schema = (bind.get_execution_options().get("schema_translate_map") or {}).get(None)
    return bind.dialect.identifier_preparer.quote_schema(schema) if schema else None


def _connect_spec(engine: Engine) -> Connect:
    """How a worker process opens the store with the driver alone (no SQLAlchemy)."""
    args, kwargs = engine.dialect.create_connect_args(engine.url)
    kwargs = {k: v for k, v in kwargs.items() if k != "context"}  # psycopg's adapters: local
    module = engine.dialect.dbapi.__name__  # type: ignore[union-attr]
    return Connect(module, tuple(args), kwargs, _schema(engine))


def _check_here(conn: Connection, start: int, end: int) -> ChunkResult:
    dbapi = conn.connection.dbapi_connection
    module = conn.dialect.dbapi.__name__  # type: ignore[union-attr]
    return check_range(dbapi, dialect(module, _schema(conn)), start, end)


# ---------------------------------------------------------------- 2. and 3. tiles, checkpoints


class _TreeCheck:
    """Rebuilds the tiles above level 0 from the level-0 tiles and checks checkpoints."""

    def __init__(
        self,
        stored_upper: dict[tuple[int, int], bytes] | None,
        checkpoints: Sequence[CheckpointRow],
    ) -> None:
        self._upper = stored_upper
        self._pending = iter(checkpoints)
        self._next = next(self._pending, None)
        self.edge = TreeEdge()
        self.last_good = 0
        self.failure: VerifyReport | None = None

    def feed(self, leaves: bytes, roots: dict[int, bytes] | None = None) -> bool:
        """Add leaf hashes (``roots``: of the level-0 tiles they fill, if known).

        ``False`` once something failed (see :attr:`failure`).
        """
        while leaves and self.failure is None:
            room = len(leaves) // HASH_SIZE
            if self._next is not None:
                room = min(room, self._next.tree_size - self.edge.size)
            part, leaves = leaves[: room * HASH_SIZE], leaves[room * HASH_SIZE :]
            for (level, index), data in self.edge.append(part, roots).items():
                if self._upper is None or level == 0:
                    continue  # nothing stored to compare (an export), or level 0 itself
                stored = self._upper.get((level, index))
                if stored is None or stored[: len(data)] != data:
                    first = index * TILE_WIDTH ** (level + 1)
                    last = min((index + 1) * TILE_WIDTH ** (level + 1), self.edge.size)
                    self.failure = VerifyReport(
                        False,
                        None,
                        f"tile {level}/{index} does not match the tiles below it; "
                        f"an entry in [{first}, {last}) was rewritten with its leaf tile",
                        entries=self.edge.size,
                    )
                    return False
            self._at_checkpoints()
        return self.failure is None

    def _at_checkpoints(self) -> None:
        while self._next is not None and self._next.tree_size == self.edge.size:
            cp = self._next
            if self.edge.root() != bytes(cp.root_hash):
                self.failure = VerifyReport(
                    False,
                    None,
                    f"checkpoint at tree size {cp.tree_size}: recomputed root differs; "
                    f"an entry in [{self.last_good}, {cp.tree_size}) was rewritten with its hash",
                    entries=self.edge.size,
                    bad_checkpoint=cp.tree_size,
                )
                return
            self.last_good = cp.tree_size
            self._next = next(self._pending, None)

    def finish(self, total: int) -> VerifyReport | None:
        if self.failure is None and self.edge.size == 0:
            self._at_checkpoints()  # a checkpoint of the empty tree
        if self.failure is not None:
            return self.failure
        if self.edge.size < total:
            n = self.edge.size
            return VerifyReport(
                False, n, f"tile 0/{n // TILE_WIDTH} is missing or short: entry {n} has no leaf"
            )
        if self._next is not None:
            return VerifyReport(
                False,
                self.edge.size,
                f"checkpoint at tree size {self._next.tree_size} covers entries from "
                f"{self.edge.size} that are missing",
                entries=self.edge.size,
                bad_checkpoint=self._next.tree_size,
            )
        return None


# ---------------------------------------------------------------- the whole log


def _check_checkpoints(
    rows: Sequence[CheckpointRow], keys: Sequence[Ed25519PublicKey], key_name: str, origin: str
) -> tuple[list[CheckpointRow], VerifyReport | None]:
    ordered = sorted(set(rows), key=lambda r: r.tree_size)
    for row in ordered:
        try:
            cp = parse_and_verify_checkpoint(row.note, keys, key_name, origin)
        except CheckpointError as exc:
            return ordered, _bad_checkpoint(row.tree_size, f"note does not verify: {exc}")
        if cp.size != row.tree_size or cp.root != bytes(row.root_hash):
            return ordered, _bad_checkpoint(row.tree_size, "stored size or root differs from note")
    return ordered, None


def _bad_checkpoint(size: int, why: str) -> VerifyReport:
    return VerifyReport(False, None, f"checkpoint at tree size {size}: {why}", bad_checkpoint=size)


def _load(conn: Connection) -> tuple[list[CheckpointRow], int, int]:
    """Checkpoints (kept and head), the head's tree size, and one past the last stored index."""
    rows = [
        CheckpointRow(int(size), bytes(root), str(note))
        for size, root, note in conn.execute(
            select(AuditCheckpoint.tree_size, AuditCheckpoint.root_hash, AuditCheckpoint.note)
        )
    ]
    head = conn.execute(
        select(AuditHead.tree_size, AuditHead.checkpoint_size, AuditHead.root_hash, AuditHead.note)
    ).first()
    total = 0
    if head is not None:
        total = int(head.tree_size)
        if head.note is not None and head.checkpoint_size is not None:
            rows.append(
                CheckpointRow(int(head.checkpoint_size), bytes(head.root_hash or b""), head.note)
            )
    last = conn.scalar(select(AuditEntry.idx).order_by(AuditEntry.idx.desc()).limit(1))
    return rows, total, (int(last) + 1 if last is not None else 0)


def verify_log(
    source: Session | Engine | LogRows,
    *,
    public_keys: Ed25519PublicKey | Sequence[Ed25519PublicKey],
    key_name: str,
    origin: str,
    progress: Progress | None = None,
    workers: int = 1,
) -> VerifyReport:
    """Verify every entry, tile and checkpoint; the report names the first failure.

    ``public_keys`` are the checkpoint keys still trusted (current and rotated).
    A log without any checkpoint fails: nothing signed vouches for it. Given an
    :class:`Engine` on a file or server database and ``workers > 1``, logs of at
    least 200,000 entries have their entries checked by that many processes
    reading disjoint index ranges, while this process checks the tiles.
    """
    keys = [public_keys] if isinstance(public_keys, Ed25519PublicKey) else list(public_keys)
    if isinstance(source, LogRows):
        return _verify_rows(source, keys, key_name, origin)
    if isinstance(source, Session):
        return _verify_store(
            source.connection(),
            None,
            keys=keys,
            key_name=key_name,
            origin=origin,
            progress=progress,
            workers=1,
        )
    with source.connect() as conn:
        return _verify_store(
            conn,
            source,
            keys=keys,
            key_name=key_name,
            origin=origin,
            progress=progress,
            workers=workers,
        )


def _verify_store(
    conn: Connection,
    engine: Engine | None,
    *,
    keys: Sequence[Ed25519PublicKey],
    key_name: str,
    origin: str,
    progress: Progress | None,
    workers: int,
) -> VerifyReport:
    cp_rows, total, stored_end = _load(conn)
    ordered, bad = _check_checkpoints(cp_rows, keys, key_name, origin)
    if bad is not None:
        return bad
    if not ordered:
        return VerifyReport(False, None, "the log has no signed checkpoint")
    if ordered[-1].tree_size > total:
        return _bad_checkpoint(ordered[-1].tree_size, "covers more entries than the log holds")
    upper = {
        (int(level), int(idx)): bytes(data)
        for level, idx, data in conn.execute(
            select(AuditTile.level, AuditTile.idx, AuditTile.data).where(AuditTile.level > 0)
        )
    }
    tree = _TreeCheck(upper, ordered)
    entry_problem = _check_all(conn, engine, tree, total, workers, progress)
    if entry_problem is not None:
        return VerifyReport(False, entry_problem[0], entry_problem[1], entries=entry_problem[0])
    failure = tree.finish(total)
    if failure is not None:
        return failure
    if stored_end > total:
        return VerifyReport(
            False, total, f"entry {total} is stored but not in the tree (head size {total})"
        )
    return VerifyReport(True, None, "ok", entries=total, checkpoints=len(ordered))


def _check_all(  # noqa: PLR0917 - one call site, every argument is needed
    conn: Connection,
    engine: Engine | None,
    tree: _TreeCheck,
    total: int,
    workers: int,
    progress: Progress | None,
) -> Problem:
    """Check every entry (in worker processes when it pays) and feed the tiles to ``tree``.

    Ranges are taken in order, so the first problem reported is the first bad
    entry; the tiles above level 0 are rebuilt here from each range's level-0
    hashes and tile roots, which the range's checker computed.
    """
    bounds = [(lo, min(lo + CHUNK, total)) for lo in range(0, total, CHUNK)]
    memory = engine is None or engine.url.database in (None, "", ":memory:")
    if engine is not None and workers > 1 and total >= PARALLEL_MIN and not memory:
        results = checked_in_order(
            _connect_spec(engine), bounds, workers, lambda lo, hi: _check_here(conn, lo, hi)
        )
        with closing(results):  # a problem ends the pool now, not when collected
            return _consume(bounds, results, tree, progress)
    return _consume(bounds, (_check_here(conn, lo, hi) for lo, hi in bounds), tree, progress)


def _consume(
    bounds: Sequence[tuple[int, int]],
    results: Iterable[ChunkResult],
    tree: _TreeCheck,
    progress: Progress | None,
) -> Problem:
    """The first problem among the ranges' results, in order; feeds the tree meanwhile."""
    total = bounds[-1][1] if bounds else 0
    for (lo, hi), result in zip(bounds, results, strict=True):
        if result.problem is not None:
            return result.problem
        if tree.failure is None:  # entries are still checked: an entry problem comes first
            first = lo // TILE_WIDTH
            roots = {
                first + i: result.roots[i * HASH_SIZE : (i + 1) * HASH_SIZE]
                for i in range(len(result.roots) // HASH_SIZE)
            }
            tree.feed(result.level0, roots)
        if progress is not None:
            progress(hi, total)
    return None


def _verify_rows(
    source: LogRows, keys: Sequence[Ed25519PublicKey], key_name: str, origin: str
) -> VerifyReport:
    """An exported log: entries carry their leaf hashes; the tiles are rebuilt from them."""
    cp_rows = [CheckpointRow(int(n), bytes(r), str(t)) for n, r, t in source.checkpoints]
    ordered, bad = _check_checkpoints(cp_rows, keys, key_name, origin)
    if bad is not None:
        return bad
    if not ordered:
        return VerifyReport(False, None, "the log has no signed checkpoint")
    rows = [(int(i), bytes(b), bytes(h)) for i, b, h in source.entries]
    leaves = b"".join(h for _, _, h in rows)
    problem = check_rows(rows, 0, len(rows), leaves)
    if problem is not None:
        return VerifyReport(False, problem[0], problem[1], entries=problem[0])
    tree = _TreeCheck(None, ordered)
    tree.feed(leaves)
    failure = tree.finish(len(rows))
    if failure is not None:
        return failure
    return VerifyReport(True, None, "ok", entries=len(rows), checkpoints=len(ordered))


__all__ = [
    "CHUNK",
    "CheckpointRow",
    "LogRows",
    "Progress",
    "VerifyReport",
    "check_entries",
    "parse_canonical",
    "verify_log",
]
