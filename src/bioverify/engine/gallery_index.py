"""One tenant's 1:N index: exact float32 rows, plus a PQ fast-scan index above a size.

Chosen by measurement (``bench/gallery.py``, ``docs/engine.md``): at 1M templates
shaped like SFace's, a 4-bit product-quantisation fast scan (faiss
``IndexPQFastScan``, 32 sub-quantisers, 16 bytes per template) proposes
``candidates`` rows and the exact float32 rows re-score them. Recall@1 against exact
search was 0.997 at ~3 ms of CPU per query, and the index builds in ~6 s (an HNSW
graph took 15-24 min and reached 0.88). Reported scores are always exact cosines.

Rows are never moved while the index exists: a removed or replaced template leaves
a dead row (masked out of every answer) until :meth:`TenantIndex.compact` rewrites
the rows and re-encodes the codes, which happens once dead rows pass a share.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import faiss
import numpy as np
import numpy.typing as npt

DIM: Final = 128
#: Sub-quantisers x 4 bits: 16 bytes per template. 64 (32 bytes) reached recall 1.000
#: but cost ~5 ms of CPU per query at 1M; 32 with 1,000 re-scored candidates 0.997.
PQ_SUBQUANTIZERS: Final = 32
PQ_BITS: Final = 4
DEFAULT_CANDIDATES: Final = 1000
#: faiss asks for 39 training points per centroid (16 centroids); a smaller gallery
#: (only in tests: the default threshold is far above) pads its training sample with
#: random unit vectors, which shape the codebooks, never the answers.
MIN_TRAIN: Final = 1024
_TRAIN_SAMPLE: Final = 65_536
_COMPACT_SHARE: Final = 0.2
_COMPACT_MIN_DEAD: Final = 1024

Matrix = npt.NDArray[np.float32]

# One thread per search: the service runs searches side by side in its thread pool,
# and the latency goal is measured on one core.
faiss.omp_set_num_threads(1)


@dataclass(frozen=True)
class TenantState:
    """A compacted copy of one tenant's index, as persisted by a snapshot."""

    ids: list[str]
    matrix: Matrix
    codes: bytes | None  # serialised faiss index over the same rows, or None (exact)


def _new_pq(sample: Matrix) -> faiss.Index:
    index = faiss.IndexPQFastScan(DIM, PQ_SUBQUANTIZERS, PQ_BITS, faiss.METRIC_INNER_PRODUCT)
    index.train(np.ascontiguousarray(sample))
    return index


