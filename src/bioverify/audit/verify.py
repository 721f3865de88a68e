"""Recompute the whole audit log from the store and name the first thing that does not match.

Checks, in index order: indexes are dense from 0; each body is RFC 8785
canonical JSON carrying its own ``index``; its leaf hash is the stored one; and
at every checkpoint's size, the recomputed tree head equals the checkpoint's
root, whose signed note verifies with one of the given keys. Consistency of
consecutive checkpoints follows: both roots are recomputed from one sequence of
leaves, so the earlier tree is a prefix of the later one.

Runs in O(log n) memory plus one page of entries; entries stream in pages.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any, Final, NamedTuple

import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Engine, Select, create_engine, select
from sqlalchemy.orm import Session

from bioverify.audit.merkle import HASH_SIZE, CompactRange
from bioverify.audit.models import AuditCheckpoint, AuditEntry
from bioverify.audit.note import CheckpointError, parse_and_verify_checkpoint

_PAGE: Final = 20_000
#: Entries per worker task, and the log size from which workers pay off.
_CHUNK: Final = 50_000
_PARALLEL_MIN: Final = 200_000
_sha256 = hashlib.sha256
_ENCODER: Final = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)

#: ``progress(entries_checked, total_entries_or_None)``.
Progress = Callable[[int, int | None], None]


class EntryRow(NamedTuple):
    """One stored entry as the verifier reads it."""

    idx: int
    body: bytes
    leaf_hash: bytes


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


class _NotSimpleError(Exception):
    """A body holds a float or a large integer: leave it to the full RFC 8785 encoder."""


def _no_float(text: str) -> float:
    raise _NotSimpleError


def _small_int(text: str) -> int:
    # Integers beyond 2**53 are not RFC 8785 numbers; rfc8785 decides about them.
    if len(text) > 15:
        raise _NotSimpleError
    return int(text)


_DECODER: Final = json.JSONDecoder(parse_float=_no_float, parse_int=_small_int)
_SCAN: Final[Callable[[str, int], tuple[Any, int]]] = _DECODER.scan_once  # type: ignore[attr-defined]


def parse_canonical(body: bytes) -> dict[str, Any] | None:
    """The JSON object of ``body`` if ``body`` is its RFC 8785 form, else ``None``.

    Fast path: for ASCII text with no floats and no integer beyond 15 characters,
    RFC 8785 is exactly ``json.dumps(sort_keys=True)`` with compact separators
    (keys sort the same by UTF-16 unit and by code point when ASCII; escapes
    agree), a property the tests check against ``rfc8785``. Anything else goes
    to ``rfc8785`` itself.
    """
    try:
        text = body.decode("utf-8")
        # scan_once is the C scanner behind decode(); the end check refuses trailing data.
        obj, end = _SCAN(text, 0)
        if end != len(text):
            return None
        simple = text.isascii()
    except _NotSimpleError:
        simple = False
        try:
            obj = json.loads(text)
        except ValueError:
            return None
    except (ValueError, StopIteration):  # StopIteration: scan_once found no value
        return None
    if type(obj) is not dict:
        return None
    try:
        if simple:
            return obj if _ENCODER.encode(obj) == text else None
        return obj if rfc8785.dumps(obj) == body else None
    except (ValueError, TypeError, UnicodeError, rfc8785.CanonicalizationError):
        return None


def _entry_problem(body: bytes, leaf: bytes, expected: int) -> str | None:
    if _sha256(b"\x00" + body).digest() != leaf:
        return f"entry {expected}: stored leaf hash does not match its body"
    obj = parse_canonical(body)
    if obj is None:
        return f"entry {expected}: body is not RFC 8785 canonical JSON"
    index = obj.get("index")
    if type(index) is not int or index != expected:
        return f"entry {expected}: body records index {index!r}"
    return None


#: A checked run of entries: their leaf hashes, then the first problem (index, reason).
_Batch = tuple[list[bytes], tuple[int, str] | None]


def _check_rows(rows: Iterable[tuple[int, bytes, bytes]], start: int, end: int | None) -> _Batch:
    """Check consecutive entries from index ``start`` (to ``end`` when known)."""
    leaves: list[bytes] = []
    expected = start
    for idx, body, leaf in rows:
        if idx != expected:
            why = (
                f"entry {expected} is missing"
                if idx > expected
                else (f"entry {idx} appears again after {expected - 1}")
            )
            return leaves, (expected, why)
        problem = _entry_problem(body, leaf, expected)
        if problem is not None:
            return leaves, (expected, problem)
        leaves.append(leaf)
        expected += 1
    if end is not None and expected < end:
        return leaves, (expected, f"entry {expected} is missing")
    return leaves, None


def _entry_query(start: int, end: int | None, limit: int | None) -> Select[int, bytes, bytes]:
    query = select(AuditEntry.idx, AuditEntry.body, AuditEntry.leaf_hash).where(
        AuditEntry.idx >= start
    )
    if end is not None:
        query = query.where(AuditEntry.idx < end)
    return query.order_by(AuditEntry.idx).limit(limit)


def _db_batches(session: Session) -> Iterator[_Batch]:
    start = 0
    while True:
        # Keyset pagination keeps memory flat and each query on the primary key.
        rows = session.connection().execute(_entry_query(start, None, _PAGE)).all()
        if not rows:
            return
        batch = _check_rows(rows, start, None)
        yield batch
        if batch[1] is not None:
            return
        start += len(rows)


_WORKER_ENGINES: dict[str, Engine] = {}


def _check_chunk(url: str, options: dict[str, Any], start: int, end: int) -> tuple[bytes, Any]:
    """Worker process: check entries ``[start, end)``; leaf hashes come back concatenated."""
    engine = _WORKER_ENGINES.get(url)
    if engine is None:
        engine = _WORKER_ENGINES[url] = create_engine(url).execution_options(**options)
    with engine.connect() as conn:
        rows = conn.execute(_entry_query(start, end, None))
        leaves, problem = _check_rows(rows, start, end)
    return b"".join(leaves), problem


def _parallel_batches(engine: Engine, total: int, workers: int) -> Iterator[_Batch]:
    url = engine.url.render_as_string(hide_password=False)
    options = dict(engine.get_execution_options())
    bounds = [(lo, min(lo + _CHUNK, total)) for lo in range(0, total, _CHUNK)]
    # spawn: safe even if the caller runs threads; workers import only this module.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures = [pool.submit(_check_chunk, url, options, lo, hi) for lo, hi in bounds]
        try:
            for future in futures:
                blob, problem = future.result()
                yield [blob[i : i + HASH_SIZE] for i in range(0, len(blob), HASH_SIZE)], problem
                if problem is not None:
                    return
        finally:
            for future in futures:
                future.cancel()


def _load(session: Session) -> tuple[list[CheckpointRow], int]:
    last = session.scalar(select(AuditEntry.idx).order_by(AuditEntry.idx.desc()).limit(1))
    checkpoints = [
        CheckpointRow(size, root, note)
        for size, root, note in session.execute(
            select(AuditCheckpoint.tree_size, AuditCheckpoint.root_hash, AuditCheckpoint.note)
        )
    ]
    return checkpoints, (last + 1 if last is not None else 0)


def _check_checkpoints(
    rows: Sequence[CheckpointRow], keys: Sequence[Ed25519PublicKey], key_name: str, origin: str
) -> tuple[list[CheckpointRow], VerifyReport | None]:
    ordered = sorted(rows, key=lambda r: r.tree_size)
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


def verify_log(
    source: Session | Engine | LogRows,
    *,
    public_keys: Ed25519PublicKey | Sequence[Ed25519PublicKey],
    key_name: str,
    origin: str,
    progress: Progress | None = None,
    workers: int = 1,
) -> VerifyReport:
    """Verify every entry and checkpoint; the report names the first failure.

    ``public_keys`` are the checkpoint keys still trusted (current and rotated).
    A log without any checkpoint fails: nothing signed vouches for it. Given an
    :class:`Engine` on a file or server database and ``workers > 1``, logs of at
    least 200,000 entries are checked by that many processes reading disjoint
    index ranges (worth it only on idle cores: see ``bench/audit.py``).
    """
    keys = [public_keys] if isinstance(public_keys, Ed25519PublicKey) else list(public_keys)
    total: int | None = None
    if isinstance(source, Engine):
        with Session(source) as session:
            cp_rows, total = _load(session)
    elif isinstance(source, Session):
        cp_rows, total = _load(source)
    else:
        cp_rows = [CheckpointRow(int(n), bytes(r), str(t)) for n, r, t in source.checkpoints]
    ordered, bad = _check_checkpoints(cp_rows, keys, key_name, origin)
    if bad is not None:
        return bad
    if not ordered:
        return VerifyReport(False, None, "the log has no signed checkpoint")
    if isinstance(source, Engine):
        count = max(1, workers)
        memory = source.url.database in (None, "", ":memory:")
        if count > 1 and total is not None and total >= _PARALLEL_MIN and not memory:
            return _replay(_parallel_batches(source, total, count), ordered, total, progress)
        with Session(source) as session:
            return _replay(_db_batches(session), ordered, total, progress)
    if isinstance(source, Session):
        return _replay(_db_batches(source), ordered, total, progress)
    rows = ((int(i), bytes(b), bytes(h)) for i, b, h in source.entries)
    return _replay(iter([_check_rows(rows, 0, None)]), ordered, total, progress)


def _replay(
    batches: Iterator[_Batch],
    ordered: Sequence[CheckpointRow],
    total: int | None,
    progress: Progress | None,
) -> VerifyReport:
    """Fold checked leaves into the tree in order, comparing heads with the checkpoints."""
    tree = CompactRange()
    pending = iter(ordered)
    nxt = next(pending, None)
    last_good = 0
    for leaves, problem in batches:
        for leaf in leaves:
            tree.append(leaf)
            while nxt is not None and nxt.tree_size == tree.size:
                if tree.root() != bytes(nxt.root_hash):
                    return VerifyReport(
                        False,
                        None,
                        f"checkpoint at tree size {nxt.tree_size}: recomputed root differs; "
                        f"an entry in [{last_good}, {nxt.tree_size}) was rewritten with its hash",
                        entries=tree.size,
                        bad_checkpoint=nxt.tree_size,
                    )
                last_good = nxt.tree_size
                nxt = next(pending, None)
        if problem is not None:
            return VerifyReport(False, problem[0], problem[1], entries=tree.size)
        if progress is not None:
            progress(tree.size, total)
    if nxt is not None:
        return VerifyReport(
            False,
            tree.size,
            f"checkpoint at tree size {nxt.tree_size} covers entries from {tree.size} "
            "that are missing",
            entries=tree.size,
            bad_checkpoint=nxt.tree_size,
        )
    return VerifyReport(True, None, "ok", entries=tree.size, checkpoints=len(ordered))


__all__ = [
    "CheckpointRow",
    "EntryRow",
    "LogRows",
    "Progress",
    "VerifyReport",
    "parse_canonical",
    "verify_log",
]
