"""Sending claimed webhooks: signed POSTs, one attempt each, within the slot caps.

Each endpoint (host and port) gets at most ``per_endpoint_limit`` sends in flight,
so one slow integrator never takes the others' slots; every attempt ends within its
deadline; redirects are refused, and at most ``max_response_bytes`` of an answer is
read. A send never raises: whatever happens becomes the attempt's outcome.
"""

from __future__ import annotations

import asyncio
import functools
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from urllib.parse import urlsplit

import aiohttp
import structlog

from bioverify.webhooks._transport import GuardedHttp
from bioverify.webhooks.claiming import Claimed
from bioverify.webhooks.dispatch_config import DispatcherConfig
from bioverify.webhooks.egress import EgressRefused
from bioverify.webhooks.recording import Attempt
from bioverify.webhooks.signing import sign

log = structlog.get_logger("bioverify.webhooks.dispatcher")

#: Callback headers may add to the request but never replace these.
_RESERVED_HEADERS = frozenset(
    {"content-type", "content-length", "host", "connection", "transfer-encoding", "user-agent"}
)
_USER_AGENT = "bioverify-webhooks/1"


def request_headers(
    msg_id: str, timestamp: int, signature: str, attempt: int, callback_headers: dict[str, str]
) -> dict[str, str]:
    """The POST's headers: the session's callback headers under the webhook ones."""
    out = {
        k: v
        for k, v in callback_headers.items()
        if not k.lower().startswith("webhook-") and k.lower() not in _RESERVED_HEADERS
    }
    out.update(
        {
            "webhook-id": msg_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signature,
            "webhook-attempt": str(attempt),
            "content-type": "application/json",
            "user-agent": _USER_AGENT,
        }
    )
    return out


#: The stored callback headers of a session that set none.
_NO_HEADERS = "{}"

#: Ports a URL without one connects to.
_DEFAULT_PORTS = {"http": 80, "https": 443}


