"""Fixed-window counters in a TTL map: O(1) amortised, stale keys evicted as time passes.

Windows are kept in the order they opened, which is also the order they close, so
closed ones are popped from the front: each key is inserted and evicted once per
window, and a spray of distinct keys costs memory for one window only. Used by the
failure throttle and by the aggregation of repeated security events.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


@dataclass(slots=True)
class Window(Generic[V]):
    """One key's open window: when it opened, how many it counted, what came first."""

    start: float
    count: int
    first: V


class WindowCounts(Generic[K, V]):
    """Counts per key within a fixed window that opens at the key's first count."""

    def __init__(self, window_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.window_s = window_s
        self._clock = clock
        self._open: OrderedDict[K, Window[V]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            self._evict(self._clock())
            return len(self._open)

    def _evict(self, now: float) -> list[tuple[K, Window[V]]]:
        closed: list[tuple[K, Window[V]]] = []
        while self._open:
            key, window = next(iter(self._open.items()))
            if window.start > now - self.window_s:
                break
            self._open.popitem(last=False)
            closed.append((key, window))
        return closed

    def get(self, key: K) -> tuple[Window[V] | None, float]:
        """The key's open window (``None`` if none) and the current time."""
        with self._lock:
            now = self._clock()
            self._evict(now)
            return self._open.get(key), now

    def add(self, key: K, first: V) -> tuple[Window[V], list[tuple[K, Window[V]]]]:
        """Count one for ``key``; its window, and the windows that closed meanwhile."""
        with self._lock:
            closed = self._evict(self._clock())
            window = self._open.get(key)
            if window is None:
                window = self._open[key] = Window(self._clock(), 1, first)
            else:
                window.count += 1
            return window, closed

    def drain(self) -> list[tuple[K, Window[V]]]:
        """Close every window now (shutdown)."""
        with self._lock:
            closed = list(self._open.items())
            self._open.clear()
            return closed


__all__ = ["Window", "WindowCounts"]
