"""What every command needs: settings, the store, the services, output helpers.

Heavy modules (SQLAlchemy, the key ring, rich) are imported inside these helpers,
not at the top: ``bioverify --help`` and a usage error must start in a blink.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import sys
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console
    from sqlalchemy import Engine
    from sqlalchemy.orm import Session, sessionmaker

    from bioverify.config import Settings
    from bioverify.crypto.keyring import KeyRing
    from bioverify.wiring import Services


@functools.cache
def console() -> Console:
    """Messages for the operator (standard error; standard output is for data)."""
    from rich.console import Console  # noqa: PLC0415 - see the module docstring

    return Console(stderr=True, soft_wrap=True)


def settings() -> Settings:
    from bioverify.config import Settings  # noqa: PLC0415 - see the module docstring
    from bioverify.observability import configure_logging  # noqa: PLC0415

    cfg = Settings.from_env()
    # Log records go to stderr as JSON lines: stdout is the command's own output
    # (`clients create --json` is parsed by scripts), never mixed with logs.
    configure_logging(cfg.log_level)
    return cfg


def wait_for_database(engine: Engine, wait_s: float) -> None:
    """Connect within ``wait_s`` seconds (a database still starting gets that long), or
    raise ``ConfigError`` naming ``BIOVERIFY_DATABASE_URL`` (password hidden)."""
    from sqlalchemy import text  # noqa: PLC0415 - see the module docstring
    from sqlalchemy.exc import SQLAlchemyError  # noqa: PLC0415

    from bioverify.config import ConfigError  # noqa: PLC0415

    deadline = time.monotonic() + wait_s
    while True:
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            return
        except SQLAlchemyError as exc:
            if time.monotonic() >= deadline:
                where = engine.url.render_as_string(hide_password=True)
                reason = (str(getattr(exc, "orig", None) or exc).splitlines() or ["?"])[0]
                raise ConfigError(
                    f"BIOVERIFY_DATABASE_URL: cannot reach {where} after {wait_s:g} s: "
                    f"{reason[:160]}"
                ) from None
            time.sleep(min(0.5, max(0.0, deadline - time.monotonic())))


def migrated_engine(cfg: Settings) -> Engine:
    """The store's engine, reachable (bounded wait) and with the schema up to date."""
    from bioverify.storage.database import make_engine  # noqa: PLC0415
    from bioverify.storage.migrate import upgrade  # noqa: PLC0415
    from bioverify.storage.permissions import secure_data_dir  # noqa: PLC0415

    # What this process creates in the data directory (the SQLite files) is private
    # from the start, rather than made 0644 and tightened (with a warning) afterwards.
    os.umask(0o077)
    secure_data_dir(cfg.data_dir, cfg.resolved_database_url)
    engine = make_engine(cfg.resolved_database_url)
    wait_for_database(engine, cfg.database_wait_s)
    upgrade(engine)
    secure_data_dir(cfg.data_dir, cfg.resolved_database_url)  # files the upgrade created
    return engine


@contextlib.contextmanager
def store(cfg: Settings | None = None) -> Iterator[sessionmaker[Session]]:
    """A session factory on the migrated store; the engine is closed afterwards."""
    from bioverify.storage.database import session_factory  # noqa: PLC0415

    engine = migrated_engine(cfg or settings())
    try:
        yield session_factory(engine)
    finally:
        engine.dispose()


@contextlib.contextmanager
def opened(cfg: Settings | None = None) -> Iterator[Services]:
    """The services (as the server builds them, without the face models or the audit
    sequencer: entries a command queues are sequenced by ``serve`` or a worker) on the store."""
    from bioverify.wiring import build_services  # noqa: PLC0415

    cfg = cfg or settings()
    engine = migrated_engine(cfg)
    try:
        yield build_services(cfg, db_engine=engine, with_engine=False, sequence=False)
    finally:
        engine.dispose()


def keyring(cfg: Settings | None = None) -> KeyRing:
    """The service's key ring (created on first use, like the server does)."""
    from bioverify.wiring import load_keyring  # noqa: PLC0415

    return load_keyring(cfg or settings())


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2) + "\n")
    sys.stdout.flush()


__all__ = [
    "console",
    "keyring",
    "migrated_engine",
    "opened",
    "print_json",
    "settings",
    "store",
    "wait_for_database",
]
