"""Test helpers for code that uses the SDK: retries without sleeping."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from bioverify_client import retry


@contextlib.contextmanager
def instant_retries() -> Iterator[list[float]]:
    """Within the block, retry waits are recorded instead of slept.

    Yields the list of the delays (seconds) the SDK would have slept, in order.
    Retry budgets still apply: skipped sleeps advance the SDK's budget clock, so a
    test sees the same number of attempts as production would.
    """
    recorded: list[float] = []
    retry._SWITCH.attach(recorded)
    try:
        yield recorded
    finally:
        retry._SWITCH.detach(recorded)


__all__ = ["instant_retries"]
