"""The tree as C2SP tlog-tiles (c2sp.org/tlog-tiles): 256-wide tiles of hashes (pure, no I/O).

Tile ``(L, N)`` holds the Merkle tree hashes of the subtrees of ``256**L`` leaves
number ``N*256`` to ``N*256 + 255``: level 0 holds leaf hashes, level ``L + 1``
holds the root of each *full* tile of level ``L``. The rightmost tile of each
level is partial (1 to 255 hashes) and grows in place; a partial tile is never
hashed into the level above. Every aligned perfect subtree of the log is then
``2**r`` consecutive hashes (``r < 8``) of a single tile, so any tree head or
proof needs one tile per perfect piece: O(log n) tiles, whatever the log size.

The client side of the tests implements the same specification independently;
this module is the server's and the verifier's.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final

from bioverify.audit.merkle import EMPTY_ROOT, HASH_SIZE, fold_pieces, perfect_pieces

TILE_HEIGHT: Final = 8
TILE_WIDTH: Final = 1 << TILE_HEIGHT
TILE_BYTES: Final = TILE_WIDTH * HASH_SIZE
MAX_LEVEL: Final = 63
_NODE: Final = b"\x01"
_sha256 = hashlib.sha256

#: ``(level, tile index)``.
TileKey = tuple[int, int]
_LEVEL_RE: Final = re.compile(r"0|[1-9][0-9]?")
_WIDTH_RE: Final = re.compile(r"[1-9][0-9]{0,2}")
_GROUP_RE: Final = re.compile(r"[0-9]{3}")


class TileError(ValueError):
    """A tile path is malformed, or a tile the tree needs is missing or too short."""


def encode_index(index: int) -> str:
    """``N`` as tlog-tiles path elements: 1234067 -> ``x001/x234/067``."""
    if index < 0:
        raise TileError("tile index must not be negative")
    groups = []
    while True:
        groups.append(f"{index % 1000:03d}")
        index //= 1000
        if index == 0:
            break
    groups.reverse()
    return "/".join(["x" + g for g in groups[:-1]] + [groups[-1]])


def tile_path(level: int, index: int, width: int = TILE_WIDTH) -> str:
    """The path of a tile below the log prefix, with ``.p/W`` when partial."""
    path = f"tile/{level}/{encode_index(index)}"
    return path if width == TILE_WIDTH else f"{path}.p/{width}"


def parse_tile_path(level_text: str, rest: str) -> tuple[int, int, int]:
    """``(level, index, width)`` of ``tile/<level_text>/<rest>``; :class:`TileError` if bad."""
    if not _LEVEL_RE.fullmatch(level_text) or int(level_text) > MAX_LEVEL:
        raise TileError("tile level must be a decimal integer from 0 to 63")
    width = TILE_WIDTH
    index_text = rest
    if ".p/" in rest:
        index_text, _, width_text = rest.partition(".p/")
        if not _WIDTH_RE.fullmatch(width_text) or int(width_text) >= TILE_WIDTH:
            raise TileError("partial tile width must be a decimal integer from 1 to 255")
        width = int(width_text)
    parts = index_text.split("/")
    if not all(p.startswith("x") for p in parts[:-1]) or not all(
        _GROUP_RE.fullmatch(p.removeprefix("x")) for p in parts[:-1]
    ):
        raise TileError(
            "tile index path elements other than the last must be x followed by 3 digits"
        )
    if not _GROUP_RE.fullmatch(parts[-1]) or len(parts) > 7:
        raise TileError("tile index must be zero-padded 3-digit path elements")
    index = int("".join(p.removeprefix("x") for p in parts))
    return int(level_text), index, width


def tile_root(data: bytes | memoryview, count: int | None = None, offset: int = 0) -> bytes:
    """The Merkle root of ``count`` (a power of two) hashes of ``data`` from hash ``offset``."""
    n = TILE_WIDTH if count is None else count
    start = offset * HASH_SIZE
    layer = bytes(data[start : start + n * HASH_SIZE])
    if len(layer) != n * HASH_SIZE:
        raise TileError("tile is shorter than the subtree it must hold")
    while n > 1:
        # Two adjacent 32-byte hashes are exactly one interior node's input.
        layer = b"".join(
            [
                _sha256(_NODE + layer[i : i + 2 * HASH_SIZE]).digest()
                for i in range(0, n * HASH_SIZE, 2 * HASH_SIZE)
            ]
        )
        n //= 2
    return layer


def piece_location(start: int, end: int) -> tuple[TileKey, int, int]:
    """Where an aligned perfect subtree ``[start, end)`` lives: tile, first hash, hash count."""
    width = end - start
    k = width.bit_length() - 1
    level, r = divmod(k, TILE_HEIGHT)
    first = start >> (TILE_HEIGHT * level)
    return (level, first >> TILE_HEIGHT), first & (TILE_WIDTH - 1), 1 << r


def tiles_for_ranges(ranges: Iterable[tuple[int, int]]) -> set[TileKey]:
    """The tiles needed for the roots of these node ranges."""
    return {piece_location(a, b)[0] for start, end in ranges for a, b in perfect_pieces(start, end)}


def range_roots(
    ranges: Iterable[tuple[int, int]], tiles: Callable[[TileKey], bytes | None]
) -> list[bytes]:
    """Roots of node ranges ``[start, end)``, each folded from its perfect pieces' tile hashes."""
    out = []
    for start, end in ranges:
        roots = []
        for a, b in perfect_pieces(start, end):
            key, offset, count = piece_location(a, b)
            data = tiles(key)
            if data is None:
                raise TileError(f"tile {key[0]}/{key[1]} is missing")
            roots.append(tile_root(data, count, offset))
        out.append(fold_pieces(roots))
    return out