@functools.lru_cache(maxsize=4096)
def endpoint_of(url: str) -> str:
    """What slots are capped per: one receiving server (host and port; the scheme's
    default port when the URL gives none, so ``https://h/`` and ``https://h:443/`` are
    one server, as they are to the HTTP client's connection limit).

    Cached: each message's URL is looked at twice per attempt, and most messages
    go to a handful of endpoints."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    port = port or _DEFAULT_PORTS.get(parts.scheme.lower())
    return f"{(parts.hostname or '').lower()}:{port or ''}"


def _describe(exc: Exception) -> str:
    """A short, secret-free description of a network failure for the delivery log."""
    if isinstance(exc, EgressRefused):
        return f"egress refused: {exc.message}"
    if isinstance(exc, TimeoutError):  # aiohttp's connect and read timeouts
        return f"timeout ({type(exc).__name__})"
    if isinstance(exc, aiohttp.ClientConnectorError):
        # The delivery log's wording from before aiohttp: "ConnectError: ...".
        reason = exc.os_error.strerror or type(exc.os_error).__name__
        return f"ConnectError: could not connect to {exc.host}:{exc.port} ({reason})"[:200]
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}"[:200]


class Sender:
    """Sends claimed messages, each endpoint within its slot cap."""

    def __init__(self, config: DispatcherConfig) -> None:
        self._config = config
        self._http = GuardedHttp(
            config.guard,
            max_connections=config.concurrency,
            per_endpoint=config.per_endpoint_limit,
        )
        self._deadline_s = config.deadline.total_seconds()
        self._sending: set[str] = set()
        # Accepted by startable() but not yet sent (id -> endpoint), and how many per
        # endpoint: they count against the endpoint's cap from the moment they are
        # accepted, so claims waiting for a slot cannot overfill one endpoint.
        self._held: dict[str, str] = {}
        self._held_per: dict[str, int] = {}
        self._slots: dict[str, asyncio.Semaphore] = {}
        self._slot_users: dict[str, int] = {}

    async def aclose(self) -> None:
        """Close the HTTP connections (they are kept alive between sends)."""
        await self._http.aclose()

    def _slot_enter(self, endpoint: str) -> asyncio.Semaphore:
        sem = self._slots.get(endpoint)
        if sem is None:
            sem = self._slots[endpoint] = asyncio.Semaphore(self._config.per_endpoint_limit)
        self._slot_users[endpoint] = self._slot_users.get(endpoint, 0) + 1
        return sem

    def _slot_exit(self, endpoint: str) -> None:
        self._slot_users[endpoint] -= 1
        if not self._slot_users[endpoint]:  # forget idle endpoints so the maps stay small
            del self._slot_users[endpoint]
            del self._slots[endpoint]

    async def startable(
        self,
        claimed: Sequence[Claimed],
        defer: Callable[[Sequence[Claimed]], Awaitable[None]],
    ) -> list[Claimed]:
        """The claims to send now. A message already being sent here is never sent a
        second time in parallel; an endpoint at its slot cap gets its extra claims
        handed back through ``defer``, so one slow integrator holds at most
        ``per_endpoint_limit`` slots and never the others'."""
        start: list[Claimed] = []
        deferred: list[Claimed] = []
        for msg in claimed:
            if msg.id in self._sending or msg.id in self._held:
                continue
            endpoint = endpoint_of(msg.url)
            busy = self._slot_users.get(endpoint, 0) + self._held_per.get(endpoint, 0)
            if busy >= self._config.per_endpoint_limit:
                deferred.append(msg)
                continue
            self._held[msg.id] = endpoint
            self._held_per[endpoint] = self._held_per.get(endpoint, 0) + 1
            start.append(msg)
        if deferred:
            await defer(deferred)
        return start

    def forget(self, claimed: Sequence[Claimed]) -> None:
        """Claims accepted by :meth:`startable` that will not be sent after all."""
        for msg in claimed:
            self._unhold(msg.id)

    def _unhold(self, msg_id: str) -> None:
        endpoint = self._held.pop(msg_id, None)
        if endpoint is not None:
            self._held_per[endpoint] -= 1
            if not self._held_per[endpoint]:
                del self._held_per[endpoint]

    async def send(self, msg: Claimed) -> Attempt:
        """One attempt of ``msg``: its outcome, whatever happened."""
        # From held to sending with no await in between: the endpoint's count
        # moves from held to slot users (in _send) before anything else runs.
        self._unhold(msg.id)
        self._sending.add(msg.id)
        try:
            return await self._send(msg)
        finally:
            self._sending.discard(msg.id)

    async def _send(self, msg: Claimed) -> Attempt:
        endpoint = endpoint_of(msg.url)
        sem = self._slot_enter(endpoint)
        try:
            async with sem:
                return await self._post(msg)
        except Exception as exc:  # a bug in one send must not lose the others' results
            log.exception("webhook.send_crashed", webhook_id=msg.id)
            at = self._config.clock()
            return Attempt(msg, at, None, f"internal error: {type(exc).__name__}", {}, 0)
        finally:
            self._slot_exit(endpoint)

    async def _post(self, msg: Claimed) -> Attempt:
        config = self._config
        at = config.clock()
        started = time.perf_counter()
        status: int | None = None
        error: str | None = None
        resp_headers: dict[str, str] = {}
        try:
            body = msg.payload.encode()
            timestamp = int(at.timestamp())
            secrets = msg.secrets  # read with the claim, off the event loop
            if isinstance(secrets, Exception):
                # Shared by the batch's messages of this client: raised afresh each time.
                raise secrets.with_traceback(None)
            signature = sign(
                msg.id, timestamp, body, secrets=secrets, ed25519_keys=config.signing_keys()
            )
            # Most sessions set no callback headers: skip parsing the stored "{}".
            callback_headers = {} if msg.headers == _NO_HEADERS else json.loads(msg.headers)
            if config.open_headers is not None:
                callback_headers = config.open_headers(msg.client_id, callback_headers)
            headers = request_headers(msg.id, timestamp, signature, msg.attempt, callback_headers)
        except Exception as exc:  # a missing secret must not stop the loop  # noqa: BLE001 - reported, never fatal here
            log.warning("webhook.sign_failed", webhook_id=msg.id, error=type(exc).__name__)
            error = "could not sign the webhook or open its callback headers (no usable key)"
        else:
            deadline = asyncio.timeout(self._deadline_s)
            try:
                async with deadline, self._http.post(msg.url, body, headers) as resp:
                    status = resp.status
                    if not 200 <= status < 300:
                        # Only a failure's headers matter (Retry-After); a success's
                        # are not copied.
                        resp_headers = {k.lower(): v for k, v in resp.headers.items()}
                    await self._drain(resp)
                if 300 <= status < 400:
                    error = f"redirect {status} refused (webhooks do not follow redirects)"
            except TimeoutError as exc:
                if deadline.expired():
                    status = None
                    error = f"deadline exceeded (no complete answer within {self._deadline_s:g} s)"
                elif status is None:
                    error = _describe(exc)
            except (aiohttp.ClientError, EgressRefused, OSError, ValueError) as exc:
                # ValueError: a URL or header aiohttp will not send.
                if status is None:
                    error = _describe(exc)
        latency = int((time.perf_counter() - started) * 1000)
        return Attempt(msg, at, status, error, resp_headers, latency)

    async def _drain(self, resp: aiohttp.ClientResponse) -> None:
        # Read at most the cap: a receiver must not make us buffer gigabytes. A body
        # left unread closes the connection instead of returning it to the pool.
        seen = 0
        while chunk := await resp.content.readany():
            seen += len(chunk)
            if seen >= self._config.max_response_bytes:
                resp.close()
                break


__all__ = ["Sender", "endpoint_of", "request_headers"]
