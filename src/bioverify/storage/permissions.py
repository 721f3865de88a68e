"""The data directory and the SQLite files in it are private to the service's user.

A directory made by an older version (or by hand, under a loose umask) is
tightened at start-up rather than trusted: 0700 for the directory, 0600 for the
database and its ``-wal``/``-shm`` files (SQLite gives those the database's mode).
"""

from __future__ import annotations

import stat
from pathlib import Path

import structlog

log = structlog.get_logger("bioverify.storage")

DIR_MODE = 0o700
FILE_MODE = 0o600


def _tighten(path: Path, mode: int) -> None:
    current = stat.S_IMODE(path.stat().st_mode)
    if current & ~mode:
        log.warning("permissions_tightened", path=str(path), was=oct(current), now=oct(mode))
        path.chmod(current & mode)


def secure_data_dir(data_dir: Path, database_url: str) -> None:
    """Create ``data_dir`` 0700 (or tighten it), and tighten its SQLite files to 0600."""
    data_dir.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    _tighten(data_dir, DIR_MODE)
    if not database_url.startswith("sqlite:///"):
        return
    database = Path(database_url.removeprefix("sqlite:///").split("?", 1)[0])
    for path in (database, Path(f"{database}-wal"), Path(f"{database}-shm")):
        if path.exists():
            _tighten(path, FILE_MODE)


__all__ = ["secure_data_dir"]
