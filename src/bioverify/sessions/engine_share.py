"""A fair share of the biometric engine per tenant.

The engine runs a few analyses at once (one per worker process). Without a share,
one tenant sending many heavy captures fills the engine's queue and every other
tenant's capture waits behind all of them. Each tenant may have at most
``per_tenant`` analyses submitted at a time (one less than the engine's capacity,
at least one); its further captures wait for its own earlier ones, so another
tenant's capture waits at most for the analyses already running.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator


class TenantShare:
    """Per-tenant limits on concurrent engine analyses (one event loop)."""

    def __init__(self, capacity: int) -> None:
        self.per_tenant = max(1, capacity - 1)
        self._slots: dict[str, asyncio.Semaphore] = {}
        self._users: dict[str, int] = {}

    def busy(self, tenant: str) -> int:
        """Captures of ``tenant`` analysing or waiting for its share."""
        return self._users.get(tenant, 0)

    @contextlib.asynccontextmanager
    async def slot(self, tenant: str) -> AsyncIterator[None]:
        """Hold one of ``tenant``'s analysis slots for the duration."""
        sem = self._slots.get(tenant)
        if sem is None:
            sem = self._slots[tenant] = asyncio.Semaphore(self.per_tenant)
        self._users[tenant] = self._users.get(tenant, 0) + 1
        try:
            async with sem:
                yield
        finally:
            self._users[tenant] -= 1
            if not self._users[tenant]:  # forget idle tenants: the maps stay small
                del self._users[tenant]
                del self._slots[tenant]


__all__ = ["TenantShare"]
