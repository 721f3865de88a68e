"""Engine worker processes never outlive the server (review item 12): the app's
lifespan stops them, and a worker whose parent was killed exits by itself."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi import FastAPI
from harness import wait_until

from bioverify.config import Settings
from bioverify.engine.pool import PoolEngine
from support import LiveServer

SCRIPT = """
import asyncio, sys
from bioverify.engine.pool import PoolEngine

async def main():
    engine = PoolEngine(workers=1)
    await engine.warm_up()
    print(*[p.pid for p in engine._executor._processes.values()], flush=True)
    sys.stdin.read()

asyncio.run(main())
"""


def worker_pids(engine: PoolEngine) -> list[int]:
    """The pool's worker processes (the executor's own bookkeeping)."""
    processes = engine._executor._processes  # type: ignore[attr-defined]
    return [int(p.pid) for p in processes.values()]


def gone(pid: int) -> bool:
    """True once ``pid`` has exited (a zombie nobody reaped counts as exited)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in {"Z", "X"}


@pytest.mark.slow
def test_workers_exit_when_their_parent_is_killed(tmp_path: Path) -> None:
    workers: list[int] = []
    with (
        (tmp_path / "parent.log").open("wb") as log,
        subprocess.Popen(
            [sys.executable, "-c", SCRIPT],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
        ) as parent,
    ):
        try:
            assert parent.stdout is not None
            workers = [int(pid) for pid in parent.stdout.readline().split()]
            assert workers, (tmp_path / "parent.log").read_text()
            assert not any(gone(pid) for pid in workers)
            parent.send_signal(signal.SIGKILL)  # no chance to clean up
            parent.wait(timeout=20)
            wait_until(lambda: all(gone(pid) for pid in workers), 20, "orphaned workers to exit")
        finally:
            parent.kill()
            for pid in workers:  # never leave one behind, even when the test fails
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


@pytest.mark.slow
def test_the_app_lifespan_stops_the_engine_workers(
    make_app: Callable[..., FastAPI], settings: Settings
) -> None:
    app = make_app(settings=settings.with_overrides(engine_workers=1), bio_engine=None)
    engine = app.state.services.engine
    assert isinstance(engine, PoolEngine)
    workers: list[int] = []
    try:
        with LiveServer(app):
            asyncio.run(engine.warm_up())
            workers = worker_pids(engine)
            assert workers and not any(gone(pid) for pid in workers)
        # Stopping the server stopped them, before it returned.
        assert all(gone(pid) for pid in workers)
    finally:
        for pid in workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
