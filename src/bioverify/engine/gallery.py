"""The 1:N gallery: one in-memory index of templates per tenant.

Exact search (a float32 matrix and one matrix-vector product) up to
``index_threshold`` templates per tenant; above it a product-quantisation fast scan
proposes candidates and the exact matrix re-scores them (``gallery_index.py``), so
reported scores are always exact cosines. Nothing here touches storage: the service
loads the gallery from a snapshot and the store (``sessions/gallery_sync.py``).
"""

from __future__ import annotations

import threading
from typing import Final, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from bioverify.engine.gallery_index import (
    DEFAULT_CANDIDATES,
    DIM,
    TenantIndex,
    TenantState,
)

#: Exact search costs ~2 ms of CPU per query at 100k templates and grows linearly;
#: the PQ scan with re-scoring ~0.5 ms there. Switch well before exact gets slow.
DEFAULT_INDEX_THRESHOLD: Final = 20_000


@runtime_checkable
class Gallery(Protocol):
    """Per-tenant 1:N index of unit-length 128-d templates."""

    def add(self, tenant: str, customer_id: str, embedding: npt.ArrayLike) -> None:
        """Insert or replace ``customer_id``'s template."""
        ...

    def remove(self, tenant: str, customer_id: str) -> None:
        """Forget ``customer_id`` (no error if absent)."""
        ...

    def search(self, tenant: str, embedding: npt.ArrayLike, k: int = 5) -> list[tuple[str, float]]:
        """Up to ``k`` (customer_id, cosine), best first."""
        ...

    def size(self, tenant: str) -> int:
        """Templates held for ``tenant``."""
        ...


def _unit(embedding: npt.ArrayLike) -> npt.NDArray[np.float32]:
    vec = np.asarray(embedding, dtype=np.float32).reshape(-1)
    if vec.shape != (DIM,):
        raise ValueError(f"gallery templates are {DIM}-d, got shape {vec.shape}")
    norm = float(np.linalg.norm(vec))
    if not np.isfinite(norm) or norm == 0.0:
        raise ValueError("gallery template has zero or non-finite norm")
    out: npt.NDArray[np.float32] = vec / norm
    return out


def _unit_rows(vectors: npt.ArrayLike) -> npt.NDArray[np.float32]:
    rows = np.asarray(vectors, dtype=np.float32)
    if rows.ndim != 2 or rows.shape[1] != DIM:
        raise ValueError(f"gallery templates are {DIM}-d, got shape {rows.shape}")
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    if not np.all(np.isfinite(norms)) or np.any(norms == 0.0):
        raise ValueError("gallery template has zero or non-finite norm")
    out: npt.NDArray[np.float32] = rows / norms
    return out


class MemoryGallery:
    """Thread-safe in-memory :class:`Gallery`: exact search, PQ + re-scoring above a size."""

    def __init__(
        self,
        *,
        index_threshold: int = DEFAULT_INDEX_THRESHOLD,
        candidates: int = DEFAULT_CANDIDATES,
    ) -> None:
        if index_threshold < 1 or candidates < 1:
            raise ValueError("index_threshold and candidates must be >= 1")
        self._threshold = index_threshold
        self._candidates = candidates
        self._tenants: dict[str, TenantIndex] = {}
        self._lock = threading.Lock()

    def _index(self, tenant: str) -> TenantIndex:
        index = self._tenants.get(tenant)
        if index is None:
            index = self._tenants[tenant] = TenantIndex(
                index_threshold=self._threshold, candidates=self._candidates
            )
        return index

    def add(self, tenant: str, customer_id: str, embedding: npt.ArrayLike) -> None:
        vec = _unit(embedding)
        with self._lock:
            self._index(tenant).add_many([customer_id], vec.reshape(1, DIM))

    def add_many(self, tenant: str, customer_ids: list[str], vectors: npt.ArrayLike) -> None:
        """Insert or replace many templates at once (one encode of the batch)."""
        rows = _unit_rows(vectors)
        if len(customer_ids) != rows.shape[0]:
            raise ValueError("one customer id per template row")
        with self._lock:
            self._index(tenant).add_many(list(customer_ids), rows)

    def remove(self, tenant: str, customer_id: str) -> None:
        with self._lock:
            index = self._tenants.get(tenant)
            if index is not None:
                index.remove(customer_id)

    def search(self, tenant: str, embedding: npt.ArrayLike, k: int = 5) -> list[tuple[str, float]]:
        vec = _unit(embedding)
        with self._lock:
            index = self._tenants.get(tenant)
            return [] if index is None else index.search(vec, k)

    def size(self, tenant: str) -> int:
        with self._lock:
            index = self._tenants.get(tenant)
            return 0 if index is None else len(index)

    def tenants(self) -> list[str]:
        """Tenants with an index in memory."""
        with self._lock:
            return sorted(self._tenants)

    def uses_index(self, tenant: str) -> bool:
        """Whether ``tenant`` is served by the PQ index (for metrics and tests)."""
        with self._lock:
            index = self._tenants.get(tenant)
            return index is not None and index.indexed

    def export_state(self, tenant: str) -> TenantState:
        """A compacted copy of ``tenant``'s index, for a snapshot."""
        with self._lock:
            return self._index(tenant).state()

    def restore_state(self, tenant: str, state: TenantState) -> None:
        """Replace ``tenant``'s index with one loaded from a snapshot."""
        index = TenantIndex.from_state(
            state, index_threshold=self._threshold, candidates=self._candidates
        )
        with self._lock:
            self._tenants[tenant] = index


__all__ = [
    "DEFAULT_INDEX_THRESHOLD",
    "Gallery",
    "MemoryGallery",
    "TenantState",
]
