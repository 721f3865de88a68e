"""Build the audit log and its sequencer for one process."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
from collections.abc import Callable

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine

from bioverify.audit.sequencer import Sequencer
from bioverify.audit.service import KEY_NAME, AuditLog
from bioverify.config import Settings


def build_audit(
    engine: Engine,
    settings: Settings,
    *,
    signer: Callable[[], Ed25519PrivateKey],
    clock: Callable[[], dt.datetime],
) -> tuple[AuditLog, Sequencer]:
    """The log and the sequencer of this process."""
    sequencer = Sequencer(
        signer=signer,
        key_name=KEY_NAME,
        origin=settings.audit_origin,
        clock=clock,
        keep_every_entries=settings.checkpoint_every_entries,
        keep_every_s=settings.checkpoint_every_s,
    )
    # A reader that must wait runs a batch itself: always on SQLite (the serving
    # process is the sequencer), on PostgreSQL only when no worker holds the lock.
    return AuditLog(
        inline=lambda: sequencer.step_if_free(engine), on_queued=sequencer.wake
    ), sequencer


async def run_sequencer(sequencer: Sequencer, engine: Engine, stop: asyncio.Event) -> None:
    """Lead (or wait to lead) until ``stop``, in a thread of its own.

    On PostgreSQL the thread holds the leader's connection, and with it the
    advisory lock, for its lifetime. On stop, what is already queued is drained
    first, so a clean shutdown leaves no entry waiting.
    """
    halt = threading.Event()
    thread = threading.Thread(
        target=sequencer.lead, args=(engine, halt), name="audit-sequencer", daemon=True
    )
    thread.start()
    try:
        await stop.wait()
    finally:
        halt.set()
        sequencer.wake()
        await asyncio.to_thread(thread.join)


__all__ = ["build_audit", "run_sequencer"]
