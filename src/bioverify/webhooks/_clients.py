"""Small HTTP connection pools per destination endpoint (host and port).

httpcore's pool gets slower as it grows: every request scans every connection of
its pool, polling each socket (measured on loopback, 64 in flight: one pool of 64
~270-400 POSTs/s, eight pools of 8 ~1,250-1,900/s, 32 pools of 2 ~1,950-2,250/s;
the dispatcher draining an outbox on SQLite went from ~880 to ~1,080-1,230
deliveries/s with 2 instead of 8; bench/webhooks.py). So each endpoint gets
several small clients and a request goes to the least busy one. Clients are keyed
like the dispatcher's slot cap (one endpoint), so the capped sends of one endpoint
always find a connection and never wait for those another endpoint's slow sends
hold. Clients idle for a while are closed, so thousands of integrator endpoints do
not pin sockets forever.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

#: Connections each client may open; keep in step with the factory's limits.
CONNECTIONS_PER_CLIENT = 2


@dataclass
class _Shard:
    client: httpx.AsyncClient
    busy: int = 0
    last_used: float = 0.0


class EndpointClients:
    """Hands out an :class:`httpx.AsyncClient` per request, pooled by endpoint."""

    def __init__(
        self,
        factory: Callable[[], httpx.AsyncClient],
        per_endpoint: int,
        idle_seconds: float = 60.0,
    ) -> None:
        self._factory = factory
        self._shards_per_endpoint = max(1, math.ceil(per_endpoint / CONNECTIONS_PER_CLIENT))
        self._idle = idle_seconds
        self._endpoints: dict[str, list[_Shard]] = {}

    def acquire(self, endpoint: str) -> _Shard:
        """The least busy client for ``endpoint`` (a new one while under the shard count)."""
        shards = self._endpoints.setdefault(endpoint, [])
        shard = min(shards, key=lambda s: s.busy, default=None)
        if shard is None or (shard.busy and len(shards) < self._shards_per_endpoint):
            shard = _Shard(self._factory())
            shards.append(shard)
        shard.busy += 1
        shard.last_used = time.monotonic()
        return shard

    @staticmethod
    def release(shard: _Shard) -> None:
        shard.busy -= 1
        shard.last_used = time.monotonic()

    async def prune(self) -> None:
        """Close clients nobody used for ``idle_seconds``."""
        cutoff = time.monotonic() - self._idle
        for endpoint in list(self._endpoints):
            keep = []
            for shard in self._endpoints[endpoint]:
                if shard.busy or shard.last_used > cutoff:
                    keep.append(shard)
                else:
                    await shard.client.aclose()
            if keep:
                self._endpoints[endpoint] = keep
            else:
                del self._endpoints[endpoint]

    async def aclose(self) -> None:
        for shards in self._endpoints.values():
            for shard in shards:
                await shard.client.aclose()
        self._endpoints.clear()


__all__ = ["CONNECTIONS_PER_CLIENT", "EndpointClients"]
