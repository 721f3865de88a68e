"""``bioverify serve``, ``bioverify worker`` and ``bioverify migrate``."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Annotated

import typer

from bioverify.cli._context import console, migrated_engine, settings, store

if TYPE_CHECKING:
    from bioverify.config import Settings

HostOption = Annotated[
    str, typer.Option("--host", envvar="BIOVERIFY_HOST", help="Address to listen on.")
]
PortOption = Annotated[
    int, typer.Option("--port", envvar="BIOVERIFY_PORT", help="Port to listen on.")
]


def run_server(
    cfg: Settings, *, host: str, port: int, with_worker: bool, processes: int = 1
) -> None:
    from bioverify.observability import configure_logging  # noqa: PLC0415 - fast start

    configure_logging(cfg.log_level)
    if not cfg.public_url_set:
        cfg = cfg.with_overrides(public_url=f"http://{host}:{port}")
    engine = migrated_engine(cfg)  # an unreachable store stops here, before the heavy part
    engine.dispose()  # each API process opens its own
    if processes > 1:
        # Create the key ring once, here, rather than racing N processes to do it; a
        # ring that cannot be loaded is reported by each process (readiness fails).
        from bioverify.errors import BioverifyError  # noqa: PLC0415
        from bioverify.wiring import load_keyring  # noqa: PLC0415

        with contextlib.suppress(BioverifyError):
            load_keyring(cfg)
    # Imported here: the server stack is what makes a command slow to start.
    from bioverify.serving import serve_processes  # noqa: PLC0415

    serve_processes(cfg, host=host, port=port, processes=processes, with_worker=with_worker)


def serve(
    host: HostOption = "127.0.0.1",
    port: PortOption = 8000,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            min=1,
            help="API processes on the port (default: one per core); the worker runs once.",
        ),
    ] = None,
    no_worker: Annotated[
        bool,
        typer.Option("--no-worker", help="API only; run `bioverify worker` processes separately."),
    ] = False,
) -> None:
    """Serve the API (with the embedded worker unless --no-worker)."""
    from bioverify.serving import default_workers  # noqa: PLC0415 - fast start

    run_server(
        settings(),
        host=host,
        port=port,
        with_worker=not no_worker,
        processes=workers or default_workers(),
    )


def worker() -> None:
    """Run the dispatcher, expiry sweeper and audit sequencer without the API."""
    import asyncio  # noqa: PLC0415 - see run_server
    import signal  # noqa: PLC0415

    from bioverify.observability import configure_logging  # noqa: PLC0415

    cfg = settings()
    configure_logging(cfg.log_level)
    engine = migrated_engine(cfg)
    from bioverify.wiring import build_services  # noqa: PLC0415
    from bioverify.worker import Worker  # noqa: PLC0415

    services = build_services(cfg, db_engine=engine)
    # A worker has no /readyz to say it is broken: it refuses to start instead.
    services.require_ready()

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        console().print("bioverify worker running; Ctrl-C to stop.")
        await Worker(services).run(stop)

    asyncio.run(main())


def migrate() -> None:
    """Bring the database schema up to date."""
    with store(settings()):
        pass
    console().print("Schema is up to date.")


__all__ = ["HostOption", "PortOption", "migrate", "run_server", "serve", "worker"]
