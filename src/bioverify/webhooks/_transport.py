"""An httpx transport whose every TCP connection goes to an address the guard vetted.

httpcore resolves host names inside its network backend; wrapping that backend
means the address checked is the address connected to (no DNS-rebinding gap),
while TLS still uses the original host name for SNI and certificate checks, and
the ``Host`` header is untouched.
"""

from __future__ import annotations

import functools
import ipaddress
import ssl
import typing

import anyio.to_thread
import httpcore
import httpx

from bioverify.webhooks.egress import EgressGuard, EgressRefused


class _GuardedBackend(httpcore.AsyncNetworkBackend):
    def __init__(self, guard: EgressGuard, inner: httpcore.AsyncNetworkBackend) -> None:
        self._guard = guard
        self._inner = inner

    async def _addresses(self, host: str, port: int) -> list[str]:
        try:
            ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            # A name: getaddrinfo blocks, keep it off the event loop.
            return await anyio.to_thread.run_sync(self._guard.allowed_addresses, host, port)
        return self._guard.allowed_addresses(host, port)

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 -- httpcore's interface
        local_address: str | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            addresses = await self._addresses(host, port)
        except EgressRefused as exc:
            raise httpcore.ConnectError(f"egress refused: {exc.message}") from exc
        failures: list[Exception] = []
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    address,
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failures.append(exc)
        raise httpcore.ConnectError(f"could not connect to {host}:{port}") from failures[-1]

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 -- httpcore's interface
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("unix sockets are not webhook destinations")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """``httpx.AsyncHTTPTransport`` with no proxies and a guard on every connection."""

    def __init__(
        self, guard: EgressGuard, *, limits: httpx.Limits, ssl_context: ssl.SSLContext | None = None
    ) -> None:
        ssl_context = ssl_context or default_ssl_context()
        super().__init__(verify=ssl_context, limits=limits, trust_env=False)
        # httpx does not expose the network backend; build the pool it would build,
        # with ours. Covered by the DNS-rebinding test.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=_GuardedBackend(guard, httpcore.AnyIOBackend()),
        )


@functools.cache
def default_ssl_context() -> ssl.SSLContext:
    """One verifying TLS context for every client (loading the CA bundle costs ~20 ms)."""
    return httpx.create_ssl_context(trust_env=False)


def guarded_client(
    guard: EgressGuard,
    *,
    connect_timeout: float = 5.0,
    read_timeout: float = 15.0,
    max_connections: int = 8,
) -> httpx.AsyncClient:
    """The dispatcher's default HTTP client: guarded, keep-alive, no redirects, no proxies."""
    limits = httpx.Limits(
        max_connections=max_connections,
        max_keepalive_connections=max_connections,
        keepalive_expiry=30.0,
    )
    timeout = httpx.Timeout(read_timeout, connect=connect_timeout)
    return httpx.AsyncClient(
        transport=GuardedTransport(guard, limits=limits),
        timeout=timeout,
        follow_redirects=False,
        trust_env=False,
    )


__all__ = ["GuardedTransport", "guarded_client"]
