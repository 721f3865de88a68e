"""The dispatcher's small HTTP pools per endpoint (``_clients.EndpointClients``): concurrent
sends to one host are spread so that no client holds more than its connections,
idle clients are reused, and clients nobody used for a while are closed."""

from __future__ import annotations

import math

import httpx
import pytest

from bioverify.webhooks._clients import CONNECTIONS_PER_CLIENT, EndpointClients

pytestmark = pytest.mark.anyio


def _clients() -> tuple[EndpointClients, list[httpx.AsyncClient]]:
    made: list[httpx.AsyncClient] = []

    def factory() -> httpx.AsyncClient:
        made.append(httpx.AsyncClient())
        return made[-1]

    return EndpointClients(factory, per_endpoint=16, idle_seconds=0.0), made


async def test_sends_to_one_endpoint_are_spread_over_small_clients() -> None:
    pool, made = _clients()
    shards = [pool.acquire("a.example:443") for _ in range(16)]
    # As many clients as the per-host limit needs, and no client over its connections.
    assert len(made) == math.ceil(16 / CONNECTIONS_PER_CLIENT)
    assert max(shard.busy for shard in shards) <= CONNECTIONS_PER_CLIENT
    for shard in shards:
        pool.release(shard)
    # Released clients are reused: the least busy one, no new client.
    again = pool.acquire("a.example:443")
    assert again.client in made
    assert len(made) == math.ceil(16 / CONNECTIONS_PER_CLIENT)
    pool.release(again)
    # Another endpoint (the same host, another port) never shares a client with the
    # first: its sends cannot wait for connections the first one's slow sends hold.
    other = pool.acquire("a.example:8443")
    assert other.client not in made[:-1]
    pool.release(other)
    await pool.aclose()


@pytest.mark.parametrize("busy", [False, True])
async def test_idle_clients_are_closed_and_busy_ones_kept(busy: bool) -> None:
    pool, made = _clients()
    shard = pool.acquire("a.example:443")
    if not busy:
        pool.release(shard)
    await pool.prune()  # idle_seconds=0: anything not in use is idle
    assert made[0].is_closed is not busy
    if busy:
        pool.release(shard)
    await pool.aclose()
    assert made[0].is_closed