class TenantIndex:
    """Templates of one tenant; not thread-safe (``MemoryGallery`` holds the lock)."""

    def __init__(self, *, index_threshold: int, candidates: int) -> None:
        self._threshold = index_threshold
        self._candidates = candidates
        self._matrix: Matrix = np.zeros((16, DIM), np.float32)
        self._alive = np.zeros(16, dtype=bool)
        self._ids: list[str | None] = []  # row -> customer id, None for a dead row
        self._row: dict[str, int] = {}
        self._pq: faiss.Index | None = None

    def __len__(self) -> int:
        return len(self._row)

    @property
    def indexed(self) -> bool:
        return self._pq is not None

    @property
    def dead_rows(self) -> int:
        return len(self._ids) - len(self._row)

    def _reserve(self, extra: int) -> None:
        need = len(self._ids) + extra
        if need <= self._matrix.shape[0]:
            return
        capacity = max(need, self._matrix.shape[0] * 2)
        grown = np.zeros((capacity, DIM), np.float32)
        grown[: len(self._ids)] = self._matrix[: len(self._ids)]
        alive = np.zeros(capacity, dtype=bool)
        alive[: len(self._ids)] = self._alive[: len(self._ids)]
        self._matrix, self._alive = grown, alive

    def add_many(self, ids: list[str], vectors: Matrix) -> None:
        """Insert or replace templates (unit rows); the last of a repeated id wins."""
        if not ids:
            return
        for customer_id in ids:
            self._kill(customer_id)
        self._reserve(len(ids))
        start = len(self._ids)
        self._matrix[start : start + len(ids)] = vectors
        self._alive[start : start + len(ids)] = True
        self._ids.extend(ids)
        for offset, customer_id in enumerate(ids):
            previous = self._row.get(customer_id)
            if previous is not None and previous >= start:  # repeated inside this batch
                self._alive[previous] = False
                self._ids[previous] = None
            self._row[customer_id] = start + offset
        if self._pq is not None:
            self._pq.add(np.ascontiguousarray(vectors))
        elif len(self._row) >= self._threshold:
            self._build()
        self._maybe_compact()

    def remove(self, customer_id: str) -> None:
        self._kill(customer_id)
        self._maybe_compact()

    def _kill(self, customer_id: str) -> None:
        row = self._row.pop(customer_id, None)
        if row is not None:
            self._alive[row] = False
            self._ids[row] = None

    def _build(self) -> None:
        rows = self._matrix[: len(self._ids)]
        rng = np.random.default_rng(0)  # same codebooks for the same rows
        sample = rows[self._alive[: len(self._ids)]]
        if len(sample) > _TRAIN_SAMPLE:
            sample = sample[rng.choice(len(sample), _TRAIN_SAMPLE, replace=False)]
        elif len(sample) < MIN_TRAIN:
            pad = rng.standard_normal((MIN_TRAIN - len(sample), DIM)).astype(np.float32)
            pad /= np.linalg.norm(pad, axis=1, keepdims=True)
            sample = np.vstack([sample, pad])
        self._pq = _new_pq(sample)
        self._pq.add(np.ascontiguousarray(rows))

    def _maybe_compact(self) -> None:
        dead = self.dead_rows
        if dead >= _COMPACT_MIN_DEAD and dead > _COMPACT_SHARE * len(self._ids):
            self.compact()

    def compact(self) -> None:
        """Drop dead rows and re-encode the PQ codes (the codebooks are kept)."""
        if self.dead_rows == 0:
            return
        keep = np.flatnonzero(self._alive[: len(self._ids)])
        matrix = np.ascontiguousarray(self._matrix[keep])
        ids = [self._ids[int(i)] for i in keep]
        self._matrix = matrix
        self._alive = np.ones(len(ids), dtype=bool)
        self._ids = list(ids)
        self._row = {str(cid): n for n, cid in enumerate(ids)}
        if self._pq is not None:
            self._pq.reset()
            if ids:
                self._pq.add(matrix)

    def search(self, vec: Matrix, k: int) -> list[tuple[str, float]]:
        count, alive = len(self._ids), len(self._row)
        if not alive or k <= 0:
            return []
        rows = None
        if self._pq is not None:
            # Ask for enough rows that about ``candidates`` are alive: asking for every
            # dead row too would make a search after many erasures scan for a huge k.
            want = min(count, -(-max(self._candidates, k) * count // alive) + 16)
            _, found = self._pq.search(vec.reshape(1, DIM), want)
            rows = found[0]
            rows = rows[rows >= 0]
            rows = rows[self._alive[rows]]
            if len(rows) < min(k, alive):  # dead rows crowded the alive ones out: rare
                rows = None
        if rows is not None:
            # np.take gathers rows about twice as fast as fancy indexing (measured at 1M).
            scores = np.take(self._matrix, rows, axis=0) @ vec
        else:  # exact; scored in place: a gather would copy the whole matrix first
            rows = np.flatnonzero(self._alive[:count])
            scores = (self._matrix[:count] @ vec)[rows]
        take = min(k, len(rows))
        best = np.argpartition(-scores, take - 1)[:take] if take < len(rows) else np.arange(take)
        best = best[np.argsort(-scores[best], kind="stable")]
        return [(str(self._ids[int(rows[i])]), float(scores[i])) for i in best]

    def state(self) -> TenantState:
        """Compact, then copy out the rows, ids and serialised codes."""
        self.compact()
        count = len(self._ids)
        codes = None
        if self._pq is not None:
            codes = bytes(faiss.serialize_index(self._pq).tobytes())
        return TenantState([str(c) for c in self._ids], self._matrix[:count].copy(), codes)

    @classmethod
    def from_state(
        cls, state: TenantState, *, index_threshold: int, candidates: int
    ) -> TenantIndex:
        """Rebuild from a snapshot; codes that do not fit the rows are rebuilt."""
        index = cls(index_threshold=index_threshold, candidates=candidates)
        count = len(state.ids)
        if state.matrix.shape != (count, DIM) or len(set(state.ids)) != count:
            raise ValueError("gallery snapshot rows and ids disagree")
        index._matrix = np.ascontiguousarray(state.matrix, dtype=np.float32)
        index._alive = np.ones(count, dtype=bool)
        index._ids = list(state.ids)
        index._row = {cid: n for n, cid in enumerate(state.ids)}
        if state.codes is not None:
            pq = faiss.deserialize_index(np.frombuffer(state.codes, dtype=np.uint8))
            if pq.ntotal == count and pq.d == DIM:
                index._pq = pq
        if index._pq is None and count >= index._threshold:
            index._build()
        return index


__all__ = [
    "DEFAULT_CANDIDATES",
    "DIM",
    "TenantIndex",
    "TenantState",
]
