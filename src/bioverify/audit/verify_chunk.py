"""Check one range of entries against the level-0 tiles: the hot loop of ``audit verify``.

Kept apart from :mod:`bioverify.audit.verify` so a worker process imports only
this (no SQLAlchemy): the driver, hashlib, orjson and the tile arithmetic. A
range is read with the driver's own cursor into plain tuples, and checked in
bulk: every leaf hash at once (one comparison of the joined digests with the
stored hashes and with the level-0 tiles), canonical form a few hundred bodies
per orjson call (:func:`~bioverify.audit.canonical.parse_canonical_many`). Only
when something does not hold does :func:`check_entries` walk the range entry by
entry, to name the first bad one.
"""

from __future__ import annotations

import gc
import hashlib
import importlib
from collections.abc import Iterable, Sequence
from typing import Any, Final, NamedTuple

from bioverify.audit.canonical import parse_canonical, parse_canonical_many
from bioverify.audit.merkle import HASH_SIZE
from bioverify.audit.tiles import TILE_BYTES, TILE_WIDTH, tile_root

#: Bodies per orjson call: large enough to pay for the call, small enough for the cache.
BATCH: Final = 256
_sha256 = hashlib.sha256
_ENTRIES: Final = (
    "SELECT idx, body, leaf_hash FROM {s}audit_entries WHERE idx >= {p} AND idx < {p} ORDER BY idx"
)
_LEVEL0: Final = (
    "SELECT idx, data FROM {s}audit_tiles WHERE level = 0 AND idx >= {p} AND idx <= {p} "
    "ORDER BY idx"
)

#: The first problem of a range: ``(index, reason)``.
Problem = tuple[int, str] | None


class Connect(NamedTuple):
    """How a worker opens its own connection: the DB-API module and its connect arguments.

    ``schema`` is the quoted schema the tables live in, when an engine maps it
    (``schema_translate_map``) rather than the connection's search path.
    """

    module: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    schema: str | None = None


class Dialect(NamedTuple):
    """How to write this range's SQL: the driver's parameter mark and the table prefix."""

    mark: str
    prefix: str = ""


class ChunkResult(NamedTuple):
    """A range's verdict, its level-0 hashes, and the roots of its full level-0 tiles."""

    problem: Problem
    level0: bytes
    roots: bytes


def _hash_problem(body: bytes, stored: bytes, tree_leaf: bytes, index: int) -> str:
    if _sha256(b"\x00" + body).digest() != stored:
        return f"entry {index}: stored leaf hash does not match its body"
    return f"entry {index}: body does not hash to the leaf in tile 0/{index // TILE_WIDTH}"


def _as_bytes(value: object) -> bytes:
    # SQLite keeps whatever type was written: a body stored as text is judged as its UTF-8.
    if isinstance(value, str):
        return value.encode()
    return bytes(value)  # type: ignore[call-overload,no-any-return]


def check_entries(
    rows: Iterable[tuple[int, bytes, bytes]], start: int, end: int, level0: bytes
) -> Problem:
    """Entry by entry, ``[start, end)`` against the level-0 hashes from ``start`` on."""
    expected = start
    at = 0
    for idx, raw, raw_leaf in rows:
        if idx != expected:
            return expected, (
                f"entry {expected} is missing"
                if idx > expected
                else f"entry {idx} appears again after {expected - 1}"
            )
        body, leaf = _as_bytes(raw), _as_bytes(raw_leaf)
        digest = _sha256(b"\x00" + body).digest()
        tree_leaf = level0[at : at + HASH_SIZE]
        if digest != leaf or digest != tree_leaf:
            return expected, _hash_problem(body, leaf, tree_leaf, expected)
        obj = parse_canonical(body)
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


def _records_indexes(objs: Sequence[dict[str, Any]], first: int) -> bool:
    recorded = [obj.get("index") for obj in objs]
    # type() as well: True == 1, and a body recording "index": true is not entry 1.
    return recorded == list(range(first, first + len(objs))) and set(map(type, recorded)) == {int}


