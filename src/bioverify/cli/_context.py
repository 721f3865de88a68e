"""What every command needs: settings from the environment, the store, output helpers."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from typing import Any

from rich.console import Console
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from bioverify.config import Settings
from bioverify.crypto.keyring import KeyRing
from bioverify.storage.database import make_engine, session_factory
from bioverify.storage.migrate import upgrade
from bioverify.storage.permissions import secure_data_dir

console = Console(stderr=True)


def settings() -> Settings:
    return Settings.from_env()


def migrated_engine(cfg: Settings) -> Engine:
    """The store's engine, with the schema brought up to date first."""
    secure_data_dir(cfg.data_dir, cfg.resolved_database_url)
    engine = make_engine(cfg.resolved_database_url)
    upgrade(engine)
    secure_data_dir(cfg.data_dir, cfg.resolved_database_url)  # files the upgrade created
    return engine


@contextlib.contextmanager
def store(cfg: Settings | None = None) -> Iterator[sessionmaker[Session]]:
    """A session factory on the migrated store; the engine is closed afterwards."""
    engine = migrated_engine(cfg or settings())
    try:
        yield session_factory(engine)
    finally:
        engine.dispose()


def keyring(cfg: Settings | None = None) -> KeyRing:
    """The service's key ring (created on first use, like the server does)."""
    cfg = cfg or settings()
    master = cfg.master_key.reveal() if cfg.master_key else None
    return KeyRing.load_or_create(cfg.keys_dir, master_key_b64=master)


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2) + "\n")
    sys.stdout.flush()


__all__ = ["console", "keyring", "migrated_engine", "print_json", "settings", "store"]
