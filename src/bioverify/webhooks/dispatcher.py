"""The dispatcher: claims due outbox rows, signs, POSTs, records, reschedules.

Three parts, one concept each: :mod:`~bioverify.webhooks.claiming` (leases on
outbox rows), :mod:`~bioverify.webhooks.sending` (signed POSTs within the slot
caps) and :mod:`~bioverify.webhooks.recording` (the delivery log and the messages'
new states). This module is the loop that drives them, set up by one
:class:`~bioverify.webhooks.dispatch_config.DispatcherConfig`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import datetime as dt
import functools
import inspect
import time
from collections.abc import Sequence

import structlog
from sqlalchemy import Connection, Engine

from bioverify.webhooks.claiming import FINAL_WAITS_AT_MOST, Claimed, Claims
from bioverify.webhooks.dispatch_config import Callback, DispatcherConfig, Prepare
from bioverify.webhooks.models import MessageStatus
from bioverify.webhooks.recording import Attempt, Fired, record, record_with
from bioverify.webhooks.sending import Sender, request_headers

log = structlog.get_logger(__name__)

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


@dataclasses.dataclass(eq=False)
class _Pipe:
    """The loop's state: sends in flight, claims waiting for a slot, results waiting
    to be recorded, and the record-and-claim transaction running in a thread."""

    #: Set whenever there is something to look at (a send ended, the transaction
    #: ended, a wake): the loop waits on it.
    stirred: asyncio.Event
    inflight: dict[asyncio.Task[Attempt], Claimed] = dataclasses.field(default_factory=dict)
    #: Claimed and committed, waiting for a slot; each with a time before which its
    #: lease cannot end.
    queued: collections.deque[tuple[Claimed, dt.datetime]] = dataclasses.field(
        default_factory=collections.deque
    )
    finished: list[Attempt] = dataclasses.field(default_factory=list)
    oldest: float = 0.0  # when the oldest unrecorded result came in
    #: Claims handed back unsent (their attempt could no longer end within the lease).
    late: list[Claimed] = dataclasses.field(default_factory=list)
    #: At stop: sends that end are left to the shutdown.
    closing: bool = False
    store: asyncio.Future[tuple[list[Fired], list[Claimed]]] | None = None
    #: What the running transaction records, and how many claims it asked for.
    storing: list[Attempt] = dataclasses.field(default_factory=list)
    claiming: int = 0
    #: The running transaction's claims' leases end after this.
    lease_floor: dt.datetime = _EPOCH
    claim_after: float = 0.0  # the outbox came back short: not before the next poll
    store_after: float = 0.0  # a transaction failed: not before the next poll

    def stir(self, _: object = None) -> None:
        self.stirred.set()

    def idle(self) -> bool:
        return not (self.inflight or self.queued or self.finished or self.store or self.late)

    async def wait(self, at_most_s: float) -> None:
        """Until something is stirred, at most ``at_most_s`` seconds."""
        if not (self.store is not None and self.store.done()):
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(at_most_s):
                    await self.stirred.wait()
        self.stirred.clear()


class Dispatcher:
    """Delivers outbox messages; drive it with :meth:`run` or, in tests, :meth:`run_once`."""

    def __init__(self, engine: Engine, config: DispatcherConfig) -> None:
        self._engine = engine
        self.config = config
        self.worker_id = config.worker_id
        self._claims = Claims(engine, config)
        self._sender = Sender(config)
        self._wake: asyncio.Event | None = None
        self._wake_requested = False
        self._loop: asyncio.AbstractEventLoop | None = None
        # Claim and record in batches: one transaction per batch of messages, not per
        # message (each is a thread hand-off, several statements and a commit). Its
        # cost hardly depends on its size, so a batch is half the slots; a lone
        # result still waits at most ``poll_interval``.
        self._batch = max(1, config.concurrency // 2)

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> Dispatcher:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP clients (connections are kept alive between sends)."""
        await self._sender.aclose()

    def wake(self) -> None:
        """Ask :meth:`run` to look for due messages now (safe from any thread)."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._on_wake)

    def _on_wake(self) -> None:
        self._wake_requested = True
        if self._wake is not None:
            self._wake.set()

    # ------------------------------------------------------------------ parts

    def claim_with(self, conn: Connection, limit: int) -> list[Claimed]:
        """Lease up to ``limit`` due messages inside ``conn``'s transaction
        (:meth:`~bioverify.webhooks.claiming.Claims.claim_with`)."""
        return self._claims.claim_with(conn, limit)

    def _claim(self, limit: int) -> list[Claimed]:
        return self._claims.claim(limit)

    def _record_and_claim(
        self, results: Sequence[Attempt], limit: int
    ) -> tuple[list[Fired], list[Claimed]]:
        # One transaction (one commit, one fsync) for the finished batch and the next
        # claims. If it fails, neither happened: the results are recorded on a later
        # try and no claim was taken.
        with self._engine.begin() as conn:
            fired = record_with(conn, self.config, results) if results else []
            claimed = self._claims.claim_with(conn, limit) if limit else []
        self._recorded(fired)
        try:
            return fired, self._claims.complete(claimed)
        except Exception:
            # Committed: the results must not be recorded twice. The claims stay
            # leased to this worker and are due again when the lease ends.
            log.exception("webhook.prepare_failed", count=len(claimed))
            return fired, []

    def _record(self, results: Sequence[Attempt]) -> list[Fired]:
        fired = record(self._engine, self.config, results)
        self._recorded(fired)
        return fired

    def _recorded(self, fired: Sequence[Fired]) -> None:
        """The batch hook, in the recording thread, after the commit."""
        hook = self.config.on_recorded
        if hook is None or not fired:
            return
        try:
            hook([view for view, _ in fired])
        except Exception:  # like a callback: it must not stop deliveries
            log.exception("webhook.callback_failed", count=len(fired))

    async def _startable(self, claimed: Sequence[Claimed]) -> list[Claimed]:
        async def defer(extra: Sequence[Claimed]) -> None:
            await asyncio.to_thread(self._claims.defer, extra)

        return await self._sender.startable(claimed, defer)

    async def _fire(self, fired: Sequence[Fired]) -> None:
        for view, action in fired:
            callback = (
                self.config.on_delivered
                if action is None
                else (self.config.on_dead if view.status == MessageStatus.DEAD.value else None)
            )
            if callback is None:
                continue
            try:
                outcome = callback(view)
                if inspect.isawaitable(outcome):
                    await outcome
            except Exception:  # an alerting hiccup must not stop deliveries
                log.exception("webhook.callback_failed", webhook_id=view.id)

    async def _finish(self, results: Sequence[Attempt]) -> None:
        if results:
            fired = await asyncio.to_thread(self._record, results)
            await self._fire(fired)

    # ------------------------------------------------------------------ loops

    async def run_once(self, limit: int | None = None) -> int:
        """Claim what is due (up to ``limit``), send it all, record; return how many sent."""
        claimed = await self._startable(
            await asyncio.to_thread(self._claim, limit or self.config.concurrency)
        )
        results = await asyncio.gather(*(self._sender.send(m) for m in claimed))
        await self._finish(results)
        return len(results)

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until ``stop`` is set; then finish in-flight sends or release them.

        Pipelined: the transaction that records finished sends and claims the next
        ones runs in a thread while sends go on, and up to a batch of claims wait
        ready for a slot, so slots freed during a transaction are refilled at once
        instead of after it."""
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        pipe = _Pipe(self._wake)
        try:
            while not stop.is_set():
                if pipe.store is not None and pipe.store.done():
                    await self._stored(pipe)
                self._start_queued(pipe)
                if pipe.late:
                    late, pipe.late = pipe.late, []
                    await self._unclaim(late)
                if pipe.store is None:
                    self._store_if_due(pipe)
                if pipe.idle():
                    await self._idle(stop, self._wake)
                    continue
                await pipe.wait(self.config.poll_interval)
        finally:
            await self._drain_pipe(pipe)

    def _on_end(self, pipe: _Pipe, task: asyncio.Task[Attempt]) -> None:
        """A send ended: its result waits to be recorded and a waiting claim takes its
        slot at once. The loop is stirred only when a transaction is due, not per send."""
        if pipe.closing:
            return  # the shutdown takes every send still in ``inflight``
        del pipe.inflight[task]
        if task.cancelled():  # never by this loop; its lease runs out
            return
        if not pipe.finished:
            pipe.oldest = time.monotonic()
        pipe.finished.append(task.result())
        self._start_queued(pipe)
        room = self.config.concurrency + self._batch - len(pipe.inflight) - len(pipe.queued)
        if pipe.store is None and (
            len(pipe.finished) >= self._batch or room >= self._batch or not pipe.inflight
        ):
            pipe.stir()

    def _start_queued(self, pipe: _Pipe) -> None:
        """Start waiting claims while slots are free; set aside any whose attempt
        could no longer end before its lease does."""
        while pipe.queued and len(pipe.inflight) < self.config.concurrency:
            msg, lease_floor = pipe.queued.popleft()
            if self.config.clock() + self.config.deadline >= lease_floor:
                pipe.late.append(msg)
                continue
            task = asyncio.create_task(self._sender.send(msg))
            task.add_done_callback(functools.partial(self._on_end, pipe))
            pipe.inflight[task] = msg

    def _store_if_due(self, pipe: _Pipe) -> None:
        """Start the next record-and-claim transaction if one is worth it now."""
        config = self.config
        now = time.monotonic()
        if now < pipe.store_after:
            return
        # Claims wait for a slot at most one batch deep: a claim is a lease, and its
        # attempt must end before the lease does.
        want = config.concurrency + self._batch - len(pipe.inflight) - len(pipe.queued)
        worth = want >= self._batch or not (pipe.inflight or pipe.queued)
        claim = want if worth and (self._wake_requested or now >= pipe.claim_after) else 0
        record_now = bool(pipe.finished) and (
            bool(claim)
            or len(pipe.finished) >= self._batch
            or now - pipe.oldest > config.poll_interval
        )
        if not (claim or record_now):
            return
        self._wake_requested = False
        pipe.storing, pipe.claiming = (pipe.finished, claim) if record_now else ([], claim)
        if record_now:
            pipe.finished = []
        pipe.lease_floor = config.clock() + config.lease
        pipe.store = asyncio.ensure_future(
            asyncio.to_thread(self._record_and_claim, pipe.storing, claim)
        )
        pipe.store.add_done_callback(pipe.stir)

    async def _stored(self, pipe: _Pipe) -> None:
        """Take in the transaction that just ended: callbacks to fire, claims to send."""
        assert pipe.store is not None
        store, pipe.store = pipe.store, None
        try:
            fired, claimed = store.result()
        except Exception:
            # Nothing was written: the results are recorded on a later try.
            log.exception("webhook.store_failed")
            pipe.finished[:0] = pipe.storing
            pipe.store_after = time.monotonic() + self.config.poll_interval
            return
        finally:
            pipe.storing = []
        if len(claimed) < pipe.claiming:
            # The outbox has no more due: look again at the next poll (or wake).
            pipe.claim_after = time.monotonic() + self.config.poll_interval
        await self._fire(fired)
        pipe.queued.extend((m, pipe.lease_floor) for m in await self._startable(claimed))

    async def _unclaim(self, claimed: Sequence[Claimed]) -> None:
        """Hand back claims never sent: due again at once, the attempt not counted."""
        self._sender.forget(claimed)
        try:
            await asyncio.to_thread(self._claims.unclaim, claimed)
        except Exception:  # their leases run out instead: due again then
            log.exception("webhook.unclaim_failed", count=len(claimed))

    async def _drain_pipe(self, pipe: _Pipe) -> None:
        """At stop: the running transaction's outcome, the unsent claims handed
        back, in-flight sends finished or released, every result recorded."""
        pipe.closing = True
        if pipe.store is not None:
            with contextlib.suppress(Exception):  # logged by _stored
                await asyncio.wait([pipe.store])
                await self._stored(pipe)
        queued = [msg for msg, _ in pipe.queued] + pipe.late
        pipe.queued.clear()
        if queued:
            await self._unclaim(queued)
        await self._finish(pipe.finished)
        await self._shutdown(pipe.inflight)

    async def _idle(self, stop: asyncio.Event, wake: asyncio.Event) -> None:
        waiters = {asyncio.ensure_future(stop.wait()), asyncio.ensure_future(wake.wait())}
        _, pending = await asyncio.wait(
            waiters, timeout=self.config.poll_interval, return_when=asyncio.FIRST_COMPLETED
        )
        for waiter in pending:
            waiter.cancel()
        wake.clear()

    async def _shutdown(self, inflight: dict[asyncio.Task[Attempt], Claimed]) -> None:
        if inflight:
            done, pending = await asyncio.wait(inflight, timeout=self.config.shutdown_grace)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            await self._finish(
                [t.result() for t in done if not t.cancelled() and t.exception() is None]
            )
            unsent = [inflight[t] for t in pending]
            self._sender.forget(unsent)  # those cancelled before they started
            await asyncio.to_thread(self._claims.release, unsent)
        await self.aclose()


__all__ = [
    "FINAL_WAITS_AT_MOST",
    "Callback",
    "Dispatcher",
    "DispatcherConfig",
    "Prepare",
    "request_headers",
]
