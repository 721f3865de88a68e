"""The dispatcher: claims due outbox rows, signs, POSTs, records, reschedules.

Claiming is one ``UPDATE ... WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED)
RETURNING`` statement: on PostgreSQL many workers share the queue without ever
holding the same row; on SQLite the statement is atomic under the database lock.
A claim is a lease (``claimed_until``): a worker that dies mid-send leaves rows
that become due again when the lease runs out, so delivery is at-least-once and
receivers deduplicate by ``webhook-id``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import inspect
import json
import random
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

import httpx
import structlog
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Connection, Engine, bindparam, insert, select, update

from bioverify.storage.base import utcnow
from bioverify.webhooks._clients import CONNECTIONS_PER_CLIENT, EndpointClients
from bioverify.webhooks._transport import guarded_client
from bioverify.webhooks.egress import EgressGuard
from bioverify.webhooks.models import (
    ACTIVE_STATUSES,
    MessageKind,
    MessageStatus,
    WebhookDelivery,
    WebhookMessage,
)
from bioverify.webhooks.outbox import MessageView
from bioverify.webhooks.retry import Action, RetryPolicy
from bioverify.webhooks.signing import sign

log = structlog.get_logger(__name__)

Callback = Callable[[MessageView], Awaitable[None] | None]

#: Callback headers may add to the request but never replace these.
_RESERVED_HEADERS = frozenset(
    {"content-type", "content-length", "host", "connection", "transfer-encoding", "user-agent"}
)
_USER_AGENT = "bioverify-webhooks/1"
_WAIT_BEHIND = dt.timedelta(milliseconds=1)
#: The longest a final webhook waits behind its session's undelivered event webhooks
#: (a slow event endpoint: each attempt may take a send timeout). Documented: the
#: final webhook goes out within 30 s whatever happens to the events.
FINAL_WAITS_AT_MOST = dt.timedelta(seconds=20)
_M = WebhookMessage


#: ``(client id, stored callback headers) -> headers to send`` (they are sealed at rest).
OpenHeaders = Callable[[str, dict[str, str]], dict[str, str]]

#: Given claimed ``(webhook id, payload)`` pairs, the payloads to send instead, by id.
Prepare = Callable[[list[tuple[str, str]]], dict[str, str]]


@dataclasses.dataclass(frozen=True, slots=True)
class _Claimed:
    id: str
    session_id: str
    client_id: str
    kind: str
    event: str | None
    payload: str
    url: str
    headers: str
    attempt: int
    schedule_base: int
    created_at: dt.datetime


@dataclasses.dataclass(frozen=True, slots=True)
class _Result:
    msg: _Claimed
    at: dt.datetime
    status: int | None
    error: str | None
    headers: dict[str, str]
    latency_ms: int


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


def _endpoint(url: str) -> str:
    """What slots are capped per: one receiving server (host and port)."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    return f"{(parts.hostname or '').lower()}:{port or ''}"


def _describe(exc: Exception) -> str:
    """A short, secret-free description of a network failure for the delivery log."""
    if isinstance(exc, httpx.TimeoutException):
        return f"timeout ({type(exc).__name__})"
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}"[:200]


