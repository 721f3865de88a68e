"""The :class:`~bioverify.engine.interfaces.Engine` the service uses: a process pool.

Each worker process loads and checks the models once, in its initializer; the event
loop only awaits ``run_in_executor``. ``workers=0`` runs one engine in a single
background thread instead (tests, tiny deployments): still non-blocking for the loop.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from functools import partial
from pathlib import Path
from typing import TypeVar

from bioverify.engine.facemesh import FaceMesh
from bioverify.engine.interfaces import (
    Analysis,
    Challenge,
    EngineUnavailable,
    LivenessMode,
)
from bioverify.engine.matcher import Thresholds, load_thresholds
from bioverify.engine.models import MODEL_VERSION, FaceModels
from bioverify.engine.pipeline import LocalEngine

_T = TypeVar("_T")

_worker_engine: LocalEngine | None = None


#: How often a worker checks that the process that started it is still alive.
PARENT_CHECK_S = 1.0


def _exit_when_orphaned(parent_pid: int, interval_s: float) -> None:
    """Exit this worker once its parent is gone (killed, crashed): an orphaned worker
    would otherwise hold its ~300 MB of models forever."""
    while True:
        time.sleep(interval_s)  # a watchdog's period, not a wait for a result
        if os.getppid() != parent_pid:
            os._exit(0)


def _init_worker(
    models_dir: Path | None, thresholds: Thresholds, parent_pid: int | None = None
) -> None:
    if parent_pid is not None:
        threading.Thread(
            target=_exit_when_orphaned,
            args=(parent_pid, PARENT_CHECK_S),
            name="orphan-watch",
            daemon=True,
        ).start()
    # OpenCV's own threads would fight the pool for the cores.
    import cv2  # noqa: PLC0415 - only worker processes need this setting

    cv2.setNumThreads(1)
    global _worker_engine  # noqa: PLW0603 - one engine per worker process, by design
    _worker_engine = LocalEngine(FaceModels(models_dir), thresholds)


def _ping() -> str:
    if _worker_engine is None:
        raise EngineUnavailable("Engine worker did not load its models")
    _worker_engine.warm_sync()
    return _worker_engine.model_version


def _analyze(
    frames: Sequence[bytes],
    liveness: LivenessMode,
    challenge: Challenge | None,
    frame_times: Sequence[float] | None,
    want_portrait: bool,
) -> Analysis:
    if _worker_engine is None:
        raise EngineUnavailable("Engine worker did not load its models")
    return _worker_engine.analyze_sync(
        frames,
        liveness=liveness,
        challenge=challenge,
        frame_times=frame_times,
        want_portrait=want_portrait,
    )


class PoolEngine:
    """Engine backed by ``workers`` processes (default ``os.cpu_count()``), or a thread.

    Construction loads the models once in this process as well, so a missing or
    tampered model file raises :class:`EngineUnavailable` here, at start-up.
    """

    def __init__(
        self,
        *,
        workers: int | None = None,
        models_dir: Path | None = None,
        thresholds: Thresholds | None = None,
    ) -> None:
        self.model_version = MODEL_VERSION
        self._thresholds = thresholds if thresholds is not None else load_thresholds()
        count = (os.cpu_count() or 1) if workers is None else workers
        if count < 0:
            raise ValueError("workers must be >= 0")
        self._count = count
        self._executor: Executor
        # In thread mode this engine is used by the single executor thread only.
        self._local: LocalEngine | None = None
        if count == 0:
            self._local = LocalEngine(FaceModels(models_dir), self._thresholds)
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="engine")
        else:
            FaceModels(models_dir)  # check the files before starting workers
            FaceMesh()
            self._executor = ProcessPoolExecutor(
                max_workers=count,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_init_worker,
                initargs=(models_dir, self._thresholds, os.getpid()),
            )
        self._closed = False
        #: Analyses that can run at once (what a per-tenant share is a share of).
        self.capacity = max(1, count)

    def ready(self) -> bool:
        return not self._closed

    async def warm_up(self) -> None:
        """Start every worker now (each loads and runs the models) instead of on the
        first captures: the pool starts a process per task it cannot hand to an idle
        one, so ``count`` tasks at once start ``count`` processes."""
        if self._local is not None:
            await self._run(self._local.warm_sync)
            return
        await asyncio.gather(*(self._run(_ping) for _ in range(self._count)))

    async def _run(self, func: Callable[[], _T]) -> _T:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, func)
        except BrokenProcessPool as exc:
            self._closed = True
            raise EngineUnavailable("An engine worker died; the engine must be restarted") from exc

    async def analyze(
        self,
        frames: Sequence[bytes],
        *,
        liveness: LivenessMode,
        challenge: Challenge | None,
        frame_times: Sequence[float] | None,
        want_portrait: bool,
    ) -> Analysis:
        if self._closed:
            raise EngineUnavailable("The engine is closed")
        times = None if frame_times is None else list(frame_times)
        if self._local is not None:
            return await self._run(
                partial(
                    self._local.analyze_sync,
                    list(frames),
                    liveness=liveness,
                    challenge=challenge,
                    frame_times=times,
                    want_portrait=want_portrait,
                )
            )
        return await self._run(
            partial(_analyze, list(frames), liveness, challenge, times, want_portrait)
        )

    async def close(self, grace_s: float = 5.0) -> None:
        """Stop the workers: queued work is cancelled, running work gets ``grace_s``,
        then any worker still alive is terminated (no process outlives the server)."""
        self._closed = True
        processes = list((getattr(self._executor, "_processes", None) or {}).values())
        self._executor.shutdown(wait=False, cancel_futures=True)

        def reap() -> None:
            deadline = time.monotonic() + grace_s
            for process in processes:
                process.join(max(0.0, deadline - time.monotonic()))
            for process in processes:
                if process.is_alive():
                    process.terminate()
                    process.join(1.0)
                if process.is_alive():
                    process.kill()
                    process.join(1.0)

        await asyncio.to_thread(reap)
