"""A fair share of the biometric engine per tenant.

The engine runs ``capacity`` analyses at once (one per worker process). Without a
share, one tenant sending many heavy captures fills the engine's queue and every
other tenant's capture waits behind all of them. So at most ``capacity`` analyses
are handed to the engine at a time, and the rest wait here, per tenant: when an
analysis ends, its slot goes to the waiting tenant with the fewest analyses running,
and among those to the one served least recently (then first come). A tenant alone
may use every slot (a slot kept in reserve would leave a core idle: half the engine
on two cores), yet a tenant with nothing running never waits behind another tenant's
backlog: it waits only for analyses already running and takes the first slot that
frees, unless another such tenant was there first.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field


@dataclass
class _Tenant:
    running: int = 0
    #: When this tenant last got a slot (a grant number; -1: not since it was idle).
    served: int = -1
    #: (arrival number, the waiter's future), oldest first.
    waiting: deque[tuple[int, asyncio.Future[None]]] = field(default_factory=deque)


class TenantShare:
    """Fair, work-conserving slots for engine analyses (one event loop)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = max(1, capacity)
        self._free = self.capacity
        self._tenants: dict[str, _Tenant] = {}
        self._arrivals = itertools.count()
        self._grants = itertools.count()

    def busy(self, tenant: str) -> int:
        """Captures of ``tenant`` analysing or waiting for a slot."""
        state = self._tenants.get(tenant)
        return 0 if state is None else state.running + len(state.waiting)

    def _grant(self) -> None:
        """Hand free slots to waiters: fewest running, then served least recently, then
        the oldest arrival."""
        while self._free:
            waiting = [s for s in self._tenants.values() if s.waiting]
            if not waiting:
                return
            state = min(waiting, key=lambda s: (s.running, s.served, s.waiting[0][0]))
            _, future = state.waiting.popleft()
            if future.done():
                # Cancelled while queued: its task has not run its handler yet (a
                # task's wait is cancelled at once, its except clause runs later).
                continue
            state.running += 1
            state.served = next(self._grants)
            self._free -= 1
            future.set_result(None)

    def _release(self, tenant: str) -> None:
        state = self._tenants[tenant]
        state.running -= 1
        self._free += 1
        if not state.running and not state.waiting:  # forget idle tenants: the map stays small
            del self._tenants[tenant]
        self._grant()

    @contextlib.asynccontextmanager
    async def slot(self, tenant: str) -> AsyncIterator[None]:
        """Hold one engine slot for ``tenant`` for the duration."""
        state = self._tenants.setdefault(tenant, _Tenant())
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (next(self._arrivals), future)
        state.waiting.append(entry)
        self._grant()
        try:
            await future
        except BaseException:
            if future.done() and not future.cancelled():
                self._release(tenant)  # granted as the wait was cancelled: hand it on
            else:
                if entry in state.waiting:  # _grant may have dropped it already
                    state.waiting.remove(entry)
                if not state.running and not state.waiting and self._tenants.get(tenant) is state:
                    del self._tenants[tenant]
            raise
        try:
            yield
        finally:
            self._release(tenant)


__all__ = ["TenantShare"]
