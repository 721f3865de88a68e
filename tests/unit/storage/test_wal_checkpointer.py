"""SQLite under ``serve``: commits leave the WAL to a background checkpointer."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from bioverify.storage.database import (
    BACKGROUND_AUTOCHECKPOINT_PAGES,
    make_engine,
    session_factory,
    transaction,
)
from bioverify.storage.wal import WalCheckpointer


def _engine(tmp_path: Path, *, background: bool) -> Engine:
    tmp_path.mkdir(exist_ok=True)
    return make_engine(f"sqlite:///{tmp_path / 'wal.sqlite3'}", background_checkpoints=background)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = _engine(tmp_path, background=True)
    with transaction(session_factory(engine)) as db:
        db.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB)"))
    yield engine
    engine.dispose()


def _autocheckpoint(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar_one())


def _write(engine: Engine, rows: int) -> None:
    with transaction(session_factory(engine)) as db:
        for _ in range(rows):
            db.execute(text("INSERT INTO t (v) VALUES (randomblob(3000))"))


def test_commits_keep_sqlites_threshold_unless_a_checkpointer_runs(
    engine: Engine, tmp_path: Path
) -> None:
    assert _autocheckpoint(engine) == BACKGROUND_AUTOCHECKPOINT_PAGES
    plain = _engine(tmp_path / "plain", background=False)
    try:
        assert _autocheckpoint(plain) == 1000  # SQLite's own default, as before
    finally:
        plain.dispose()


@pytest.mark.parametrize("background", [True, False])
def test_a_commit_past_sqlites_default_checkpoints_only_without_the_checkpointer(
    tmp_path: Path, background: bool
) -> None:
    engine = _engine(tmp_path, background=background)
    try:
        with transaction(session_factory(engine)) as db:
            db.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB)"))
        _write(engine, 1200)  # ~1,200 pages, past SQLite's 1,000
        # Checkpointed pages are copied into the database file; the rest are only in the WAL.
        copied = (tmp_path / "wal.sqlite3").stat().st_size
        assert (copied < 1_000_000) is background
        if background:
            busy, pages, done = WalCheckpointer(engine).checkpoint()
            assert busy == 0
            assert done == pages > 1000
            assert (tmp_path / "wal.sqlite3").stat().st_size > 3_000_000
    finally:
        engine.dispose()


def test_the_thread_checkpoints_until_stopped(engine: Engine, tmp_path: Path) -> None:
    database = tmp_path / "wal.sqlite3"
    _write(engine, 300)
    before = database.stat().st_size
    checkpointer = WalCheckpointer(engine, interval_s=0.01)
    checkpointer.start()
    try:
        # Bounded wait for the thread's first pass, which copies the WAL into the file.
        deadline = time.monotonic() + 10
        while database.stat().st_size <= before and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        checkpointer.stop()
    assert database.stat().st_size > before + 500_000


def test_only_sqlite_has_a_wal_to_checkpoint() -> None:
    engine = make_engine("postgresql+psycopg://nobody@127.0.0.1:1/none")
    with pytest.raises(ValueError, match="SQLite"):
        WalCheckpointer(engine)
