"""RFC 9162 Merkle tree hashing, proofs and their verification (pure, no I/O).

Leaves hash as ``SHA-256(0x00 || data)``, interior nodes as
``SHA-256(0x01 || left || right)`` and the empty tree as ``SHA-256("")``
(RFC 9162 section 2.1.1). Proof generation follows the recursive definitions of
sections 2.1.3.1 and 2.1.4.1; verification follows the iterative algorithms of
sections 2.1.3.2 and 2.1.4.2 and fails closed on any malformed input.

The client SDK imports this module, so it must stay free of server imports.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Final

HASH_SIZE: Final = 32
EMPTY_ROOT: Final = hashlib.sha256(b"").digest()
_LEAF: Final = b"\x00"
_NODE: Final = b"\x01"

#: Leaf hashes by position: a sequence, or ``get(start, end)`` returning ``[start, end)``.
LeafSource = Sequence[bytes] | Callable[[int, int], Sequence[bytes]]


class ProofError(ValueError):
    """A proof request or a proof is malformed (bad sizes, wrong hash length)."""


def leaf_hash(data: bytes) -> bytes:
    """The RFC 9162 hash of one leaf's data."""
    return hashlib.sha256(_LEAF + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """The RFC 9162 hash of an interior node."""
    return hashlib.sha256(_NODE + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two strictly smaller than ``n`` (``n >= 2``)."""
    return 1 << ((n - 1).bit_length() - 1)


class CompactRange:
    """An incremental Merkle tree over leaf hashes in O(log n) memory.

    It keeps the roots of the perfect subtrees that make up the leaves seen so
    far (one per set bit of the size), so :meth:`root` is the RFC 9162 MTH at
    the current size.
    """

    __slots__ = ("_size", "_stack")

    def __init__(self) -> None:
        self._size = 0
        self._stack: list[bytes] = []

    @property
    def size(self) -> int:
        """How many leaves were appended."""
        return self._size

    def append(self, leaf: bytes) -> None:
        """Add one leaf hash at the right edge."""
        stack = self._stack
        h = leaf
        size = self._size
        # Each trailing one bit of the old size is a perfect subtree to merge with.
        while size & 1:
            h = hashlib.sha256(_NODE + stack.pop() + h).digest()
            size >>= 1
        stack.append(h)
        self._size += 1

    def extend(self, leaves: Sequence[bytes]) -> None:
        """Append several leaf hashes in order."""
        for leaf in leaves:
            self.append(leaf)

    def root(self) -> bytes:
        """The tree head at the current size."""
        return fold_pieces(self._stack)


def root_from_leaf_hashes(hashes: Sequence[bytes]) -> bytes:
    """The RFC 9162 MTH of a list of leaf hashes."""
    tree = CompactRange()
    tree.extend(hashes)
    return tree.root()


def _getter(source: LeafSource) -> Callable[[int, int], Sequence[bytes]]:
    if callable(source):
        return source
    seq = source
    return lambda start, end: seq[start:end]


def _check_size(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ProofError(f"{name} must be a non-negative integer")


def inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """The leaf ranges ``[start, end)`` whose roots make up the inclusion proof, in order."""
    _check_size("index", index)
    _check_size("size", size)
    if index >= size:
        raise ProofError("index must be smaller than the tree size")
    ranges: list[tuple[int, int]] = []
    start, end, m = 0, size, index
    # Walk down from the root (RFC 9162 PATH); siblings come out top-down, proofs list bottom-up.
    while end - start > 1:
        k = _split(end - start)
        if m < k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start += k
            m -= k
    ranges.reverse()
    return ranges


def consistency_ranges(first: int, second: int) -> list[tuple[int, int]]:
    """The leaf ranges whose roots make up the consistency proof (RFC 9162 SUBPROOF)."""
    _check_size("first", first)
    _check_size("second", second)
    if first > second:
        raise ProofError("first must not exceed second")
    if first in (0, second):
        return []
    ranges: list[tuple[int, int]] = []
    start, end, m, whole = 0, second, first, True
    while m != end - start:
        k = _split(end - start)
        if m <= k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start += k
            m -= k
            whole = False
    if not whole:  # SUBPROOF(m, D[m], false) = [MTH(D[m])]; omitted while b is still true
        ranges.append((start, end))
    ranges.reverse()
    return ranges


def _roots(ranges: Sequence[tuple[int, int]], leaves: LeafSource) -> list[bytes]:
    get = _getter(leaves)
    return [root_from_leaf_hashes(get(start, end)) for start, end in ranges]


def inclusion_proof(index: int, size: int, leaves: LeafSource) -> list[bytes]:
    """The audit path of leaf ``index`` in the tree of the first ``size`` leaves.

    RFC 9162 section 2.1.3.1, bottom-up (the leaf's sibling first).
    """
    return _roots(inclusion_ranges(index, size), leaves)


def consistency_proof(first: int, second: int, leaves: LeafSource) -> list[bytes]:
    """The proof that the tree of size ``first`` is a prefix of the one of size ``second``.

    RFC 9162 section 2.1.4.1; empty when ``first`` is 0 or equal to ``second``.
    """
    return _roots(consistency_ranges(first, second), leaves)


def perfect_pieces(start: int, end: int) -> list[tuple[int, int]]:
    """``[start, end)`` cut into aligned perfect subtrees, largest first.

    For any node range of an RFC 9162 tree these are the subtrees whose roots,
    folded from the right, give the range's root (see :meth:`CompactRange.root`).
    """
    pieces: list[tuple[int, int]] = []
    while start < end:
        # The largest power of two that both fits and keeps ``start`` aligned.
        size = 1 << ((end - start).bit_length() - 1)
        while start % size:
            size >>= 1
        pieces.append((start, start + size))
        start += size
    return pieces


def fold_pieces(roots: Sequence[bytes]) -> bytes:
    """The root of consecutive perfect subtrees (largest first), per :func:`perfect_pieces`."""
    if not roots:
        return EMPTY_ROOT
    h = roots[-1]
    for left in reversed(roots[:-1]):
        h = node_hash(left, h)
    return h


def _well_formed(*hashes: bytes) -> bool:
    return all(isinstance(h, bytes) and len(h) == HASH_SIZE for h in hashes)


def _hash_list(proof: object) -> list[bytes] | None:
    """The proof as a list of 32-byte hashes, or ``None`` if it is anything else."""
    if not isinstance(proof, list | tuple):
        return None
    items = list(proof)
    return items if _well_formed(*items) else None


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def root_from_inclusion_proof(leaf: bytes, index: int, size: int, proof: Sequence[bytes]) -> bytes:
    """The root implied by an inclusion proof (RFC 9162 section 2.1.3.2).

    Raises :class:`ProofError` when the proof cannot be for (index, size).
    """
    if not (_is_count(index) and _is_count(size)) or index >= size:
        raise ProofError("index must be smaller than the tree size")
    hashes = _hash_list(proof)
    if hashes is None or not _well_formed(leaf):
        raise ProofError("hashes must be 32 bytes")
    fn, sn, r = index, size - 1, leaf
    for p in hashes:
        if sn == 0:
            raise ProofError("inclusion proof is too long")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("inclusion proof is too short")
    return r


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """Whether ``proof`` shows leaf hash ``leaf`` at ``index`` in the tree ``(size, root)``."""
    try:
        computed = root_from_inclusion_proof(leaf, index, size, proof)
    except ProofError:
        return False
    return _well_formed(root) and computed == root


def verify_consistency(
    first: int, second: int, first_root: bytes, second_root: bytes, proof: Sequence[bytes]
) -> bool:
    """Whether ``proof`` shows tree ``(first, first_root)`` prefixes ``(second, second_root)``.

    RFC 9162 section 2.1.4.2; ``first == second`` needs an empty proof and equal
    roots, ``first == 0`` an empty proof and the empty tree's root.
    """
    if not (_is_count(first) and _is_count(second)) or first > second:
        return False
    path = _hash_list(proof)
    if path is None or not _well_formed(first_root, second_root):
        return False
    if first == second:
        return not path and first_root == second_root
    if first == 0:
        return not path and first_root == EMPTY_ROOT
    if not path:
        return False
    if first & (first - 1) == 0:  # a power of two: the old root is a node of the new tree
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == first_root and sr == second_root


__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "CompactRange",
    "LeafSource",
    "ProofError",
    "consistency_proof",
    "consistency_ranges",
    "fold_pieces",
    "inclusion_proof",
    "inclusion_ranges",
    "leaf_hash",
    "node_hash",
    "perfect_pieces",
    "root_from_inclusion_proof",
    "root_from_leaf_hashes",
    "verify_consistency",
    "verify_inclusion",
]
