"""Check ranges of entries in worker processes *and* in this one, results in range order.

The pool works through a window of ranges from its front; this process, instead
of waiting, takes the range at the back of the window that no worker has started
yet. So with ``workers`` processes in all, ``workers - 1`` are started (each start
costs an interpreter and its imports, about 0.2 s of CPU), none sits idle, and
the results still come out in order: the first problem met is the first bad
entry. At most the window's results are held in memory.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Generator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor

from bioverify.audit.verify_chunk import ChunkResult, Connect, check_range_in_worker

#: Ranges in flight per worker process. A process pool hands each worker its next
#: range early (it cannot be cancelled then); a wider window leaves ranges behind
#: those for this process to take.
WINDOW_PER_WORKER = 4


def checked_in_order(
    connect: Connect,
    bounds: Sequence[tuple[int, int]],
    workers: int,
    here: Callable[[int, int], ChunkResult],
) -> Generator[ChunkResult, None, None]:
    """Results of ``bounds`` in order; ``here(lo, hi)`` checks a range in this process.

    Stopping the iteration early (a problem found) cancels the ranges not started.
    """
    # spawn: safe even if the caller runs threads (the CLI's progress bar does);
    # workers import only bioverify.audit.verify_chunk and the driver.
    context = multiprocessing.get_context("spawn")
    started = max(1, workers - 1)
    window = 2 + WINDOW_PER_WORKER * started
    with ProcessPoolExecutor(max_workers=started, mp_context=context) as pool:
        pending: dict[int, Future[ChunkResult]] = {}
        done: dict[int, ChunkResult] = {}
        submitted = 0
        try:
            for k in range(len(bounds)):
                while submitted < min(len(bounds), k + window):
                    lo, hi = bounds[submitted]
                    pending[submitted] = pool.submit(check_range_in_worker, connect, lo, hi)
                    submitted += 1
                while k not in done:
                    future = pending.get(k)
                    if future is not None and future.done():
                        done[k] = pending.pop(k).result()
                        continue
                    # The back of the window first: the workers take from the front.
                    stolen = next(
                        (j for j in sorted(pending, reverse=True) if pending[j].cancel()), None
                    )
                    if stolen is None:
                        done[k] = pending.pop(k).result()  # every range left is running
                    else:
                        del pending[stolen]
                        done[stolen] = here(*bounds[stolen])
                yield done.pop(k)
        finally:
            for future in pending.values():
                future.cancel()


__all__ = ["WINDOW_PER_WORKER", "checked_in_order"]
