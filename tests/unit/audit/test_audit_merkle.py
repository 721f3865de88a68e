"""RFC 9162 hashing and proofs: properties, tamper resistance, garbage input."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bioverify.audit.merkle import (
    EMPTY_ROOT,
    CompactRange,
    ProofError,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root_from_inclusion_proof,
    root_from_leaf_hashes,
    verify_consistency,
    verify_inclusion,
)


def leaves(n: int) -> list[bytes]:
    return [leaf_hash(i.to_bytes(4, "big")) for i in range(n)]


def flip(data: bytes, bit: int) -> bytes:
    pos = bit % (len(data) * 8)
    out = bytearray(data)
    out[pos // 8] ^= 1 << (pos % 8)
    return bytes(out)


def test_hashes_use_rfc9162_domain_separation() -> None:
    assert leaf_hash(b"x") == hashlib.sha256(b"\x00x").digest()
    a, b = b"a" * 32, b"b" * 32
    assert node_hash(a, b) == hashlib.sha256(b"\x01" + a + b).digest()
    assert root_from_leaf_hashes([]) == hashlib.sha256(b"").digest() == EMPTY_ROOT


def test_small_trees_match_the_rfc_definition_by_hand() -> None:
    a, b, c = leaves(3)
    assert root_from_leaf_hashes([a]) == a
    assert root_from_leaf_hashes([a, b]) == node_hash(a, b)
    assert root_from_leaf_hashes([a, b, c]) == node_hash(node_hash(a, b), c)
    assert inclusion_proof(2, 3, [a, b, c]) == [node_hash(a, b)]
    assert consistency_proof(2, 3, [a, b, c]) == [c]
    assert consistency_proof(1, 3, [a, b, c]) == [b, c]


@settings(deadline=None)  # timing is not what these test; the machine is shared
@given(st.integers(min_value=0, max_value=300))
def test_compact_range_gives_the_root_at_every_size(n: int) -> None:
    hashes = leaves(n)
    tree = CompactRange()
    for i, h in enumerate(hashes):
        tree.append(h)
        if i in (0, n // 2, n - 1):
            assert tree.root() == root_from_leaf_hashes(hashes[: i + 1])
    assert tree.size == n


@st.composite
def index_and_size(draw: st.DrawFn) -> tuple[int, int]:
    size = draw(st.integers(min_value=1, max_value=200))
    return draw(st.integers(min_value=0, max_value=size - 1)), size


@settings(deadline=None)  # timing is not what these test; the machine is shared
@given(index_and_size(), st.integers(min_value=0))
def test_inclusion_proofs_verify_and_any_alteration_fails(pair: tuple[int, int], bit: int) -> None:
    index, size = pair
    hashes = leaves(size)
    root = root_from_leaf_hashes(hashes)
    proof = inclusion_proof(index, size, hashes)
    assert verify_inclusion(hashes[index], index, size, proof, root)
    assert not verify_inclusion(flip(hashes[index], bit), index, size, proof, root)
    assert not verify_inclusion(hashes[index], index, size, proof, flip(root, bit))
    if proof:
        k = bit % len(proof)
        altered = [*proof[:k], flip(proof[k], bit), *proof[k + 1 :]]
        assert not verify_inclusion(hashes[index], index, size, altered, root)
        assert not verify_inclusion(hashes[index], index, size, proof[:-1], root)
    assert not verify_inclusion(hashes[index], index, size, [*proof, root], root)
    for other in {index ^ 1, index + 1, size}:
        if other != index and other >= 0 and (other >= size or hashes[other] != hashes[index]):
            assert not verify_inclusion(hashes[index], other, size, proof, root)


@st.composite
def two_sizes(draw: st.DrawFn) -> tuple[int, int]:
    second = draw(st.integers(min_value=1, max_value=200))
    return draw(st.integers(min_value=1, max_value=second)), second


@settings(deadline=None)  # timing is not what these test; the machine is shared
@given(two_sizes(), st.integers(min_value=0))
def test_consistency_proofs_verify_and_any_alteration_fails(
    pair: tuple[int, int], bit: int
) -> None:
    first, second = pair
    hashes = leaves(second)
    r1, r2 = root_from_leaf_hashes(hashes[:first]), root_from_leaf_hashes(hashes)
    proof = consistency_proof(first, second, hashes)
    assert verify_consistency(first, second, r1, r2, proof)
    assert not verify_consistency(first, second, flip(r1, bit), r2, proof)
    assert not verify_consistency(first, second, r1, flip(r2, bit), proof)
    if proof:
        k = bit % len(proof)
        altered = [*proof[:k], flip(proof[k], bit), *proof[k + 1 :]]
        assert not verify_consistency(first, second, r1, r2, altered)
        assert not verify_consistency(first, second, r1, r2, proof[:-1])
    assert not verify_consistency(first, second, r1, r2, [*proof, r2])
    if first < second:
        assert not verify_consistency(first + 1, second, r1, r2, proof)
        # A log that rewrote its history is not consistent with its past.
        forked = [*hashes[: first - 1], leaf_hash(b"rewritten"), *hashes[first:]]
        assert not verify_consistency(
            first,
            second,
            r1,
            root_from_leaf_hashes(forked),
            consistency_proof(first, second, forked),
        )


def test_edge_sizes_are_defined_and_fail_closed() -> None:
    hashes = leaves(5)
    root = root_from_leaf_hashes(hashes)
    assert consistency_proof(0, 5, hashes) == []
    assert verify_consistency(0, 5, EMPTY_ROOT, root, [])
    assert not verify_consistency(0, 5, root, root, [])
    assert verify_consistency(5, 5, root, root, [])
    assert not verify_consistency(5, 5, root, root, [root])
    assert not verify_consistency(3, 5, root, root, [])
    assert not verify_consistency(6, 5, root, root, [])
    with pytest.raises(ProofError):
        inclusion_proof(5, 5, hashes)
    with pytest.raises(ProofError):
        consistency_proof(6, 5, hashes)
    with pytest.raises(ProofError):
        root_from_inclusion_proof(hashes[0], 0, 5, [])


garbage = st.one_of(
    st.none(),
    st.integers(),
    st.text(),
    st.binary(),
    st.booleans(),
    st.lists(st.binary(max_size=40), max_size=5),
)


@settings(deadline=None)  # timing is not what these test; the machine is shared
@given(garbage, garbage, garbage, garbage, garbage)
def test_verifiers_never_crash_on_garbage(
    a: object, b: object, c: object, d: object, e: object
) -> None:
    assert verify_inclusion(a, b, c, d, e) in (True, False)  # type: ignore[arg-type]
    assert verify_consistency(a, b, c, d, e) in (True, False)  # type: ignore[arg-type]
    assert not verify_inclusion(b"\x00" * 32, True, 2, [b"\x00" * 32], b"\x00" * 32)
