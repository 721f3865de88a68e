"""What every command needs: settings from the environment, the store, output helpers."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console
from sqlalchemy import Engine

from bioverify.config import Settings
from bioverify.storage.database import make_engine
from bioverify.storage.migrate import upgrade

console = Console(stderr=True)


def settings() -> Settings:
    return Settings.from_env()


def migrated_engine(cfg: Settings) -> Engine:
    """The store's engine, with the schema brought up to date first."""
    cfg.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    engine = make_engine(cfg.resolved_database_url)
    upgrade(engine)
    return engine


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2) + "\n")
    sys.stdout.flush()


__all__ = ["console", "migrated_engine", "print_json", "settings"]
