"""The sequencer's PostgreSQL lock is per schema: one sequencer per log, and a log in
another schema of the same database (another deployment, a parallel test run) is
never left unsequenced behind it (its CLI then found "no audit entry 2")."""

from __future__ import annotations

from pathlib import Path

import pytest

from bioverify.audit.sequencer import _TRY_LOCK, LOCK_KEY
from bioverify.storage.database import make_engine
from support import drop_schema_of, fresh_database_url


@pytest.mark.postgres
def test_the_sequencer_lock_is_exclusive_per_schema_only(tmp_path: Path) -> None:
    urls = [fresh_database_url("postgres", tmp_path) for _ in range(2)]
    engines = [make_engine(url) for url in urls]
    try:
        with (
            engines[0].connect() as leader,
            engines[0].connect() as rival,
            engines[1].connect() as other_log,
        ):
            assert leader.execute(_TRY_LOCK, {"k": LOCK_KEY}).scalar() is True
            assert rival.execute(_TRY_LOCK, {"k": LOCK_KEY}).scalar() is False
            assert other_log.execute(_TRY_LOCK, {"k": LOCK_KEY}).scalar() is True
            for conn in (leader, other_log):
                conn.invalidate()  # closing the session releases its advisory lock
    finally:
        for engine, url in zip(engines, urls, strict=True):
            engine.dispose()
            drop_schema_of(url)
