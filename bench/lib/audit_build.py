"""Synthetic audit logs for bench/audit.py, written straight into the store's layout.

- :func:`build_entries_log`: N real entries (bodies as the sequencer stores them),
  their level-0 and upper tiles, kept checkpoints and the signed head, on SQLite.
- :func:`build_tiles_only`: the tiles and head of an N-entry tree of random leaf
  hashes, without entry rows: enough for proofs, which read only tiles. This is
  how the 10M-entry figure stays within minutes; it is stated in the output.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import sqlite3
import uuid
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bioverify.audit.events import AuditEvent, build_entry
from bioverify.audit.note import sign_checkpoint
from bioverify.audit.tiles import TILE_WIDTH, TreeEdge

ORIGIN, KEY_NAME = "bench.bioverify.local/audit", "bioverify"
CLIENT = "8d7f6b2e-1c1d-4e5f-9a0b-123456789abc"


def entry(i: int) -> dict[str, object]:
    return build_entry(
        AuditEvent.SESSION_ENDED,
        client_id=CLIENT,
        session_id=str(uuid.UUID(int=i)),
        code=-9,
        subject_hashes={"customer": hashlib.sha256(str(i).encode()).hexdigest()},
        details={"status": "FAILED", "attempt": 1},
        at=dt.datetime.now(dt.UTC),
    )


def _write_tiles(conn: sqlite3.Connection, tiles: dict[tuple[int, int], bytes]) -> None:
    conn.executemany(
        "INSERT OR REPLACE INTO audit_tiles (level, idx, data) VALUES (?, ?, ?)",
        [(lv, ix, data) for (lv, ix), data in tiles.items()],
    )


def _write_head(conn: sqlite3.Connection, edge: TreeEdge, key: Ed25519PrivateKey, now: str) -> None:
    root = edge.root()
    note = sign_checkpoint(ORIGIN, edge.size, root, key, KEY_NAME)
    conn.execute(
        "INSERT INTO audit_head (id, tree_size, checkpoint_size, root_hash, note, signed_at) "
        "VALUES (1, ?, ?, ?, ?, ?)",
        (edge.size, edge.size, root, note, now),
    )


def build_entries_log(
    path: Path, n: int, key: Ed25519PrivateKey, every: int
) -> tuple[list[bytes], float]:
    """An n-entry log with a kept checkpoint every ``every`` entries; (bodies, seconds)."""
    start = dt.datetime.now(dt.UTC)
    template = entry(0)
    # ASCII-only bodies: json.dumps(sort_keys) is RFC 8785 for them (tested), and fast.
    enc = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=OFF")
    now = start.isoformat(sep=" ")
    edge = TreeEdge()
    bodies: list[bytes] = []
    rows: list[tuple[int, int, str, str, str, bytes, bytes, str]] = []
    leaves = bytearray()
    for i in range(n):
        session = str(uuid.UUID(int=i))
        body = enc.encode({**template, "sessionId": session, "index": i}).encode()
        leaf = hashlib.sha256(b"\x00" + body).digest()
        bodies.append(body)
        leaves += leaf
        rows.append((i, i + 1, CLIENT, session, "session:state:ended", body, leaf, now))
        if (i + 1) % every == 0:
            _write_tiles(conn, edge.append(bytes(leaves)))
            leaves.clear()
            root = edge.root()
            note = sign_checkpoint(ORIGIN, edge.size, root, key, KEY_NAME)
            conn.execute(
                "INSERT INTO audit_checkpoints VALUES (?, ?, ?, ?)", (edge.size, root, note, now)
            )
        if len(rows) == 50_000:
            conn.executemany(
                "INSERT INTO audit_entries (idx, queue_id, client_id, session_id, event, body, "
                "leaf_hash, created_at) VALUES (?,?,?,?,?,?,?,?)",
                rows,
            )
            rows.clear()
    conn.executemany(
        "INSERT INTO audit_entries (idx, queue_id, client_id, session_id, event, body, "
        "leaf_hash, created_at) VALUES (?,?,?,?,?,?,?,?)",
        rows,
    )
    _write_tiles(conn, edge.append(bytes(leaves)))
    _write_head(conn, edge, key, now)
    conn.commit()
    conn.close()
    return bodies, (dt.datetime.now(dt.UTC) - start).total_seconds()


def build_tiles_only(path: Path, n: int, key: Ed25519PrivateKey) -> float:
    """Tiles and head of an n-leaf tree of random leaf hashes (no entry rows); seconds."""
    start = dt.datetime.now(dt.UTC)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=OFF")
    edge = TreeEdge()
    chunk = TILE_WIDTH * TILE_WIDTH  # one full level-1 tile per step
    for lo in range(0, n, chunk):
        _write_tiles(conn, edge.append(os.urandom(32 * min(chunk, n - lo))))
    _write_head(conn, edge, key, start.isoformat(sep=" "))
    conn.commit()
    conn.close()
    return (dt.datetime.now(dt.UTC) - start).total_seconds()


__all__ = ["KEY_NAME", "ORIGIN", "build_entries_log", "build_tiles_only", "entry"]
