"""The background worker: expiry sweeper, webhook dispatcher, audit checkpointer.

Embedded in ``bioverify serve`` (SQLite default) or run alone as ``bioverify
worker`` (any number of them on PostgreSQL). Each job is a small async loop that
stops when the stop event is set; a failing iteration is logged and retried, never
fatal to the process.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import structlog
from starlette.concurrency import run_in_threadpool

from bioverify.api.deps import Services

log = structlog.get_logger("bioverify.worker")

Job = Callable[[asyncio.Event], Awaitable[None]]


async def every(interval_s: float, stop: asyncio.Event, name: str,
                step: Callable[[], Awaitable[object]]) -> None:
    """Run ``step`` every ``interval_s`` seconds until ``stop`` is set."""
    while not stop.is_set():
        try:
            await step()
        except Exception:
            log.exception("worker_job_failed", job=name)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval_s)


@dataclass
class Worker:
    """The jobs of one worker process."""

    services: Services
    jobs: list[Job] = field(default_factory=list)

    def __post_init__(self) -> None:
        sessions = self.services.sessions
        interval = self.services.settings.sweep_interval_s

        async def sweep() -> None:
            ended = await run_in_threadpool(sessions.sweep_expired)
            if ended:
                log.info("sessions_expired", count=ended)

        async def sweeper(stop: asyncio.Event) -> None:
            await every(interval, stop, "sweeper", sweep)

        self.jobs.insert(0, sweeper)

    async def run(self, stop: asyncio.Event) -> None:
        await asyncio.gather(*(job(stop) for job in self.jobs))


__all__ = ["Worker", "every"]
