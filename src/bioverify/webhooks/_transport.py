"""The dispatcher's HTTP client: aiohttp, every TCP connection to an address the guard vetted.

aiohttp was chosen by measurement (``bench/webhooks.py``: the fastest raw client
against the loopback receiver, ahead of urllib3 in threads and well ahead of
httpx's async pool, whose every request scans and polls the pool's connections).

What keeps the egress guarantees:

- Host names are resolved only by :class:`GuardedResolver`, which asks
  :meth:`EgressGuard.allowed_addresses` (off the event loop, it may call
  ``getaddrinfo``) and hands aiohttp the vetted addresses alone, so the address
  checked is the address connected to (no DNS-rebinding gap). aiohttp's DNS cache is
  off: every new connection is vetted again.
- aiohttp connects to a literal IP address without asking any resolver, so
  :meth:`GuardedHttp.post` vets literal hosts itself before each request.
- TLS uses the URL's host name for SNI and the certificate check (aiohttp passes it
  as ``server_hostname`` whatever address it connects to), and ``Host`` is untouched.
- No redirects, no proxies or ``.netrc`` from the environment, no cookies kept
  between receivers, no decompression of answers, and every read and connect has a
  timeout.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import socket
import ssl
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractAsyncContextManager

import aiohttp
import httpx
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.helpers import is_ip_address
from yarl import URL

from bioverify.webhooks.egress import EgressGuard, EgressRefused

#: Literal addresses remembered as allowed (forgotten all at once past this many).
_MAX_VETTED_LITERALS = 4096
#: Threads for name lookups (``getaddrinfo`` blocks). Their own pool: a receiver whose
#: name server never answers ties up only these, never the threads the dispatcher's
#: database work runs on (asyncio's default executor), so deliveries elsewhere go on.
_RESOLVER_THREADS = 8


class GuardedResolver(AbstractResolver):
    """aiohttp's resolver for webhook hosts: the guard's vetted addresses, or refusal."""

    def __init__(self, guard: EgressGuard) -> None:
        self._guard = guard
        self._lookups = ThreadPoolExecutor(_RESOLVER_THREADS, thread_name_prefix="webhook-dns")

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        # EgressRefused propagates unwrapped (aiohttp wraps only OSError), so the
        # attempt's error says why.
        loop = asyncio.get_running_loop()
        addresses = await loop.run_in_executor(
            self._lookups, self._guard.allowed_addresses, host, port
        )
        return [
            {
                "hostname": host,
                "host": address,
                "port": port,
                "family": socket.AF_INET6 if ":" in address else socket.AF_INET,
                "proto": 0,
                "flags": socket.AI_NUMERICHOST | socket.AI_NUMERICSERV,
            }
            for address in addresses
        ]

    async def close(self) -> None:
        """Stop the lookup threads; a lookup still stuck is abandoned, not awaited."""
        self._lookups.shutdown(wait=False, cancel_futures=True)


@functools.cache
def default_ssl_context() -> ssl.SSLContext:
    """One verifying TLS context for every client (loading the CA bundle costs ~20 ms)."""
    return httpx.create_ssl_context(trust_env=False)


@functools.lru_cache(maxsize=4096)
def _parse(url: str) -> tuple[URL, str, bool]:
    """A webhook URL parsed once (most messages go to a handful of endpoints): the
    URL, its host, and whether the host is a literal IP address.

    ``encoded=True``: the path and query go out exactly as registered (yarl would
    otherwise normalise them: "/a/../b" -> "/b", "%7e" -> "~")."""
    parsed = URL(url, encoded=True)
    host = parsed.raw_host or ""
    return parsed, host, bool(is_ip_address(host))


class GuardedHttp:
    """One keep-alive aiohttp session for every webhook endpoint, guarded.

    aiohttp's pool keeps idle connections per endpoint (host, port, TLS) in a map,
    so a request costs the same with 2 or 2,000 connections open; idle ones close
    after ``keepalive_s``. The session is made on first use, on the running loop.
    """

    def __init__(
        self,
        guard: EgressGuard,
        *,
        max_connections: int,
        per_endpoint: int,
        connect_timeout: float = 5.0,
        read_timeout: float = 15.0,
        keepalive_s: float = 30.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._guard = guard
        self._max_connections = max_connections
        self._per_endpoint = per_endpoint
        self._timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=connect_timeout, sock_read=read_timeout
        )
        self._keepalive_s = keepalive_s
        self._ssl = ssl_context
        self._session: aiohttp.ClientSession | None = None
        self._resolver: GuardedResolver | None = None
        self._vetted_literals: set[str] = set()

    def _open(self) -> aiohttp.ClientSession:
        # The connector does not own a resolver it is given: aclose closes it.
        self._resolver = GuardedResolver(self._guard)
        connector = aiohttp.TCPConnector(
            resolver=self._resolver,
            use_dns_cache=False,
            ssl=self._ssl or default_ssl_context(),
            limit=self._max_connections,
            limit_per_host=self._per_endpoint,
            keepalive_timeout=self._keepalive_s,
        )
        return aiohttp.ClientSession(
            connector=connector,
            timeout=self._timeout,
            trust_env=False,
            cookie_jar=aiohttp.DummyCookieJar(),
            auto_decompress=False,
            raise_for_status=False,
            skip_auto_headers=("Accept-Encoding",),
        )

    def post(
        self, url: str, body: bytes, headers: dict[str, str]
    ) -> AbstractAsyncContextManager[aiohttp.ClientResponse]:
        """``async with http.post(...) as resp``: one POST, redirects not followed.

        Raises :class:`~bioverify.webhooks.egress.EgressRefused` for a host the guard
        refuses (a literal address here, a name when it is connected to)."""
        parsed, host, literal = _parse(url)
        if literal and host not in self._vetted_literals:
            # aiohttp connects to what it takes for an address without a resolver. Only
            # a form the standard parser reads too is vetted (never by a name lookup,
            # which would block the loop); anything else aiohttp calls an address is
            # refused outright.
            try:
                ipaddress.ip_address(host.split("%", 1)[0])
            except ValueError:
                raise EgressRefused("callback.url host is not a valid IP address") from None
            # A literal's verdict depends on nothing else (no DNS), so a pass is kept.
            self._guard.allowed_addresses(host, parsed.port or 0)
            if len(self._vetted_literals) >= _MAX_VETTED_LITERALS:
                self._vetted_literals.clear()
            self._vetted_literals.add(host)
        if self._session is None:
            self._session = self._open()
        return self._session.post(parsed, data=body, headers=headers, allow_redirects=False)

    async def aclose(self) -> None:
        """Close every connection."""
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._resolver is not None:
            await self._resolver.close()
            self._resolver = None


__all__ = ["GuardedHttp", "GuardedResolver", "default_ssl_context"]