def check_rows(
    rows: Sequence[tuple[int, bytes, bytes]], start: int, end: int, level0: bytes
) -> Problem:
    """Check ``[start, end)`` in bulk; :func:`check_entries` names the first bad entry."""
    if not rows:
        return check_entries(rows, start, end, level0)
    idxs, bodies, leaves = zip(*rows, strict=True)
    if len(rows) != end - start or list(idxs) != list(range(start, end)):
        return check_entries(rows, start, end, level0)
    sha = _sha256
    try:
        digests = b"".join([sha(b"\x00" + body).digest() for body in bodies])
        stored = b"".join(leaves)
    except TypeError:  # a value stored as text: judged one by one
        return check_entries(rows, start, end, level0)
    if digests != stored or digests != level0[: len(digests)]:
        return check_entries(rows, start, end, level0)
    for lo in range(0, len(bodies), BATCH):
        batch = bodies[lo : lo + BATCH]
        objs = parse_canonical_many(batch)
        if objs is None or not _records_indexes(objs, start + lo):
            # In doubt (or bad): entry by entry, from this batch on.
            return check_entries(rows[lo:], start + lo, end, level0[lo * HASH_SIZE :])
    return None


def read_level0(cursor: Any, sql: Dialect, start: int, end: int) -> bytes:
    """The level-0 hashes of ``[start, end)`` from the stored tiles; short if one is missing."""
    first, last = start // TILE_WIDTH, (end - 1) // TILE_WIDTH
    cursor.execute(_LEVEL0.format(p=sql.mark, s=sql.prefix), (first, last))
    out = bytearray()
    for n, (idx, data) in enumerate(cursor.fetchall(), start=first):
        if idx != n:
            break  # a missing tile: the entries from here on will not match
        out += data
    skip = (start % TILE_WIDTH) * HASH_SIZE
    return bytes(out[skip : skip + (end - start) * HASH_SIZE])


def check_range(dbapi_conn: Any, sql: Dialect, start: int, end: int) -> ChunkResult:
    """Check entries ``[start, end)`` on a DB-API connection."""
    # The range's rows and decoded bodies are many young objects and no cycles: with
    # the collector on, it would walk them again and again (a third of the time).
    collecting = gc.isenabled()
    gc.disable()
    cursor = dbapi_conn.cursor()
    try:
        level0 = read_level0(cursor, sql, start, end)
        cursor.execute(_ENTRIES.format(p=sql.mark, s=sql.prefix), (start, end))
        rows = cursor.fetchall()
        problem = check_rows(rows, start, end, level0)
    finally:
        cursor.close()
        if collecting:
            gc.enable()
    if problem is not None:
        return ChunkResult(problem, b"", b"")
    roots = b""
    if start % TILE_WIDTH == 0:
        full = (end - start) // TILE_WIDTH
        roots = b"".join(
            [tile_root(level0[i * TILE_BYTES : (i + 1) * TILE_BYTES]) for i in range(full)]
        )
    return ChunkResult(None, level0, roots)


#: The worker's connection, opened on its first range.
_OPEN: list[tuple[Connect, Any]] = []


def dialect(module: str, schema: str | None) -> Dialect:
    """The SQL dialect of a DB-API module (sqlite3: ``?``; psycopg: ``%s``) and schema."""
    return Dialect("?" if module.startswith("sqlite3") else "%s", f"{schema}." if schema else "")


def check_range_in_worker(connect: Connect, start: int, end: int) -> ChunkResult:
    """Worker process: one connection for the process's life, one range per call."""
    if not _OPEN or _OPEN[0][0] != connect:
        driver = importlib.import_module(connect.module)
        _OPEN[:] = [(connect, driver.connect(*connect.args, **connect.kwargs))]
    conn = _OPEN[0][1]
    try:
        return check_range(conn, dialect(connect.module, connect.schema), start, end)
    finally:
        conn.rollback()  # read-only; end the snapshot so nothing is held between ranges


__all__ = [
    "BATCH",
    "ChunkResult",
    "Connect",
    "Dialect",
    "Problem",
    "check_entries",
    "check_range",
    "check_range_in_worker",
    "check_rows",
    "dialect",
    "read_level0",
]
