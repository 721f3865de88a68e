"""The audit sequencer on PostgreSQL with real processes: writers, competing workers, SIGKILL.

Writers are separate processes that only queue entries; sequencers are real
``bioverify worker`` processes competing for the advisory lock. The SIGKILL test
stops the leader *inside* a batch deterministically: the test holds an EXCLUSIVE
lock on ``audit_tiles``, so the leader's batch, having already inserted its
entries and deleted their queue rows, waits at its tile write; the test sees
that wait in ``pg_stat_activity`` and only then kills the leader.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import Processes, service_env, wait_until
from sqlalchemy import Engine, func, select, text

from bioverify.audit.models import AuditEntry, AuditHead, AuditQueued
from support import drop_schema_of, fresh_database_url, migrated

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

WRITERS, EACH = 4, 150
WRITER = Path(__file__).with_name("audit_writer.py")


@pytest.fixture
def pg_url(tmp_path: Path) -> Iterator[str]:
    url = fresh_database_url("postgres", tmp_path)
    yield url
    drop_schema_of(url)


@pytest.fixture
def engine(pg_url: str) -> Iterator[Engine]:
    """The migrated store, disposed even when the test fails (a pooled connection
    left to the garbage collector warns inside whichever test runs next)."""
    migrated_engine = migrated(pg_url)
    yield migrated_engine
    migrated_engine.dispose()


def start_writers(url: str, which: range = range(WRITERS)) -> list[subprocess.Popen[bytes]]:
    return [
        subprocess.Popen(
            [sys.executable, str(WRITER), url, str(w), str(EACH)], stdin=subprocess.DEVNULL
        )
        for w in which
    ]


def sequenced(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.scalar(select(AuditHead.tree_size)) or 0)


def queued(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.scalar(select(func.count()).select_from(AuditQueued)) or 0)


def assert_each_entry_sequenced_once(engine: Engine, procs: Processes, env: dict[str, str]) -> None:
    total = WRITERS * EACH
    with engine.connect() as conn:
        rows = conn.execute(
            select(AuditEntry.idx, AuditEntry.session_id, AuditEntry.queue_id).order_by(
                AuditEntry.idx
            )
        ).all()
    assert [r.idx for r in rows] == list(range(total))  # dense, gap-free
    assert sorted(r.session_id for r in rows) == sorted(
        f"w{w}-{i}" for w in range(WRITERS) for i in range(EACH)
    )
    assert len({r.queue_id for r in rows}) == total and None not in {r.queue_id for r in rows}
    # Each writer's entries keep their order (arrival order within a process).
    for w in range(WRITERS):
        mine = [int(r.session_id.split("-")[1]) for r in rows if r.session_id.startswith(f"w{w}-")]
        assert mine == sorted(mine)
    verified = procs.cli(env, "audit", "verify", "--quiet")
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_writer_processes_and_competing_workers_give_dense_indexes(
    pg_url: str, engine: Engine, procs: Processes, tmp_path: Path
) -> None:
    env = service_env(tmp_path / "data", pg_url)
    workers = [procs.worker(env), procs.worker(env)]  # both try to lead; one does
    writers = start_writers(pg_url)
    assert [w.wait(timeout=120) for w in writers] == [0] * WRITERS
    wait_until(
        lambda: sequenced(engine) == WRITERS * EACH and queued(engine) == 0,
        90,
        "every queued entry to be sequenced",
    )
    for worker in workers:
        worker.kill(signal.SIGTERM)
    assert_each_entry_sequenced_once(engine, procs, env)


def blocked_in_a_tile_write(engine: Engine, app: str) -> bool:
    with engine.connect() as conn:
        return bool(
            conn.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = :app "
                    "AND wait_event_type = 'Lock' AND query ILIKE '%audit_tiles%'"
                ),
                {"app": app},
            )
        )


def test_sigkill_of_the_leader_mid_batch_loses_and_duplicates_nothing(
    pg_url: str, engine: Engine, procs: Processes, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    env = service_env(data, pg_url)
    leader = procs.worker(service_env(data, pg_url + "&application_name=bv-seq-a"))
    # The first half of the writers shows the leader at work; the second half starts
    # only once the tile table is locked, so the leader always has a batch to block
    # in (a fast leader could otherwise sequence everything before the lock).
    half = WRITERS // 2
    writers = start_writers(pg_url, range(half))
    wait_until(lambda: sequenced(engine) >= 50, 60, "the first worker to sequence")
    with engine.connect() as blocker:
        blocker.execute(text("LOCK TABLE audit_tiles IN EXCLUSIVE MODE"))
        writers += start_writers(pg_url, range(half, WRITERS))
        wait_until(
            lambda: blocked_in_a_tile_write(engine, "bv-seq-a"),
            60,
            "the leader to wait inside a batch, at its tile write",
        )
        before = sequenced(engine)
        leader.kill(signal.SIGKILL)
        successor = procs.worker(service_env(data, pg_url + "&application_name=bv-seq-b"))
        blocker.rollback()  # the dead leader's backend finishes, finds no client, rolls back
    assert [w.wait(timeout=120) for w in writers] == [0] * WRITERS
    wait_until(
        lambda: sequenced(engine) == WRITERS * EACH and queued(engine) == 0,
        90,
        "the successor to sequence everything",
    )
    assert before < WRITERS * EACH  # the kill really left work for the successor
    successor.kill(signal.SIGTERM)
    assert_each_entry_sequenced_once(engine, procs, env)
