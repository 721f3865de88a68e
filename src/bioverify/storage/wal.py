"""SQLite: checkpoint the write-ahead log from a thread of its own, not inside a commit.

By default the commit that takes SQLite's WAL past 1,000 pages also checkpoints it:
copies the pages into the database file and syncs it, while that transaction still
holds the write lock (and, here, the writer gate every other request queues on).
Under create-session load that was a 4-12 ms commit two or three times a second,
each one stalling every writer behind it. ``serve`` instead runs a
:class:`WalCheckpointer`: a PASSIVE checkpoint every ``interval_s``, which waits for
no reader or writer and holds no write lock, so commits go on meanwhile. Commits
keep a much higher threshold of their own as a backstop (see
:data:`~bioverify.storage.database.BACKGROUND_AUTOCHECKPOINT_PAGES`), so the WAL
stays bounded even if this thread stops.
"""

from __future__ import annotations

import threading
from typing import Any, Final

import structlog
from sqlalchemy import Engine

from bioverify.storage.database import is_sqlite

log = structlog.get_logger("bioverify.storage.wal")

#: How often the WAL is checkpointed: at a few hundred creates a second it then holds
#: a few hundred pages, below the 1,000 at which SQLite would checkpoint in a commit.
INTERVAL_S: Final = 0.2


class WalCheckpointer:
    """PASSIVE checkpoints of one SQLite engine's WAL, every ``interval_s``, in a thread."""

    def __init__(self, engine: Engine, *, interval_s: float = INTERVAL_S) -> None:
        if not is_sqlite(engine):
            raise ValueError("only an SQLite store has a write-ahead log to checkpoint")
        self._engine = engine
        self._interval = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def checkpoint(self) -> tuple[int, int, int]:
        """One PASSIVE checkpoint: SQLite's (busy, pages in the WAL, pages checkpointed)."""
        raw = self._engine.raw_connection()
        try:
            cursor = raw.cursor()
            try:
                # Outside any transaction (the writer gate is not taken): PASSIVE never
                # waits on a busy handler, it copies what it can and returns.
                cursor.execute("PRAGMA wal_checkpoint(PASSIVE)")
                row: Any = cursor.fetchone()
                busy, pages, done = row
            finally:
                cursor.close()
        finally:
            raw.close()
        return int(busy), int(pages), int(done)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.checkpoint()
            except Exception:
                # Commits still checkpoint past the backstop threshold: log, go on.
                log.exception("wal_checkpoint_failed")

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="wal-checkpointer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None


__all__ = ["INTERVAL_S", "WalCheckpointer"]
