"""Recompute the whole audit log from the store and name the first thing that does not match.

Three checks, which together tie every stored body to the signed checkpoints:

1. Entries (in index ranges, by worker processes when the log is large): indexes
   are dense from 0 up to the head's size; each body hashes to its stored leaf
   hash *and* to the leaf hash in its level-0 tile; each body is RFC 8785
   canonical JSON recording its own ``index`` (:mod:`bioverify.audit.canonical`).
2. Tiles (in this process, meanwhile): every tile above level 0 is recomputed from
   the level below, which stored tiles must equal.
3. Checkpoints: every kept checkpoint and the head verify with one of the given
   keys, and at each one's size the tree head recomputed from the tiles equals
   its root. Consistency between checkpoints follows: all roots come from one
   sequence of leaves, so each earlier tree is a prefix of every later one.

A failed entry check names the first bad entry; a bad tile or checkpoint names
itself and the entries it covers. Memory: one chunk of entries per process plus
the tiles above level 0 (1/256 of the leaf hashes).
"""

from __future__ import annotations

import hashlib
import multiprocessing
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any, Final, NamedTuple, cast

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Connection, Engine, create_engine, select
from sqlalchemy.orm import Session

from bioverify.audit.canonical import parse_canonical
from bioverify.audit.merkle import HASH_SIZE
from bioverify.audit.models import AuditCheckpoint, AuditEntry, AuditHead, AuditTile
from bioverify.audit.note import CheckpointError, parse_and_verify_checkpoint
from bioverify.audit.tiles import TILE_BYTES, TILE_WIDTH, TreeEdge

#: Entries per task: a multiple of the tile width, so a task reads whole level-0 tiles.
CHUNK: Final = 1 << 16
#: Below this many entries worker processes cost more than they save.
PARALLEL_MIN: Final = 200_000
_sha256 = hashlib.sha256
_SQLITE_ENTRIES: Final = (
    "SELECT idx, body, leaf_hash FROM audit_entries WHERE idx >= ? AND idx < ? ORDER BY idx"
)

#: ``progress(entries_checked, total_entries_or_None)``.
Progress = Callable[[int, int | None], None]
#: The first problem of a range: ``(index, reason)``.
Problem = tuple[int, str] | None


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


def _hash_problem(body: bytes, stored: bytes, tree_leaf: bytes, index: int) -> str:
    if _sha256(b"\x00" + body).digest() != stored:
        return f"entry {index}: stored leaf hash does not match its body"
    return f"entry {index}: body does not hash to the leaf in tile 0/{index // TILE_WIDTH}"


def check_entries(
    rows: Iterable[tuple[int, bytes, bytes]], start: int, end: int, level0: bytes
) -> Problem:
    """Check entries ``[start, end)`` against the level-0 tile hashes from ``start`` on.

    The loop is written out (no helper call per entry): it runs once per entry.
    """
    expected = start
    at = 0
    sha = _sha256
    parse = parse_canonical
    for idx, body, leaf in rows:
        if idx != expected:
            return expected, (
                f"entry {expected} is missing"
                if idx > expected
                else f"entry {idx} appears again after {expected - 1}"
            )
        if type(body) is not bytes:
            body = bytes(body)  # noqa: PLW2901 - drivers may hand out memoryviews
        digest = sha(b"\x00" + body).digest()
        tree_leaf = level0[at : at + HASH_SIZE]
        if digest != leaf or digest != tree_leaf:
            return expected, _hash_problem(body, bytes(leaf), tree_leaf, expected)
        obj = parse(body)
        if obj is None:
            return expected, f"entry {expected}: body is not RFC 8785 canonical JSON"
        recorded = obj.get("index")
        if recorded != expected or type(recorded) is not int:
            return expected, f"entry {expected}: body records index {recorded!r}"
        expected += 1
        at += HASH_SIZE
    if expected < end:
        return expected, f"entry {expected} is missing"
    return None


def _level0(conn: Connection, start: int, end: int) -> bytes:
    first, last = start // TILE_WIDTH, (end - 1) // TILE_WIDTH
    rows = conn.execute(
        select(AuditTile.idx, AuditTile.data)
        .where(AuditTile.level == 0, AuditTile.idx >= first, AuditTile.idx <= last)
        .order_by(AuditTile.idx)
    )
    out = bytearray()
    for n, (idx, data) in enumerate(rows, start=first):
        if idx != n:
            break  # a missing tile: the entries from here on will not match
        out += data
    return bytes(out)


