"""Inclusion proofs from the log's public C2SP tlog-tiles (c2sp.org/tlog-tiles).

The service publishes its audit log's hashes without credentials:
``/v2/audit/tlog/checkpoint`` (the signed note) and ``/v2/audit/tlog/tile/<L>/<N>[.p/<W>]``.
Tile ``(L, N)`` holds the hashes of the perfect subtrees of ``256**L`` leaves number
``N*256`` onwards; the rightmost tile of a level is partial (``W`` < 256 hashes).
Any node of the tree of size ``n`` is ``2**r`` (``r < 8``) consecutive hashes of one
tile, so a proof needs O(log n) tiles.

A proof computed here and checked with :func:`bioverify_client.verify_receipt`
against the signed checkpoint is as strong as the receipt in a webhook: a wrong
tile leads to another root and fails. Pure: tiles come from a ``fetch`` callable.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from typing import Final

from bioverify_client._audit import HASH_SIZE

TILE_HEIGHT: Final = 8
TILE_WIDTH: Final = 1 << TILE_HEIGHT

#: ``fetch(level, index, width)`` -> the tile's bytes (``width`` hashes of 32 bytes).
TileFetch = Callable[[int, int, int], bytes]


class TileProofError(ValueError):
    """A tile is missing, too short, or the proof asked for is impossible."""


def tile_path(level: int, index: int, width: int = TILE_WIDTH) -> str:
    """``tile/<L>/<N>[.p/<W>]``, ``N`` in 3-digit groups, all but the last with ``x``."""
    if level < 0 or index < 0 or not 1 <= width <= TILE_WIDTH:
        raise TileProofError("tile level, index or width out of range")
    groups = [f"{index % 1000:03d}"]
    index //= 1000
    while index:
        groups.append(f"x{index % 1000:03d}")
        index //= 1000
    path = f"tile/{level}/{'/'.join(reversed(groups))}"
    return path if width == TILE_WIDTH else f"{path}.p/{width}"


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


class TiledTree:
    """Hashes of the tree of ``size`` leaves, read from its tiles (each fetched once)."""

    def __init__(self, size: int, fetch: TileFetch) -> None:
        if size < 1:
            raise TileProofError("the tree is empty")
        self.size = size
        self._fetch = fetch
        self._tiles: dict[tuple[int, int], list[bytes]] = {}

    def _tile(self, level: int, index: int) -> list[bytes]:
        key = (level, index)
        if key not in self._tiles:
            complete = self.size >> (TILE_HEIGHT * level)  # whole nodes at this level
            width = min(TILE_WIDTH, complete - index * TILE_WIDTH)
            if width < 1:
                raise TileProofError(f"tile {level}/{index} is beyond the tree")
            data = self._fetch(level, index, width)
            if len(data) != width * HASH_SIZE:
                raise TileProofError(f"tile {level}/{index} is not {width} hashes long")
            self._tiles[key] = [data[i : i + HASH_SIZE] for i in range(0, len(data), HASH_SIZE)]
        return self._tiles[key]

    def perfect(self, start: int, height: int) -> bytes:
        """The hash of the perfect subtree of ``2**height`` leaves from ``start`` (aligned)."""
        level, rest = divmod(height, TILE_HEIGHT)
        first = start >> (TILE_HEIGHT * level)
        tile, offset = divmod(first, TILE_WIDTH)
        hashes = self._tile(level, tile)[offset : offset + (1 << rest)]
        if len(hashes) != 1 << rest:
            raise TileProofError("the tiles do not hold this subtree")
        while len(hashes) > 1:
            hashes = [_node(hashes[i], hashes[i + 1]) for i in range(0, len(hashes), 2)]
        return hashes[0]

    def range_hash(self, start: int, end: int) -> bytes:
        """The RFC 9162 hash of leaves ``[start, end)`` (a node of a tree of any size)."""
        pieces: list[bytes] = []
        while start < end:
            # The largest aligned perfect subtree that starts here and fits.
            height = (end - start).bit_length() - 1
            while start % (1 << height):
                height -= 1
            pieces.append(self.perfect(start, height))
            start += 1 << height
        root = pieces[-1]
        for left in reversed(pieces[:-1]):
            root = _node(left, root)
        return root


def inclusion_proof(index: int, tree: TiledTree) -> list[bytes]:
    """The RFC 9162 audit path of leaf ``index`` (sibling first), read from tiles."""
    if not 0 <= index < tree.size:
        raise TileProofError("index must be smaller than the tree size")
    proof: list[bytes] = []
    start, end = 0, tree.size
    while end - start > 1:
        # Split at the largest power of two below the range's size (RFC 9162 PATH).
        split = 1 << ((end - start - 1).bit_length() - 1)
        if index < start + split:
            proof.append(tree.range_hash(start + split, end))
            end = start + split
        else:
            proof.append(tree.range_hash(start, start + split))
            start += split
    proof.reverse()
    return proof


def required_tiles(index: int, size: int) -> list[tuple[int, int, int]]:
    """``(level, index, width)`` of the tiles the proof of ``index`` in ``size`` reads.

    Which tiles a proof reads depends only on the two numbers, so a client can fetch
    them all first (concurrently, or with an async client) and compute the proof after.
    """
    if not 0 <= index < size:
        raise TileProofError(f"entry {index} is not in a checkpoint of size {size} (yet)")
    seen: dict[tuple[int, int, int], None] = {}

    def record(level: int, tile: int, width: int) -> bytes:
        seen[(level, tile, width)] = None
        return bytes(width * HASH_SIZE)

    inclusion_proof(index, TiledTree(size, record))
    return list(seen)


def checkpoint_size(note: str) -> int:
    """The tree size a checkpoint note states (unverified: ``verify_receipt`` checks the note)."""
    lines = note.split("\n")
    if len(lines) < 3 or not lines[1].isdigit():
        raise TileProofError("not a checkpoint note")
    return int(lines[1])


def receipt_from_tiles(
    index: int, note: str, tiles: dict[tuple[int, int, int], bytes]
) -> dict[str, object]:
    """A receipt ``{"index", "checkpoint", "inclusionProof"}`` for ``verify_receipt``."""
    size = checkpoint_size(note)

    def fetch(level: int, tile: int, width: int) -> bytes:
        try:
            return tiles[(level, tile, width)]
        except KeyError as exc:
            raise TileProofError(f"tile {tile_path(level, tile, width)} was not fetched") from exc

    proof = inclusion_proof(index, TiledTree(size, fetch))
    return {
        "index": index,
        "checkpoint": note,
        "inclusionProof": [base64.b64encode(p).decode() for p in proof],
    }


__all__ = [
    "TILE_WIDTH",
    "TileFetch",
    "TileProofError",
    "TiledTree",
    "checkpoint_size",
    "inclusion_proof",
    "receipt_from_tiles",
    "required_tiles",
    "tile_path",
]
