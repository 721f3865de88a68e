"""A tenant's gallery on disk: sealed (encrypted and authenticated) chunks.

The caller supplies the sealing (the tenant's data key, as for templates), so no
plaintext template touches the disk. Layout::

    MAGIC | record* ;  record = length (8 bytes, big-endian) | sealed bytes

Record 0 is a JSON header (snapshot id, model version, change-log watermark, row
count, part sizes, chunk count); the others are the payload (customer ids as JSON,
float32 rows, serialised PQ codes) cut into chunks of at most ``CHUNK_BYTES`` (AES-GCM
calls take at most 2 GiB). Every chunk is bound to the snapshot id, its number and
the count, so chunks cannot be reordered, dropped, or mixed between snapshots.
A file is written beside its final name and renamed into place (atomic).
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Protocol

import numpy as np

from bioverify.engine.gallery_index import DIM, TenantState

MAGIC: Final = b"BVGALLERY1\n"
CHUNK_BYTES: Final = 64 * 1024 * 1024
_LEN: Final = 8


class SnapshotError(ValueError):
    """The file is not a readable snapshot (truncated, tampered, other key or tenant)."""


class Sealer(Protocol):
    """Encrypts and authenticates bytes for one tenant."""

    def seal(self, data: bytes, aad: bytes) -> bytes: ...

    def open(self, blob: bytes, aad: bytes) -> bytes: ...


@dataclass(frozen=True)
class Snapshot:
    model_version: str
    watermark: int  # the change-log position the rows reflect
    state: TenantState


def _chunk_aad(tenant: str, snapshot_id: str, number: int, total: int) -> bytes:
    return f"gallery-snapshot:{tenant}:{snapshot_id}:{number}/{total}".encode()


def _header_aad(tenant: str) -> bytes:
    return f"gallery-snapshot-header:{tenant}".encode()


def write(path: Path, tenant: str, snapshot: Snapshot, sealer: Sealer) -> int:
    """Seal ``snapshot`` into ``path`` (atomically); returns the bytes written."""
    state = snapshot.state
    ids = json.dumps(state.ids, separators=(",", ":")).encode()
    rows = np.ascontiguousarray(state.matrix, dtype=np.float32).reshape(-1).view(np.uint8).data
    codes = state.codes or b""
    parts = [memoryview(ids), rows, memoryview(codes)]
    total_bytes = sum(len(p) for p in parts)
    chunks = max(1, -(-total_bytes // CHUNK_BYTES))
    snapshot_id = secrets.token_hex(16)
    header = {
        "id": snapshot_id,
        "modelVersion": snapshot.model_version,
        "watermark": snapshot.watermark,
        "rows": len(state.ids),
        "parts": [len(p) for p in parts],
        "hasCodes": state.codes is not None,
        "chunks": chunks,
    }
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    written = 0
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:

            def record(blob: bytes) -> None:
                nonlocal written
                out.write(len(blob).to_bytes(_LEN, "big"))
                out.write(blob)
                written += _LEN + len(blob)

            out.write(MAGIC)
            written += len(MAGIC)
            record(sealer.seal(json.dumps(header).encode(), _header_aad(tenant)))
            buffer = bytearray()
            number = 0
            for part in parts:
                offset = 0
                while offset < len(part):
                    take = min(CHUNK_BYTES - len(buffer), len(part) - offset)
                    buffer += part[offset : offset + take]
                    offset += take
                    if len(buffer) == CHUNK_BYTES:
                        number += 1
                        aad = _chunk_aad(tenant, snapshot_id, number, chunks)
                        record(sealer.seal(bytes(buffer), aad))
                        buffer.clear()
            if buffer or number == 0:
                number += 1
                record(sealer.seal(bytes(buffer), _chunk_aad(tenant, snapshot_id, number, chunks)))
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return written


def read(path: Path, tenant: str, sealer: Sealer) -> Snapshot:
    """Open a snapshot written by :func:`write`; :class:`SnapshotError` if it is not whole.

    Errors from ``sealer.open`` (wrong key, tampering) propagate as they are.
    """
    with path.open("rb") as handle:
        if handle.read(len(MAGIC)) != MAGIC:
            raise SnapshotError("not a gallery snapshot")

        def record() -> bytes:
            size = int.from_bytes(handle.read(_LEN), "big")
            blob = handle.read(size)
            if size == 0 or len(blob) != size:
                raise SnapshotError("gallery snapshot is truncated")
            return blob

        try:
            header = json.loads(sealer.open(record(), _header_aad(tenant)))
            snapshot_id = str(header["id"])
            chunks = int(header["chunks"])
            sizes = [int(n) for n in header["parts"]]
            rows = int(header["rows"])
        except (KeyError, TypeError, ValueError) as exc:
            raise SnapshotError("gallery snapshot header is malformed") from exc
        payload = bytearray(sum(sizes))
        offset = 0
        for number in range(1, chunks + 1):
            plain = sealer.open(record(), _chunk_aad(tenant, snapshot_id, number, chunks))
            if offset + len(plain) > len(payload):
                raise SnapshotError("gallery snapshot is longer than its header says")
            payload[offset : offset + len(plain)] = plain
            offset += len(plain)
        if offset != len(payload) or handle.read(1):
            raise SnapshotError("gallery snapshot does not match its header")
    view = memoryview(payload)
    ids_end = sizes[0]
    rows_end = ids_end + sizes[1]
    ids = json.loads(bytes(view[:ids_end]))
    if not isinstance(ids, list) or len(ids) != rows or sizes[1] != rows * DIM * 4:
        raise SnapshotError("gallery snapshot rows and ids disagree")
    matrix = np.frombuffer(payload, dtype=np.float32, count=rows * DIM, offset=ids_end)
    codes = bytes(view[rows_end:]) if header.get("hasCodes") else None
    state = TenantState([str(i) for i in ids], matrix.reshape(rows, DIM), codes)
    return Snapshot(str(header["modelVersion"]), int(header["watermark"]), state)


__all__ = ["MAGIC", "Sealer", "Snapshot", "SnapshotError", "read", "write"]