class Dispatcher:
    """Delivers outbox messages; drive it with :meth:`run` or, in tests, :meth:`run_once`."""

    def __init__(
        self,
        engine: Engine,
        *,
        secrets_for: Callable[[str], Sequence[str]],
        signing_keys: Callable[[], Sequence[Ed25519PrivateKey]] = lambda: (),
        policy: RetryPolicy | None = None,
        guard: EgressGuard | None = None,
        http: Callable[[], httpx.AsyncClient] | None = None,
        concurrency: int = 64,
        per_endpoint_limit: int = 16,
        clock: Callable[[], dt.datetime] = utcnow,
        on_dead: Callback | None = None,
        on_delivered: Callback | None = None,
        lease: dt.timedelta = dt.timedelta(minutes=2),
        poll_interval: float = 0.25,
        shutdown_grace: float = 10.0,
        max_response_bytes: int = 64 * 1024,
        worker_id: str | None = None,
        rng: random.Random | None = None,
        prepare: Prepare | None = None,
        open_headers: OpenHeaders | None = None,
        attempt_deadline: dt.timedelta | None = None,
        endpoint_defer: dt.timedelta = dt.timedelta(seconds=1),
    ) -> None:
        self._engine = engine
        self._open_headers = open_headers
        self._prepare = prepare
        self._secrets_for = secrets_for
        self._signing_keys = signing_keys
        self.policy = policy or RetryPolicy()
        guard = guard or EgressGuard()
        self._http = EndpointClients(
            http or (lambda: guarded_client(guard, max_connections=CONNECTIONS_PER_CLIENT)),
            per_endpoint_limit,
        )
        self._concurrency = concurrency
        self._per_endpoint = per_endpoint_limit
        self._clock = clock
        self._on_dead = on_dead
        self._on_delivered = on_delivered
        self._lease = lease
        # Every attempt ends (whatever a receiver trickles) well before its lease does, so
        # no other claimer can start a second attempt of a message still being sent.
        deadline = attempt_deadline or min(dt.timedelta(seconds=30), lease / 2)
        if deadline >= lease:
            raise ValueError("attempt_deadline must be shorter than the lease")
        self._deadline_s = deadline.total_seconds()
        self._endpoint_defer = endpoint_defer
        self._sending: set[str] = set()
        self._poll_interval = poll_interval
        self._shutdown_grace = shutdown_grace
        self._max_response_bytes = max_response_bytes
        self.worker_id = worker_id or "w_" + secrets.token_hex(6)
        self._rng = rng or random.Random()  # noqa: S311 -- retry jitter, not security
        self._host_sems: dict[str, asyncio.Semaphore] = {}
        self._host_users: dict[str, int] = {}
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> Dispatcher:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP clients (connections are kept alive between sends)."""
        await self._http.aclose()

    def wake(self) -> None:
        """Ask :meth:`run` to look for due messages now (safe from any thread)."""
        if self._loop is not None and self._wake is not None:
            self._loop.call_soon_threadsafe(self._wake.set)

    # ------------------------------------------------------------------ database

    def claim_with(self, conn: Connection, limit: int) -> list[_Claimed]:
        """Lease up to ``limit`` due messages to this worker inside ``conn``'s transaction.

        Plain index-range queries only (no anti-join), so a cold table with stale
        planner statistics cannot turn a claim into a quadratic plan. A message that
        must wait for an earlier message of its session is pushed back to when that
        one is next due, so it never clogs the head of the queue.
        """
        now = self._clock()
        candidates = conn.execute(
            select(_M.id, _M.session_id, _M.sequence, _M.kind, _M.created_at)
            .where(_M.status.in_(ACTIVE_STATUSES), _M.next_attempt_at <= now)
            .order_by(_M.next_attempt_at)
            .limit(limit * 2)
            .with_for_update(skip_locked=True, of=_M)
        ).all()
        if not candidates:
            return []
        heads: dict[str, tuple[int, dt.datetime]] = {}
        failed_event: set[str] = set()
        for session_id, sequence, next_at, kind, attempts, status in conn.execute(
            select(
                _M.session_id, _M.sequence, _M.next_attempt_at, _M.kind, _M.attempts, _M.status
            ).where(
                _M.session_id.in_({c.session_id for c in candidates}),
                _M.status.in_(ACTIVE_STATUSES),
            )
        ):
            if session_id not in heads or sequence < heads[session_id][0]:
                heads[session_id] = (sequence, next_at)
            if kind == MessageKind.EVENT and attempts and status == MessageStatus.PENDING:
                failed_event.add(session_id)
        ready: list[str] = []
        for cand in candidates:
            head_sequence, head_next = heads[cand.session_id]
            if cand.sequence <= head_sequence or self._final_goes_ahead(cand, failed_event, now):
                ready.append(cand.id)
                continue
            park = max(head_next, now) + _WAIT_BEHIND
            if cand.kind == MessageKind.FINAL:
                park = min(park, cand.created_at + FINAL_WAITS_AT_MOST)
            conn.execute(update(_M).where(_M.id == cand.id).values(next_attempt_at=park))
        if not ready:
            return []
        lease_end = now + self._lease
        # Re-check "due" in the UPDATE: on SQLite without FOR UPDATE another claimer
        # may have taken a candidate since the SELECT; then it is simply skipped.
        rows = conn.execute(
            update(_M)
            .where(
                _M.id.in_(ready[:limit]), _M.status.in_(ACTIVE_STATUSES), _M.next_attempt_at <= now
            )
            .values(
                status=MessageStatus.DELIVERING.value,
                claimed_by=self.worker_id,
                claimed_until=lease_end,
                next_attempt_at=lease_end,
                attempts=_M.attempts + 1,
            )
            .returning(
                _M.id,
                _M.session_id,
                _M.client_id,
                _M.kind,
                _M.event,
                _M.payload,
                _M.url,
                _M.headers,
                _M.attempts.label("attempt"),
                _M.schedule_base,
                _M.created_at,
            )
        )
        return [_Claimed(**row._asdict()) for row in rows]

    @staticmethod
    def _final_goes_ahead(cand: Any, failed_event: set[str], now: dt.datetime) -> bool:
        """A final webhook is never held hostage by its session's event webhooks.

        Events go first while the endpoint takes them. Once an event attempt has
        failed, or the final one has waited :data:`FINAL_WAITS_AT_MOST`, the final
        webhook goes out and the events follow on their own retry schedule.
        """
        if cand.kind != MessageKind.FINAL:
            return False
        waited = now - cand.created_at
        return cand.session_id in failed_event or waited >= FINAL_WAITS_AT_MOST

    def _claim(self, limit: int) -> list[_Claimed]:
        with self._engine.begin() as conn:
            claimed = self.claim_with(conn, limit)
        if self._prepare is None or not claimed:
            return claimed
        # Complete payloads that are finished only at send time (the audit receipt);
        # the hook stores what it changes so every later attempt sends the same body.
        changed = self._prepare([(m.id, m.payload) for m in claimed])
        return [dataclasses.replace(m, payload=changed.get(m.id, m.payload)) for m in claimed]

    @staticmethod
    def _wake_successors(conn: Connection, results: Sequence[_Result]) -> None:
        # A final webhook parked behind its session's event is pulled forward once the
        # event has an outcome (claiming re-parks it if the event is still pending).
        sessions = {r.msg.session_id for r in results if r.msg.kind == MessageKind.EVENT}
        if sessions:
            at = min(r.at for r in results)
            conn.execute(
                update(_M)
                .where(
                    _M.session_id.in_(sessions),
                    _M.status == MessageStatus.PENDING.value,
                    _M.next_attempt_at > at,
                    _M.id.not_in([r.msg.id for r in results]),
                )
                .values(next_attempt_at=at)
            )

    def _record(self, results: Sequence[_Result]) -> list[tuple[MessageView, Action | None]]:
        """Store the attempts and the messages' new states; return callbacks to fire."""
        deliveries: list[dict[str, Any]] = []
        done: list[dict[str, Any]] = []
        fired: list[tuple[MessageView, Action | None]] = []
        with self._engine.begin() as conn:
            for res in results:
                msg = res.msg
                decision = self.policy.classify(res.status, res.headers, now=res.at)
                delay = self.policy.delay_after(
                    decision, msg.attempt - msg.schedule_base, self._rng
                )
                next_at = None if delay is None else res.at + delay
                deliveries.append(
                    {
                        "message_id": msg.id,
                        "attempt": msg.attempt,
                        "at": res.at,
                        "http_status": res.status,
                        "error": res.error,
                        "latency_ms": res.latency_ms,
                        "next_retry_at": next_at,
                    }
                )
                if decision.action is Action.DELIVERED:
                    status = MessageStatus.DELIVERED
                elif decision.action is Action.STOP_ENDPOINT:
                    status = MessageStatus.STOPPED
                else:
                    status = MessageStatus.PENDING if next_at else MessageStatus.DEAD
                values = {
                    "b_id": msg.id,
                    "b_status": status.value,
                    "b_next": next_at or res.at,
                    "b_last_status": res.status,
                    "b_last_error": res.error,
                    "b_delivered_at": res.at if status is MessageStatus.DELIVERED else None,
                }
                if status in (MessageStatus.DELIVERED, MessageStatus.PENDING):
                    done.append(values)
                    if status is MessageStatus.DELIVERED and self._on_delivered:
                        fired.append((self._view(res, status, next_at), None))
                    continue
                # Rare outcomes: one statement each, and only fire callbacks for rows
                # this worker still held (a redelivery may have reset it meanwhile).
                if conn.execute(self._finish_stmt(), values).rowcount:
                    fired.append((self._view(res, status, next_at), decision.action))
                if status is MessageStatus.STOPPED:
                    self._stop_endpoint(conn, msg, res.at)
            if deliveries:
                conn.execute(insert(WebhookDelivery), deliveries)
            if done:
                conn.execute(self._finish_stmt(), done)
            self._wake_successors(conn, results)
        return fired

    def _finish_stmt(self) -> Any:
        return (
            update(_M)
            .where(_M.id == bindparam("b_id"), _M.claimed_by == self.worker_id)
            .values(
                status=bindparam("b_status"),
                next_attempt_at=bindparam("b_next"),
                claimed_by=None,
                claimed_until=None,
                last_status=bindparam("b_last_status"),
                last_error=bindparam("b_last_error"),
                delivered_at=bindparam("b_delivered_at"),
            )
        )

    @staticmethod
    def _stop_endpoint(conn: Connection, msg: _Claimed, at: dt.datetime) -> None:
        # 410 Gone: the receiver asked us to stop, so nothing else queued for the same
        # client and URL is retried either.
        conn.execute(
            update(_M)
            .where(
                _M.client_id == msg.client_id,
                _M.url == msg.url,
                _M.status == MessageStatus.PENDING.value,
            )
            .values(
                status=MessageStatus.STOPPED.value,
                last_error="endpoint answered 410 Gone",
                next_attempt_at=at,
            )
        )

    def _release(self, claimed: Sequence[_Claimed]) -> None:
        """Hand unfinished claims back (shutdown): due again at once for any worker."""
        if not claimed:
            return
        with self._engine.begin() as conn:
            conn.execute(
                update(_M)
                .where(_M.id.in_([c.id for c in claimed]), _M.claimed_by == self.worker_id)
                .values(
                    status=MessageStatus.PENDING.value,
                    claimed_by=None,
                    claimed_until=None,
                    next_attempt_at=self._clock(),
                )
            )

    @staticmethod
    def _view(res: _Result, status: MessageStatus, next_at: dt.datetime | None) -> MessageView:
        m = res.msg
        return MessageView(
            m.id,
            m.session_id,
            m.client_id,
            m.kind,
            m.event,
            m.url,
            status.value,
            m.attempt,
            m.created_at,
            next_at or res.at,
            res.status,
            res.error,
            res.at if status is MessageStatus.DELIVERED else None,
        )

    # ------------------------------------------------------------------ sending

    def _host_enter(self, host: str) -> asyncio.Semaphore:
        sem = self._host_sems.get(host)
        if sem is None:
            sem = self._host_sems[host] = asyncio.Semaphore(self._per_endpoint)
        self._host_users[host] = self._host_users.get(host, 0) + 1
        return sem

    def _host_exit(self, host: str) -> None:
        self._host_users[host] -= 1
        if not self._host_users[host]:  # forget idle hosts so the maps stay small
            del self._host_users[host]
            del self._host_sems[host]

    async def _startable(self, claimed: Sequence[_Claimed]) -> list[_Claimed]:
        """The claims to send now. A message already being sent here is never sent a
        second time in parallel; an endpoint at its slot cap gets its extra claims
        handed back (due again shortly, attempt not counted), so one slow integrator
        holds at most ``per_endpoint_limit`` slots and never the others'."""
        start: list[_Claimed] = []
        defer: list[_Claimed] = []
        planned: dict[str, int] = {}
        for msg in claimed:
            if msg.id in self._sending:
                continue
            endpoint = _endpoint(msg.url)
            busy = self._host_users.get(endpoint, 0) + planned.get(endpoint, 0)
            if busy >= self._per_endpoint:
                defer.append(msg)
                continue
            planned[endpoint] = planned.get(endpoint, 0) + 1
            start.append(msg)
        if defer:
            await asyncio.to_thread(self._defer, defer)
        return start

    def _defer(self, claimed: Sequence[_Claimed]) -> None:
        with self._engine.begin() as conn:
            conn.execute(
                update(_M)
                .where(_M.id.in_([c.id for c in claimed]), _M.claimed_by == self.worker_id)
                .values(
                    status=MessageStatus.PENDING.value,
                    claimed_by=None,
                    claimed_until=None,
                    attempts=_M.attempts - 1,
                    next_attempt_at=self._clock() + self._endpoint_defer,
                )
            )

    async def _tracked_send(self, msg: _Claimed) -> _Result:
        self._sending.add(msg.id)
        try:
            return await self._send(msg)
        finally:
            self._sending.discard(msg.id)

    async def _send(self, msg: _Claimed) -> _Result:
        endpoint = _endpoint(msg.url)
        sem = self._host_enter(endpoint)
        try:
            async with sem:
                shard = self._http.acquire(endpoint)
                try:
                    return await self._post(msg, shard.client)
                finally:
                    self._http.release(shard)
        except Exception as exc:  # a bug in one send must not lose the others' results
            log.exception("webhook.send_crashed", webhook_id=msg.id)
            return _Result(msg, self._clock(), None, f"internal error: {type(exc).__name__}", {}, 0)
        finally:
            self._host_exit(endpoint)

    async def _post(self, msg: _Claimed, client: httpx.AsyncClient) -> _Result:
        at = self._clock()
        started = time.perf_counter()
        status: int | None = None
        error: str | None = None
        resp_headers: dict[str, str] = {}
        try:
            body = msg.payload.encode()
            timestamp = int(at.timestamp())
            signature = sign(
                msg.id,
                timestamp,
                body,
                secrets=self._secrets_for(msg.client_id),
                ed25519_keys=self._signing_keys(),
            )
            callback_headers = json.loads(msg.headers)
            if self._open_headers is not None:
                callback_headers = self._open_headers(msg.client_id, callback_headers)
            headers = request_headers(msg.id, timestamp, signature, msg.attempt, callback_headers)
        except Exception as exc:  # a missing secret must not stop the loop  # noqa: BLE001 - reported, never fatal here
            log.warning("webhook.sign_failed", webhook_id=msg.id, error=type(exc).__name__)
            error = "could not sign the webhook or open its callback headers (no usable key)"
        else:
            try:
                async with asyncio.timeout(self._deadline_s):
                    async with client.stream(
                        "POST", msg.url, content=body, headers=headers
                    ) as resp:
                        status = resp.status_code
                        resp_headers = dict(resp.headers)
                        await self._drain(resp)
                if 300 <= status < 400:
                    error = f"redirect {status} refused (webhooks do not follow redirects)"
            except TimeoutError:
                status = None
                error = f"deadline exceeded (no complete answer within {self._deadline_s:g} s)"
            except httpx.HTTPError as exc:
                if status is None:
                    error = _describe(exc)
        latency = int((time.perf_counter() - started) * 1000)
        return _Result(msg, at, status, error, resp_headers, latency)

    async def _drain(self, resp: httpx.Response) -> None:
        # Read at most the cap: a receiver must not make us buffer gigabytes.
        seen = 0
        async for chunk in resp.aiter_raw():
            seen += len(chunk)
            if seen >= self._max_response_bytes:
                break

    async def _fire(self, fired: Sequence[tuple[MessageView, Action | None]]) -> None:
        for view, action in fired:
            callback = (
                self._on_delivered
                if action is None
                else (self._on_dead if view.status == MessageStatus.DEAD.value else None)
            )
            if callback is None:
                continue
            try:
                outcome = callback(view)
                if inspect.isawaitable(outcome):
                    await outcome
            except Exception:  # an alerting hiccup must not stop deliveries
                log.exception("webhook.callback_failed", webhook_id=view.id)

    async def _finish(self, results: Sequence[_Result]) -> None:
        if results:
            fired = await asyncio.to_thread(self._record, results)
            await self._fire(fired)

    # ------------------------------------------------------------------ loops

    async def run_once(self, limit: int | None = None) -> int:
        """Claim what is due (up to ``limit``), send it all, record; return how many sent."""
        claimed = await self._startable(
            await asyncio.to_thread(self._claim, limit or self._concurrency)
        )
        results = await asyncio.gather(*(self._tracked_send(m) for m in claimed))
        await self._finish(results)
        await self._http.prune()
        return len(results)

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until ``stop`` is set; then finish in-flight sends or release them."""
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        inflight: dict[asyncio.Task[_Result], _Claimed] = {}
        # Claim and record in batches: one transaction per handful of messages, not
        # per message (each commit is an fsync).
        batch = max(1, self._concurrency // 8)
        finished: list[_Result] = []
        oldest = 0.0  # when the oldest unrecorded result came in
        try:
            while not stop.is_set():
                free = self._concurrency - len(inflight)
                claim = free if free >= batch or not inflight else 0
                record = finished and (
                    claim
                    or len(finished) >= batch
                    or time.monotonic() - oldest > self._poll_interval
                )
                fired: list[tuple[MessageView, Action | None]] = []
                claimed: list[_Claimed] = []
                if record or claim:
                    try:
                        fired, claimed = await asyncio.to_thread(
                            self._record_and_claim, finished if record else [], claim
                        )
                    except Exception:
                        # Results stay in ``finished`` and are recorded on a later try;
                        # claims that were made are recovered when their lease ends.
                        log.exception("webhook.store_failed")
                        await self._idle(stop, self._wake)
                        continue
                    if record:
                        finished = []
                await self._fire(fired)
                for msg in await self._startable(claimed):
                    inflight[asyncio.create_task(self._tracked_send(msg))] = msg
                if not inflight and not finished:
                    await self._http.prune()
                    await self._idle(stop, self._wake)
                    continue
                if inflight:
                    done, _ = await asyncio.wait(
                        inflight, timeout=self._poll_interval, return_when=asyncio.FIRST_COMPLETED
                    )
                    if done and not finished:
                        oldest = time.monotonic()
                    for task in done:
                        del inflight[task]
                        finished.append(task.result())
        finally:
            await self._finish(finished)
            await self._shutdown(inflight)

    def _record_and_claim(
        self, results: Sequence[_Result], limit: int
    ) -> tuple[list[tuple[MessageView, Action | None]], list[_Claimed]]:
        fired = self._record(results) if results else []
        return fired, self._claim(limit) if limit else []

    async def _idle(self, stop: asyncio.Event, wake: asyncio.Event) -> None:
        waiters = {asyncio.ensure_future(stop.wait()), asyncio.ensure_future(wake.wait())}
        _, pending = await asyncio.wait(
            waiters, timeout=self._poll_interval, return_when=asyncio.FIRST_COMPLETED
        )
        for waiter in pending:
            waiter.cancel()
        wake.clear()

    async def _shutdown(self, inflight: dict[asyncio.Task[_Result], _Claimed]) -> None:
        if inflight:
            done, pending = await asyncio.wait(inflight, timeout=self._shutdown_grace)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            await self._finish(
                [t.result() for t in done if not t.cancelled() and t.exception() is None]
            )
            await asyncio.to_thread(self._release, [inflight[t] for t in pending])
        await self.aclose()


__all__ = ["FINAL_WAITS_AT_MOST", "Callback", "Dispatcher", "Prepare", "request_headers"]
