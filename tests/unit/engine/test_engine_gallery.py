"""The 1:N gallery: exact and PQ-indexed agree, tenants are isolated, updates take effect."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bioverify.engine import Gallery, MemoryGallery


def _unit_vectors(count: int, seed: int) -> np.ndarray:
    vectors = np.random.default_rng(seed).normal(size=(count, 128)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def _noisy(vector: np.ndarray, seed: int, sigma: float = 0.05) -> np.ndarray:
    return vector + np.random.default_rng(seed).normal(0, sigma, vector.shape).astype(np.float32)


@pytest.fixture(params=["exact", "indexed"])
def gallery(request: pytest.FixtureRequest) -> MemoryGallery:
    """Both index kinds must behave the same (one conformance suite)."""
    return MemoryGallery(index_threshold=1 if request.param == "indexed" else 10**9)


def test_both_kinds_implement_the_protocol(gallery: MemoryGallery) -> None:
    assert isinstance(gallery, Gallery)


def test_search_finds_the_enrolled_customer_first(gallery: MemoryGallery) -> None:
    vectors = _unit_vectors(300, 1)
    for i, v in enumerate(vectors):
        gallery.add("t1", f"c{i}", v)
    hits = gallery.search("t1", _noisy(vectors[42], 7), k=3)
    assert hits[0][0] == "c42"
    assert hits[0][1] == pytest.approx(
        float(vectors[42] @ (_noisy(vectors[42], 7) / np.linalg.norm(_noisy(vectors[42], 7)))),
        abs=1e-5,
    )
    assert [s for _, s in hits] == sorted((s for _, s in hits), reverse=True)
    assert len(hits) == 3


def test_tenants_do_not_see_each_other(gallery: MemoryGallery) -> None:
    v = _unit_vectors(2, 2)
    gallery.add("a", "alice", v[0])
    gallery.add("b", "bob", v[1])
    assert [c for c, _ in gallery.search("a", v[1], k=5)] == ["alice"]
    assert gallery.search("nobody", v[0]) == []
    assert (gallery.size("a"), gallery.size("b"), gallery.size("nobody")) == (1, 1, 0)


def test_remove_and_replace_take_effect(gallery: MemoryGallery) -> None:
    vectors = _unit_vectors(50, 3)
    for i, v in enumerate(vectors):
        gallery.add("t", f"c{i}", v)
    gallery.remove("t", "c10")
    gallery.remove("t", "never-enrolled")
    assert gallery.size("t") == 49
    assert all(c != "c10" for c, _ in gallery.search("t", vectors[10], k=49))
    gallery.add("t", "c11", vectors[10])  # re-enrolment replaces the template
    assert gallery.size("t") == 49
    assert gallery.search("t", vectors[10], k=1)[0][0] == "c11"
    assert gallery.search("t", vectors[10], k=1)[0][1] == pytest.approx(1.0, abs=1e-5)


def test_bad_vectors_are_refused(gallery: MemoryGallery) -> None:
    with pytest.raises(ValueError, match="128-d"):
        gallery.add("t", "c", np.ones(64, np.float32))
    with pytest.raises(ValueError, match="zero"):
        gallery.add("t", "c", np.zeros(128, np.float32))


@settings(max_examples=15, deadline=None)
@given(st.integers(min_value=0, max_value=10_000), st.integers(min_value=1, max_value=400))
def test_indexed_recall_at_1_matches_exact(seed: int, size: int) -> None:
    vectors = _unit_vectors(size, seed)
    exact = MemoryGallery(index_threshold=10**9)
    indexed = MemoryGallery(index_threshold=1)
    for i, v in enumerate(vectors):
        exact.add("t", str(i), v)
        indexed.add("t", str(i), v)
    assert indexed.uses_index("t")
    assert not exact.uses_index("t")
    probes = [_noisy(vectors[i % size], seed + i, 0.3) for i in range(20)]
    agree = sum(exact.search("t", p, 1)[0][0] == indexed.search("t", p, 1)[0][0] for p in probes)
    assert agree / len(probes) >= 0.95


def test_switches_to_the_index_at_the_threshold() -> None:
    gallery = MemoryGallery(index_threshold=100)
    vectors = _unit_vectors(100, 5)
    for i, v in enumerate(vectors[:99]):
        gallery.add("t", str(i), v)
    assert not gallery.uses_index("t")
    gallery.add("t", "99", vectors[99])
    assert gallery.uses_index("t")
    assert gallery.search("t", vectors[7], 1)[0][0] == "7"


def test_concurrent_adds_and_searches_stay_consistent(gallery: MemoryGallery) -> None:
    vectors = _unit_vectors(400, 6)
    errors: list[Exception] = []

    def writer(offset: int) -> None:
        try:
            for i in range(offset, 400, 4):
                gallery.add("t", f"c{i}", vectors[i])
                gallery.search("t", vectors[i], 3)
        except Exception as exc:  # noqa: BLE001  # collected, asserted below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert gallery.size("t") == 400
    assert gallery.search("t", vectors[123], 1)[0][0] == "c123"
