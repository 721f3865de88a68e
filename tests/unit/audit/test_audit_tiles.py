"""Tiles (c2sp.org/tlog-tiles): paths, the right edge, and roots and proofs from tiles."""

from __future__ import annotations

import hashlib
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bioverify.audit import merkle
from bioverify.audit.tiles import (
    TileError,
    TreeEdge,
    edge_keys,
    encode_index,
    parse_tile_path,
    range_roots,
    tile_path,
    tiles_for_ranges,
)


def leaves(n: int, seed: int = 1) -> list[bytes]:
    return [hashlib.sha256(b"%d-%d" % (seed, i)).digest() for i in range(n)]


def test_paths_follow_the_spec_examples() -> None:
    assert encode_index(1234067) == "x001/x234/067"
    assert encode_index(0) == "000"
    assert tile_path(0, 5, 3) == "tile/0/005.p/3"
    assert tile_path(2, 1000, 256) == "tile/2/x001/000"
    assert parse_tile_path("1", "x001/x234/067.p/17") == (1, 1234067, 17)
    for n in (0, 7, 999, 1000, 123456789):
        level, index, width = parse_tile_path("3", encode_index(n))
        assert (level, index, width) == (3, n, 256)


@pytest.mark.parametrize(
    ("level", "rest"),
    [("01", "000"), ("64", "000"), ("0", "1"), ("0", "x1/000"), ("0", "001/000"),
     ("0", "000.p/0"), ("0", "000.p/256"), ("0", "000.p/07"), ("a", "000"), ("0", "")],
)  # fmt: skip
def test_malformed_paths_are_refused(level: str, rest: str) -> None:
    with pytest.raises(TileError):
        parse_tile_path(level, rest)


def test_the_spec_example_of_a_tree_of_70000() -> None:
    # "273 full level 0 tiles, one partial level 0 tile of width 112, one full level 1
    # tile, one partial level 1 tile of width 17, and one partial level 2 tile of width 1"
    assert edge_keys(70_000) == {0: (273, 112), 1: (1, 17), 2: (0, 1)}
    assert edge_keys(256) == {0: (1, 0), 1: (0, 1)}


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=700), min_size=1, max_size=8))
def test_appends_in_any_batches_give_the_tiles_the_spec_defines(batches: list[int]) -> None:
    data = leaves(sum(batches))
    edge = TreeEdge()
    tiles: dict[tuple[int, int], bytes] = {}
    done = 0
    for size in batches:
        tiles.update(edge.append(b"".join(data[done : done + size])))
        done += size
        assert edge.root() == merkle.root_from_leaf_hashes(data[:done])
    for (level, n), tile in tiles.items():
        span = 256**level
        for i in range(len(tile) // 32):
            first = (n * 256 + i) * span
            # MTH(D[(n*256 + i) * 256**l : (n*256 + i + 1) * 256**l])
            expected = merkle.root_from_leaf_hashes(data[first : first + span])
            assert tile[i * 32 : (i + 1) * 32] == expected
    assert TreeEdge.load(done, tiles).root() == edge.root()


def test_proofs_from_tiles_equal_proofs_from_leaves() -> None:
    data = leaves(70_000)
    edge = TreeEdge()
    tiles = edge.append(b"".join(data))
    rng = random.Random(5)
    for _ in range(30):
        size = rng.randrange(1, 70_001)
        index = rng.randrange(size)
        ranges = merkle.inclusion_ranges(index, size)
        assert range_roots(ranges, tiles.get) == merkle.inclusion_proof(index, size, data)
        first = rng.randrange(size + 1)
        ranges = merkle.consistency_ranges(first, size)
        assert range_roots(ranges, tiles.get) == merkle.consistency_proof(first, size, data)


def test_a_proof_reads_a_few_tiles_per_level_whatever_the_size() -> None:
    rng = random.Random(9)
    for size in (10**3, 10**6, 10**7, 10**9):
        levels = len(edge_keys(size))
        for _ in range(20):
            index = rng.randrange(size)
            first = rng.randrange(1, size)
            assert len(tiles_for_ranges(merkle.inclusion_ranges(index, size))) <= 2 * levels
            assert len(tiles_for_ranges(merkle.consistency_ranges(first, size))) <= 3 * levels


def test_a_missing_tile_is_an_error_not_a_wrong_root() -> None:
    tiles = TreeEdge().append(b"".join(leaves(600)))
    del tiles[(0, 2)]  # [512, 600) comes from it; [0, 512) from level 1
    with pytest.raises(TileError, match="0/2"):
        range_roots([(0, 600)], tiles.get)