def edge_keys(size: int) -> dict[int, tuple[int, int]]:
    """The right-edge tile of each level of a tree of ``size``: ``{level: (index, width)}``."""
    out = {}
    level = 0
    while size >> (TILE_HEIGHT * level):
        count = size >> (TILE_HEIGHT * level)
        out[level] = (count >> TILE_HEIGHT, count & (TILE_WIDTH - 1))
        level += 1
    return out


@dataclass
class TreeEdge:
    """The right edge of the tree: its size and the partial tile of every level.

    That is all an append needs (Sunlight and Trillian keep the same state): new
    leaf hashes extend the level-0 partial tile; each tile they fill adds its root
    to the level above.
    """

    size: int = 0
    partial: dict[int, bytes] = field(default_factory=dict)

    @classmethod
    def load(cls, size: int, tiles: Mapping[TileKey, bytes]) -> TreeEdge:
        """The edge of a tree of ``size`` from stored tiles (wider tiles are cut to width)."""
        partial = {}
        for level, (index, width) in edge_keys(size).items():
            if width == 0:
                continue
            data = tiles.get((level, index))
            if data is None or len(data) < width * HASH_SIZE:
                raise TileError(f"tile {level}/{index} is missing or shorter than the tree")
            partial[level] = bytes(data[: width * HASH_SIZE])
        return cls(size, partial)

    def append(
        self, leaves: bytes, roots: Mapping[int, bytes] | None = None
    ) -> dict[TileKey, bytes]:
        """Add concatenated leaf hashes; the tiles that changed (full or partial), by key.

        ``roots`` may give the roots of level-0 tiles this fills, by tile index,
        already computed from the same hashes (``audit verify``'s workers do).
        """
        if len(leaves) % HASH_SIZE:
            raise TileError("leaf hashes must be 32 bytes each")
        changed: dict[TileKey, bytes] = {}
        pending = leaves
        level = 0
        while pending:
            count = self.size >> (TILE_HEIGHT * level)
            index = count >> TILE_HEIGHT
            buf = self.partial.pop(level, b"") + pending
            full_roots = []
            at = 0
            while len(buf) - at >= TILE_BYTES:
                tile = buf[at : at + TILE_BYTES]
                changed[(level, index)] = tile
                known = roots.get(index) if roots is not None and level == 0 else None
                full_roots.append(known if known is not None else tile_root(tile))
                index += 1
                at += TILE_BYTES
            rest = buf[at:]
            if rest:
                changed[(level, index)] = rest
                self.partial[level] = rest
            pending = b"".join(full_roots)
            level += 1
        self.size += len(leaves) // HASH_SIZE
        return changed

    def root(self) -> bytes:
        """The tree head at the current size, from the edge tiles alone."""
        if self.size == 0:
            return EMPTY_ROOT
        return range_roots([(0, self.size)], self._edge_tile)[0]

    def _edge_tile(self, key: TileKey) -> bytes | None:
        level, index = key
        if edge_keys(self.size).get(level, (None, 0))[0] != index:
            return None
        return self.partial.get(level)


__all__ = [
    "MAX_LEVEL",
    "TILE_BYTES",
    "TILE_HEIGHT",
    "TILE_WIDTH",
    "TileError",
    "TileKey",
    "TreeEdge",
    "edge_keys",
    "encode_index",
    "parse_tile_path",
    "piece_location",
    "range_roots",
    "tile_path",
    "tile_root",
    "tiles_for_ranges",
]
