"""Splitting one tenant's gallery over several shards, and merging their answers.

The sharding plan (``docs/engine.md``): tenants are placed on machines whole first;
only a tenant that outgrows one machine is split, by template range (here: a stable
hash of the customer id picks the shard, so a customer lives on exactly one shard
and a re-enrolment replaces in place). A search asks every shard for its own top
``k`` and keeps the best ``k`` overall: each shard's scores are exact cosines, so
the merged list is the top ``k`` of the union.
"""

from __future__ import annotations

import hashlib
import heapq
from collections.abc import Iterable, Sequence

import numpy.typing as npt

from bioverify.engine.gallery import Gallery


def merge_top_k(answers: Iterable[Sequence[tuple[str, float]]], k: int) -> list[tuple[str, float]]:
    """The best ``k`` of several best-first answers; ties keep the earlier shard first.

    A customer reported by two shards (only while it moves between them) counts once,
    with its higher score.
    """
    if k <= 0:
        return []
    best: dict[str, float] = {}
    order: dict[str, int] = {}
    for shard_no, answer in enumerate(answers):
        for customer_id, score in answer:
            if customer_id not in best or score > best[customer_id]:
                best[customer_id] = score
                order[customer_id] = shard_no
    top = heapq.nsmallest(k, best.items(), key=lambda item: (-item[1], order[item[0]]))
    return [(customer_id, score) for customer_id, score in top]


def shard_of(customer_id: str, shards: int) -> int:
    """The shard that holds ``customer_id`` (stable across processes and restarts)."""
    digest = hashlib.blake2b(customer_id.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % shards


class ShardedGallery:
    """A :class:`Gallery` over several galleries (one per shard, local or remote)."""

    def __init__(self, shards: Sequence[Gallery]) -> None:
        if not shards:
            raise ValueError("a sharded gallery needs at least one shard")
        self._shards = list(shards)

    def _owner(self, customer_id: str) -> Gallery:
        return self._shards[shard_of(customer_id, len(self._shards))]

    def add(self, tenant: str, customer_id: str, embedding: npt.ArrayLike) -> None:
        self._owner(customer_id).add(tenant, customer_id, embedding)

    def remove(self, tenant: str, customer_id: str) -> None:
        self._owner(customer_id).remove(tenant, customer_id)

    def search(self, tenant: str, embedding: npt.ArrayLike, k: int = 5) -> list[tuple[str, float]]:
        return merge_top_k((shard.search(tenant, embedding, k) for shard in self._shards), k)

    def size(self, tenant: str) -> int:
        return sum(shard.size(tenant) for shard in self._shards)


__all__ = ["ShardedGallery", "merge_top_k", "shard_of"]
