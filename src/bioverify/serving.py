"""``bioverify serve``: one listening socket, N API processes, the embedded worker once.

With one process the server runs here, as it always did. With more, this process
is a small supervisor: it binds the socket once and starts N API processes (spawned,
not forked: no threads or pools are copied) that all accept on it, so the kernel
spreads connections over them. It restarts a process that dies, and stops them all
on SIGINT/SIGTERM.

What must run once runs only in process 0, exactly what a one-process ``serve``
runs besides the API: the embedded worker (dispatcher, expiry sweeper, sequencer)
unless ``--no-worker``, and on SQLite without a worker the audit sequencer loop.
The other processes sequence nothing on their own; a reader there that must wait for
an index may run one batch inline, which is safe on SQLite because a batch runs under
``BEGIN IMMEDIATE`` and the locked head row (see ``audit/sequencer.py``).

In-memory state is per process: without Redis, each process counts credential
failures alone, so each gets ``limit // N`` (at least 1) and N processes together
never allow more failures than one did. ``BIOVERIFY_REDIS_URL`` shares one count.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from multiprocessing.synchronize import Event as EventType
from typing import TYPE_CHECKING, Final

import structlog

from bioverify.errors import BioverifyError

if TYPE_CHECKING:
    from bioverify.config import Settings

log = structlog.get_logger("bioverify.serving")

#: How long stopping processes get to finish their requests and drain the worker.
STOP_GRACE_S: Final = 30.0


class ListenError(BioverifyError):
    """The address to serve on cannot be bound."""


class ServeFailed(BioverifyError):
    """An API process could not start."""


def default_workers() -> int:
    return max(1, os.cpu_count() or 1)


def bind(host: str, port: int) -> socket.socket:
    """The listening socket every API process accepts on."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ListenError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


@dataclass(frozen=True)
class Role:
    """What one API process runs besides the API."""

    index: int
    run_worker: bool
    #: Run the SQLite sequencer loop when there is no embedded worker.
    lead_sequencer: bool


def process_settings(cfg: Settings, processes: int) -> Settings:
    """The settings of one of ``processes`` API processes (see the module docstring)."""
    if processes <= 1:
        return cfg
    changes: dict[str, object] = {}
    if cfg.engine_workers < 0:
        # One face-model pool per API process: share the cores instead of N full pools.
        changes["engine_workers"] = max(1, default_workers() // processes)
    if not cfg.redis_url:
        changes["auth_failure_limit"] = max(1, cfg.auth_failure_limit // processes)
    return cfg.with_overrides(**changes)


def serve_app(
    cfg: Settings, sock: socket.socket, role: Role, ready: Callable[[], object] | None = None
) -> None:
    """Build the app of one API process and serve it on ``sock`` until stopped; call
    ``ready`` once it accepts requests."""
    # Imported here: the server stack is what makes a command slow to start.
    import uvicorn  # noqa: PLC0415

    from bioverify.api.app import create_app  # noqa: PLC0415
    from bioverify.api.http_protocol import LimitedHttpToolsProtocol  # noqa: PLC0415
    from bioverify.storage.database import make_engine  # noqa: PLC0415
    from bioverify.worker import Worker  # noqa: PLC0415

    engine = make_engine(cfg.resolved_database_url)
    app = create_app(
        cfg,
        db_engine=engine,
        run_worker=role.run_worker,
        worker_factory=Worker,
        warm_engine=True,
        lead_sequencer=role.lead_sequencer,
    )
    config = uvicorn.Config(
        app,
        log_config=None,
        access_log=False,
        proxy_headers=False,
        server_header=False,
        http=LimitedHttpToolsProtocol,  # bounds request heads (431)
    )

    class Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            # What start-up built (the app, the ORM's mappers, pydantic's and FastAPI's
            # models, the metrics) lives as long as the process: out of the collector's
            # sight, a full collection no longer walks all of it again under load.
            gc.freeze()
            if self.started and ready is not None:
                ready()

    Server(config).run(sockets=[sock])
    engine.dispose()


def _child(cfg: Settings, sock: socket.socket, role: Role, ready: EventType) -> None:
    from bioverify.observability import configure_logging  # noqa: PLC0415 - a fresh process

    configure_logging(cfg.log_level)
    serve_app(cfg, sock, role, ready.set)


@dataclass
class _Running:
    role: Role
    process: BaseProcess
    #: Set by the process once it accepts requests.
    ready: EventType


class Supervisor:
    """Starts, watches and stops the API processes of one ``serve``."""

    def __init__(self, cfg: Settings, sock: socket.socket, processes: int, *, worker: bool):
        self._cfg = process_settings(cfg, processes)
        self._sock = sock
        self._roles = [
            Role(index=i, run_worker=worker and i == 0, lead_sequencer=i == 0)
            for i in range(processes)
        ]
        self._ctx = multiprocessing.get_context("spawn")
        self._running: list[_Running] = []
        self._stopping = False

    def _start(self, role: Role) -> _Running:
        ready = self._ctx.Event()
        process = self._ctx.Process(
            target=_child,
            args=(self._cfg, self._sock, role, ready),
            name=f"bioverify-api-{role.index}",
        )
        process.start()
        log.info("api_process_started", index=role.index, pid=process.pid)
        return _Running(role, process, ready)

    def _stop(self, *_: object) -> None:
        self._stopping = True

    def run(self) -> None:
        """Serve until SIGINT/SIGTERM; replace a process that dies after it was serving,
        raise :class:`ServeFailed` if one dies before (broken, not unlucky: restarting it
        would only loop)."""
        previous = {sig: signal.signal(sig, self._stop) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            self._running = [self._start(role) for role in self._roles]
            while not self._stopping:
                wait([r.process.sentinel for r in self._running], timeout=0.5)
                for i, running in enumerate(self._running):
                    if self._stopping or running.process.is_alive():
                        continue
                    code = running.process.exitcode
                    if not running.ready.is_set():
                        raise ServeFailed(
                            f"API process {running.role.index} exited at start with status "
                            f"{code}; see its log above"
                        )
                    log.error("api_process_died", index=running.role.index, exitcode=code)
                    self._running[i] = self._start(running.role)
        finally:
            self._shutdown()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _shutdown(self) -> None:
        for running in self._running:
            if running.process.is_alive():
                running.process.terminate()  # SIGTERM: uvicorn finishes and drains
        deadline = time.monotonic() + STOP_GRACE_S
        for running in self._running:
            running.process.join(max(0.0, deadline - time.monotonic()))
            if running.process.is_alive():
                running.process.kill()
                running.process.join()


def serve_processes(
    cfg: Settings, *, host: str, port: int, processes: int, with_worker: bool
) -> None:
    """Serve the API on ``host:port`` with ``processes`` processes (see the module docstring)."""
    sock = bind(host, port)
    try:
        if processes == 1:
            serve_app(cfg, sock, Role(index=0, run_worker=with_worker, lead_sequencer=True))
        else:
            Supervisor(cfg, sock, processes, worker=with_worker).run()
    finally:
        sock.close()


__all__ = [
    "ListenError",
    "Role",
    "ServeFailed",
    "Supervisor",
    "bind",
    "default_workers",
    "process_settings",
    "serve_app",
    "serve_processes",
]
