"""`verify_log` recomputes the stored log and names the first entry or checkpoint that fails."""

from __future__ import annotations

import random

import pytest
from audit_helpers import KEY_NAME, ORIGIN, FillLog
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, delete, select, update
from sqlalchemy.orm import Session

from bioverify.audit import verify as verify_module
from bioverify.audit.merkle import leaf_hash
from bioverify.audit.models import AuditCheckpoint, AuditEntry, AuditHead, AuditTile
from bioverify.audit.note import sign_checkpoint
from bioverify.audit.verify import LogRows, VerifyReport, verify_log

N, EVERY = 120, 25


def verify(engine: Engine, signer: Ed25519PrivateKey, **kw: object) -> VerifyReport:
    return verify_log(
        engine, public_keys=signer.public_key(), key_name=KEY_NAME, origin=ORIGIN, **kw
    )  # type: ignore[arg-type]


def row(engine: Engine, idx: int) -> AuditEntry:
    with Session(engine) as db:
        found = db.get(AuditEntry, idx)
        assert found is not None
        db.expunge(found)
        return found


def set_row(engine: Engine, idx: int, **values: object) -> None:
    with Session(engine) as db, db.begin():
        db.execute(update(AuditEntry).where(AuditEntry.idx == idx).values(**values))


def test_an_untouched_log_verifies(
    fill: FillLog, engine: Engine, signer: Ed25519PrivateKey
) -> None:
    fill(N, EVERY)
    seen: list[int] = []
    report = verify(engine, signer, progress=lambda done, total: seen.append(done))
    assert report == VerifyReport(True, None, "ok", entries=N, checkpoints=5)
    assert seen[-1] == N


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.tuples(st.integers(min_value=0, max_value=N - 1), st.integers(min_value=0), st.booleans())
)
def test_a_single_byte_change_names_its_entry(
    fill: FillLog, engine: Engine, signer: Ed25519PrivateKey, case: tuple[int, int, bool]
) -> None:
    idx, pos, rehash = case
    with Session(engine) as db, db.begin():
        for table in (AuditEntry, AuditCheckpoint, AuditTile, AuditHead):
            db.execute(delete(table))
    fill(N, EVERY)
    body = bytearray(row(engine, idx).body)
    body[pos % len(body)] ^= 1 + pos % 255
    # With rehash the attacker also fixes the stored leaf hash.
    values = {"body": bytes(body)} | ({"leaf_hash": leaf_hash(bytes(body))} if rehash else {})
    set_row(engine, idx, **values)
    report = verify(engine, signer)
    # Even with its stored hash fixed, the body no longer hashes to its leaf in the tile.
    assert (report.ok, report.first_bad_index) == (False, idx)


def test_a_deleted_entry_is_named(fill: FillLog, engine: Engine, signer: Ed25519PrivateKey) -> None:
    fill(N, EVERY)
    with Session(engine) as db, db.begin():
        db.execute(delete(AuditEntry).where(AuditEntry.idx == 42))
    report = verify(engine, signer)
    assert (report.ok, report.first_bad_index) == (False, 42)
    assert "missing" in report.reason


def test_deleting_the_tail_is_caught_by_the_checkpoint(
    fill: FillLog, engine: Engine, signer: Ed25519PrivateKey
) -> None:
    fill(N, EVERY)
    with Session(engine) as db, db.begin():
        db.execute(delete(AuditEntry).where(AuditEntry.idx >= 110))
    report = verify(engine, signer)
    assert (report.ok, report.first_bad_index) == (False, 110)
    assert "missing" in report.reason


def test_renumbering_after_a_delete_is_named(
    fill: FillLog, engine: Engine, signer: Ed25519PrivateKey
) -> None:
    fill(N, EVERY)
    with Session(engine) as db, db.begin():
        db.execute(delete(AuditEntry).where(AuditEntry.idx == 30))
        for idx in range(31, N):
            db.execute(update(AuditEntry).where(AuditEntry.idx == idx).values(idx=idx - 1))
    report = verify(engine, signer)
    assert (report.ok, report.first_bad_index) == (False, 30)


def test_two_swapped_entries_name_the_first(
    fill: FillLog, engine: Engine, signer: Ed25519PrivateKey
) -> None:
    fill(N, EVERY)
    a, b = row(engine, 17), row(engine, 63)
    set_row(engine, 17, body=b.body, leaf_hash=b.leaf_hash)
    set_row(engine, 63, body=a.body, leaf_hash=a.leaf_hash)
    report = verify(engine, signer)
    assert (report.ok, report.first_bad_index) == (False, 17)


