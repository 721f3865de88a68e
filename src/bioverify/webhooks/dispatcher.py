"""The dispatcher: claims due outbox rows, signs, POSTs, records, reschedules.

Three parts, one concept each: :mod:`~bioverify.webhooks.claiming` (leases on
outbox rows), :mod:`~bioverify.webhooks.sending` (signed POSTs within the slot
caps) and :mod:`~bioverify.webhooks.recording` (the delivery log and the messages'
new states). This module is the loop that drives them, set up by one
:class:`~bioverify.webhooks.dispatch_config.DispatcherConfig`.
"""

from __future__ import annotations

import asyncio
import contextlib
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


class Dispatcher:
    """Delivers outbox messages; drive it with :meth:`run` or, in tests, :meth:`run_once`."""

    def __init__(self, engine: Engine, config: DispatcherConfig) -> None:
        self._engine = engine
        self.config = config
        self.worker_id = config.worker_id
        self._claims = Claims(engine, config)
        self._sender = Sender(config)
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

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
        if self._loop is not None and self._wake is not None:
            self._loop.call_soon_threadsafe(self._wake.set)

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
        try:
            return fired, self._claims.complete(claimed)
        except Exception:
            # Committed: the results must not be recorded twice. The claims stay
            # leased to this worker and are due again when the lease ends.
            log.exception("webhook.prepare_failed", count=len(claimed))
            return fired, []

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
            fired = await asyncio.to_thread(record, self._engine, self.config, results)
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
        """Deliver until ``stop`` is set; then finish in-flight sends or release them."""
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        concurrency = self.config.concurrency
        poll_interval = self.config.poll_interval
        inflight: dict[asyncio.Task[Attempt], Claimed] = {}
        # Claim and record in batches: one transaction per batch of messages, not per
        # message (each is a thread hand-off, several statements and a commit). A
        # transaction's cost hardly depends on its size, so under load the batch is
        # half the slots; a lone result still waits at most ``poll_interval``.
        batch = max(1, concurrency // 2)
        finished: list[Attempt] = []
        oldest = 0.0  # when the oldest unrecorded result came in
        # Sends report their end here: one callback per task, instead of
        # ``asyncio.wait`` hooking and unhooking every in-flight task on each pass.
        ended: list[asyncio.Task[Attempt]] = []
        progress = asyncio.Event()

        def on_end(task: asyncio.Task[Attempt]) -> None:
            ended.append(task)
            progress.set()

        try:
            while not stop.is_set():
                free = concurrency - len(inflight)
                claim = free if free >= batch or not inflight else 0
                record_now = finished and (
                    claim or len(finished) >= batch or time.monotonic() - oldest > poll_interval
                )
                fired: list[Fired] = []
                claimed: list[Claimed] = []
                if record_now or claim:
                    try:
                        fired, claimed = await asyncio.to_thread(
                            self._record_and_claim, finished if record_now else [], claim
                        )
                    except Exception:
                        # Nothing was written: the results stay in ``finished`` and are
                        # recorded on a later try.
                        log.exception("webhook.store_failed")
                        await self._idle(stop, self._wake)
                        continue
                    if record_now:
                        finished = []
                await self._fire(fired)
                for msg in await self._startable(claimed):
                    task = asyncio.create_task(self._sender.send(msg))
                    task.add_done_callback(on_end)
                    inflight[task] = msg
                if not inflight and not finished and not ended:
                    await self._idle(stop, self._wake)
                    continue
                if not ended and inflight:
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(poll_interval):
                            await progress.wait()
                progress.clear()
                if ended and not finished:
                    oldest = time.monotonic()
                for task in ended:
                    del inflight[task]
                    finished.append(task.result())
                ended.clear()
        finally:
            for task in ended:  # ended, but not yet taken into ``finished``
                del inflight[task]
                finished.append(task.result())
            await self._finish(finished)
            await self._shutdown(inflight)

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
            await asyncio.to_thread(self._claims.release, [inflight[t] for t in pending])
        await self.aclose()


__all__ = [
    "FINAL_WAITS_AT_MOST",
    "Callback",
    "Dispatcher",
    "DispatcherConfig",
    "Prepare",
    "request_headers",
]
