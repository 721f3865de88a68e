"""Independent cross-check: our roots and proofs against pymerkle (RFC 9162 hashing mode).

pymerkle's consistency paths are not minimal, so consistency is checked against a
direct transcription of RFC 9162's SUBPROOF with pymerkle computing every subtree
root, and by verifying our proofs against pymerkle's roots.
"""

from __future__ import annotations

import pytest
from pymerkle import InmemoryTree

from bioverify.audit.merkle import (
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    root_from_leaf_hashes,
    verify_consistency,
    verify_inclusion,
)

N = 70


@pytest.fixture(scope="module")
def tree() -> tuple[InmemoryTree, list[bytes]]:
    t = InmemoryTree(algorithm="sha256")  # security (0x00/0x01 prefixes) is on by default
    data = [f"entry {i}".encode() for i in range(N)]
    for d in data:
        t.append_entry(d)
    return t, data


def rfc_subproof(t: InmemoryTree, m: int, start: int, end: int, b: bool) -> list[bytes]:
    """RFC 9162 section 2.1.4.1, literally; MTH of each subtree comes from pymerkle."""
    n = end - start
    if m == n:
        return [] if b else [t._get_root(start, end)]
    k = 1 << ((n - 1).bit_length() - 1)
    if m <= k:
        return [*rfc_subproof(t, m, start, start + k, b), t._get_root(start + k, end)]
    return [*rfc_subproof(t, m - k, start + k, end, False), t._get_root(start, start + k)]


def test_leaf_hashes_and_roots_match_pymerkle(tree: tuple[InmemoryTree, list[bytes]]) -> None:
    t, data = tree
    hashes = [leaf_hash(d) for d in data]
    assert hashes == [t.get_leaf(i + 1) for i in range(N)]
    for size in range(N + 1):
        assert root_from_leaf_hashes(hashes[:size]) == t.get_root(size)


def test_inclusion_proofs_match_pymerkle(tree: tuple[InmemoryTree, list[bytes]]) -> None:
    t, data = tree
    hashes = [leaf_hash(d) for d in data]
    for size in range(1, N + 1):
        for index in range(size):
            ours = inclusion_proof(index, size, hashes)
            theirs = t.prove_inclusion(index + 1, size).path  # [leaf, siblings bottom-up...]
            assert theirs[0] == hashes[index]
            assert ours == list(theirs[1:])
            assert verify_inclusion(hashes[index], index, size, ours, t.get_root(size))


def test_consistency_proofs_match_the_rfc_with_pymerkle_roots(
    tree: tuple[InmemoryTree, list[bytes]],
) -> None:
    t, data = tree
    hashes = [leaf_hash(d) for d in data]
    for second in range(1, N + 1):
        for first in range(1, second):
            ours = consistency_proof(first, second, hashes)
            assert ours == rfc_subproof(t, first, 0, second, True)
            assert verify_consistency(first, second, t.get_root(first), t.get_root(second), ours)
            # pymerkle's own proof for the same pair verifies the same two roots.
            assert (
                t.prove_consistency(first, second).verify(t.get_root(first), t.get_root(second))
                is None
            )