def _check_chunk_on(conn: Connection, start: int, end: int) -> Problem:
    level0 = _level0(conn, start, end)[(start % TILE_WIDTH) * HASH_SIZE :]
    if conn.dialect.name == "sqlite":
        # The driver's own cursor: a quarter faster than result rows, on the hot path.
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(_SQLITE_ENTRIES, (start, end))
            rows: Iterable[tuple[int, bytes, bytes]] = iter(cursor.fetchone, None)
            return check_entries(rows, start, end, level0)
        finally:
            cursor.close()
    result = conn.execute(
        select(AuditEntry.idx, AuditEntry.body, AuditEntry.leaf_hash)
        .where(AuditEntry.idx >= start, AuditEntry.idx < end)
        .order_by(AuditEntry.idx)
    )
    # Rows unpack like tuples (SQLAlchemy 2.1 deprecates .tuples() for that reason).
    return check_entries(cast("Iterable[tuple[int, bytes, bytes]]", result), start, end, level0)


_WORKER_ENGINES: dict[str, Engine] = {}


def _check_chunk(url: str, options: dict[str, Any], start: int, end: int) -> Problem:
    """Worker process: check entries ``[start, end)``."""
    engine = _WORKER_ENGINES.get(url)
    if engine is None:
        engine = _WORKER_ENGINES[url] = create_engine(url).execution_options(**options)
    with engine.connect() as conn:
        return _check_chunk_on(conn, start, end)


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

    def feed(self, leaves: bytes) -> bool:
        """Add leaf hashes; ``False`` once something failed (see :attr:`failure`)."""
        while leaves and self.failure is None:
            room = len(leaves) // HASH_SIZE
            if self._next is not None:
                room = min(room, self._next.tree_size - self.edge.size)
            part, leaves = leaves[: room * HASH_SIZE], leaves[room * HASH_SIZE :]
            for (level, index), data in self.edge.append(part).items():
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


def _stream_level0(conn: Connection, total: int) -> Iterator[bytes]:
    """Level-0 tiles in order, cut to the tree's size; stops at the first missing one."""
    last = (total - 1) // TILE_WIDTH if total else -1
    rows = conn.execute(
        select(AuditTile.idx, AuditTile.data)
        .where(AuditTile.level == 0, AuditTile.idx <= last)
        .order_by(AuditTile.idx)
        .execution_options(yield_per=1024)
    )
    for expected, (idx, data) in enumerate(rows):
        if idx != expected:
            return
        width = min(TILE_WIDTH, total - idx * TILE_WIDTH)
        blob = bytes(data)
        yield blob[: width * HASH_SIZE]
        if len(blob) < min(TILE_BYTES, width * HASH_SIZE):
            return


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
    """Check every entry (in worker processes when it pays) and feed the tiles to ``tree``."""
    bounds = [(lo, min(lo + CHUNK, total)) for lo in range(0, total, CHUNK)]
    memory = engine is None or engine.url.database in (None, "", ":memory:")
    if engine is not None and workers > 1 and total >= PARALLEL_MIN and not memory:
        return _parallel(engine, bounds, workers, tree, conn, total, progress)
    for lo, hi in bounds:
        problem = _check_chunk_on(conn, lo, hi)
        if problem is not None:
            return problem
        if progress is not None:
            progress(hi, total)
    for blob in _stream_level0(conn, total):
        if not tree.feed(blob):
            break
    return None


def _parallel(  # noqa: PLR0917 - one call site, every argument is needed
    engine: Engine,
    bounds: Sequence[tuple[int, int]],
    workers: int,
    tree: _TreeCheck,
    conn: Connection,
    total: int,
    progress: Progress | None,
) -> Problem:
    url = engine.url.render_as_string(hide_password=False)
    options = dict(engine.get_execution_options())
    # spawn: safe even if the caller runs threads; workers import only this module.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures: list[Future[Problem]] = [
            pool.submit(_check_chunk, url, options, lo, hi) for lo, hi in bounds
        ]
        try:
            # The tiles are checked here while the workers hash the entries.
            for blob in _stream_level0(conn, total):
                if not tree.feed(blob):
                    break
            for (_, hi), future in zip(bounds, futures, strict=True):
                problem = future.result()
                if problem is not None:
                    return problem
                if progress is not None:
                    progress(hi, total)
        finally:
            for future in futures:
                future.cancel()
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
    problem = check_entries(rows, 0, len(rows), leaves)
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