def test_an_inserted_entry_is_named(
    fill: FillLog, engine: Engine, signer: Ed25519PrivateKey
) -> None:
    fill(N, EVERY)
    forged = row(engine, 50)
    with Session(engine) as db, db.begin():
        for idx in range(N - 1, 49, -1):  # shift up to make room, as an attacker would
            db.execute(update(AuditEntry).where(AuditEntry.idx == idx).values(idx=idx + 1))
        db.add(
            AuditEntry(
                idx=50,
                client_id=forged.client_id,
                session_id=None,
                event=forged.event,
                body=forged.body,
                leaf_hash=forged.leaf_hash,
                created_at=forged.created_at,
            )
        )
    report = verify(engine, signer)
    assert (report.ok, report.first_bad_index) == (False, 51)


def test_an_altered_checkpoint_is_named(
    fill: FillLog, engine: Engine, signer: Ed25519PrivateKey
) -> None:
    fill(N, EVERY)
    with Session(engine) as db, db.begin():
        note = db.scalars(select(AuditCheckpoint.note).where(AuditCheckpoint.tree_size == 75)).one()
        db.execute(
            update(AuditCheckpoint)
            .where(AuditCheckpoint.tree_size == 75)
            .values(note=note.replace("\n75\n", "\n74\n"))
        )
    report = verify(engine, signer)
    assert (report.ok, report.bad_checkpoint) == (False, 75)


def test_a_re_signed_checkpoint_over_a_forged_root_is_named(
    fill: FillLog, engine: Engine, signer: Ed25519PrivateKey
) -> None:
    fill(N, EVERY)
    fake = bytes(32)
    with Session(engine) as db, db.begin():
        db.execute(
            update(AuditCheckpoint)
            .where(AuditCheckpoint.tree_size == 50)
            .values(root_hash=fake, note=sign_checkpoint(ORIGIN, 50, fake, signer, KEY_NAME))
        )
    report = verify(engine, signer)
    assert (report.ok, report.bad_checkpoint, report.first_bad_index) == (False, 50, None)


def test_an_unknown_key_or_no_checkpoint_fails(
    fill: FillLog, engine: Engine, signer: Ed25519PrivateKey
) -> None:
    fill(N, EVERY)
    report = verify_log(
        engine,
        public_keys=Ed25519PrivateKey.generate().public_key(),
        key_name=KEY_NAME,
        origin=ORIGIN,
    )
    assert (report.ok, report.bad_checkpoint) == (False, EVERY)
    with Session(engine) as db, db.begin():
        db.execute(delete(AuditCheckpoint))
        db.execute(update(AuditHead).values(note=None, checkpoint_size=None, root_hash=None))
    assert verify(engine, signer).reason == "the log has no signed checkpoint"


def test_rows_from_an_export_verify_too(
    fill: FillLog, engine: Engine, signer: Ed25519PrivateKey
) -> None:
    fill(N, EVERY)
    with Session(engine) as db:
        entries = [
            tuple(r)
            for r in db.execute(
                select(AuditEntry.idx, AuditEntry.body, AuditEntry.leaf_hash).order_by(
                    AuditEntry.idx
                )
            )
        ]
        cps = [
            tuple(r)
            for r in db.execute(
                select(AuditCheckpoint.tree_size, AuditCheckpoint.root_hash, AuditCheckpoint.note)
            )
        ]
    rows = LogRows(entries, cps)  # type: ignore[arg-type]
    assert verify_log(rows, public_keys=[signer.public_key()], key_name=KEY_NAME, origin=ORIGIN).ok
    entries[7], entries[8] = entries[8], entries[7]
    swapped = verify_log(
        LogRows(entries, cps),
        public_keys=[signer.public_key()],  # type: ignore[arg-type]
        key_name=KEY_NAME,
        origin=ORIGIN,
    )
    assert swapped.first_bad_index == 7


@pytest.mark.slow
@pytest.mark.parametrize("workers", [2, 3])
def test_worker_processes_reach_the_same_verdicts(
    fill: FillLog,
    engine: Engine,
    signer: Ed25519PrivateKey,
    monkeypatch: pytest.MonkeyPatch,
    workers: int,
) -> None:
    # Ranges of 64 (a quarter tile): this process and the workers each check some.
    monkeypatch.setattr(verify_module, "CHUNK", 64)
    monkeypatch.setattr(verify_module, "PARALLEL_MIN", 1)
    fill(1000, 40)
    assert verify(engine, signer, workers=workers).ok
    rng = random.Random(7 + workers)
    bad = sorted(rng.sample(range(1000), 2))
    for idx in bad:
        set_row(engine, idx, body=b"{}")
    assert verify(engine, signer, workers=workers).first_bad_index == bad[0]
