"""Sharding: two shards answer exactly what one gallery with every template answers."""

from __future__ import annotations

import numpy as np
import pytest

from bioverify.engine import Gallery, MemoryGallery
from bioverify.engine.gallery_shards import ShardedGallery, merge_top_k, shard_of


def _unit_vectors(count: int, seed: int) -> np.ndarray:
    vectors = np.random.default_rng(seed).normal(size=(count, 128)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


@pytest.mark.parametrize("threshold", [10**9, 1], ids=["exact", "indexed"])
def test_two_shards_give_the_single_gallery_answer(threshold: int) -> None:
    vectors = _unit_vectors(600, 11)
    whole = MemoryGallery(index_threshold=10**9)
    shards = [MemoryGallery(index_threshold=threshold) for _ in range(2)]
    sharded = ShardedGallery(shards)
    assert isinstance(sharded, Gallery)
    for i, v in enumerate(vectors):
        whole.add("t", f"c{i}", v)
        sharded.add("t", f"c{i}", v)
    assert 0 < shards[0].size("t") < 600
    assert sharded.size("t") == 600
    probes = vectors[:40] + np.random.default_rng(3).normal(0, 0.08, (40, 128)).astype(np.float32)
    for probe in probes:
        want = whole.search("t", probe, k=5)
        got = sharded.search("t", probe, k=5)
        assert [c for c, _ in got] == [c for c, _ in want]
        assert [s for _, s in got] == pytest.approx([s for _, s in want], abs=1e-5)


def test_removal_and_re_enrolment_reach_the_owning_shard() -> None:
    vectors = _unit_vectors(50, 12)
    sharded = ShardedGallery([MemoryGallery(), MemoryGallery()])
    for i, v in enumerate(vectors):
        sharded.add("t", f"c{i}", v)
    sharded.remove("t", "c7")
    assert all(c != "c7" for c, _ in sharded.search("t", vectors[7], k=50))
    sharded.add("t", "c8", vectors[7])  # re-enrolment replaces, never duplicates
    assert sharded.size("t") == 49
    assert sharded.search("t", vectors[7], k=1)[0][0] == "c8"


def test_merge_keeps_the_best_k_once_each() -> None:
    a = [("x", 0.9), ("y", 0.5), ("z", 0.1)]
    b = [("w", 0.8), ("y", 0.6), ("v", 0.55)]
    assert merge_top_k([a, b], 3) == [("x", 0.9), ("w", 0.8), ("y", 0.6)]
    assert merge_top_k([a, []], 5) == a
    assert merge_top_k([a, b], 0) == []
    # Equal scores: the earlier shard first, so the order is stable between calls.
    assert merge_top_k([[("p", 0.7)], [("q", 0.7)]], 2) == [("p", 0.7), ("q", 0.7)]


def test_shard_choice_is_stable_and_spread() -> None:
    owners = [shard_of(f"customer-{i}", 2) for i in range(1000)]
    assert owners == [shard_of(f"customer-{i}", 2) for i in range(1000)]
    assert 400 < sum(owners) < 600
