"""``serve`` freezes its start-up heap: full collections no longer walk it."""

from __future__ import annotations

import gc

from bioverify.serving import settle_heap


def test_settle_heap_freezes_what_start_up_built() -> None:
    gc.unfreeze()
    before = gc.get_freeze_count()
    try:
        settle_heap()
        assert gc.get_freeze_count() > before
        # What is allocated afterwards is still the collector's (only start-up is frozen).
        cycle: list[object] = []
        cycle.append(cycle)
        assert gc.is_tracked(cycle)
        del cycle
        assert gc.collect() >= 1
    finally:
        gc.unfreeze()  # the rest of the test process is collected as usual
