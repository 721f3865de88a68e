"""Small HTTP connection pools per destination host.

httpcore's pool gets slower as it grows (measured on loopback: one pool of 64
connections ~270 POSTs/s, eight pools of 8 ~1,300/s), so each host gets a few
small clients and a request goes to the least busy one. Clients idle for a while
are closed, so thousands of integrator hosts do not pin sockets forever.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

#: Connections each client may open; keep in step with the factory's limits.
CONNECTIONS_PER_CLIENT = 8


@dataclass
class _Shard:
    client: httpx.AsyncClient
    busy: int = 0
    last_used: float = 0.0


class HostClients:
    """Hands out an :class:`httpx.AsyncClient` per request, pooled by host."""

    def __init__(
        self, factory: Callable[[], httpx.AsyncClient], per_host: int, idle_seconds: float = 60.0
    ) -> None:
        self._factory = factory
        self._shards_per_host = max(1, math.ceil(per_host / CONNECTIONS_PER_CLIENT))
        self._idle = idle_seconds
        self._hosts: dict[str, list[_Shard]] = {}

    def acquire(self, host: str) -> _Shard:
        """The least busy client for ``host`` (a new one while under the shard count)."""
        shards = self._hosts.setdefault(host, [])
        shard = min(shards, key=lambda s: s.busy, default=None)
        if shard is None or (shard.busy and len(shards) < self._shards_per_host):
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
        for host in list(self._hosts):
            keep = []
            for shard in self._hosts[host]:
                if shard.busy or shard.last_used > cutoff:
                    keep.append(shard)
                else:
                    await shard.client.aclose()
            if keep:
                self._hosts[host] = keep
            else:
                del self._hosts[host]

    async def aclose(self) -> None:
        for shards in self._hosts.values():
            for shard in shards:
                await shard.client.aclose()
        self._hosts.clear()


__all__ = ["CONNECTIONS_PER_CLIENT", "HostClients"]
