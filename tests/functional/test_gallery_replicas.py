"""Two replicas over one store: enrolments reach the other replica, erasures are never
answered (even by a replica that has not caught up), and a restart loads a sealed
snapshot and replays what it missed. Real SFace templates from real photos."""

from __future__ import annotations

import datetime as dt
import functools
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import Engine, select

from bioverify.crypto import KeyRing, TemplateCipher
from bioverify.crypto.sqlstore import SqlDataKeyStore
from bioverify.engine import LivenessMode, LocalEngine, MemoryGallery, load_thresholds
from bioverify.sessions.biometrics import Biometrics
from bioverify.sessions.gallery_log import GalleryChange
from bioverify.storage.database import session_factory, transaction
from fixtures_faces import file_bytes, labelled_identities
from support import Creds

MODEL = "test-model"


@functools.cache
def _templates() -> dict[str, list[np.ndarray]]:
    """Two templates of each of four people (first photos that pass the pipeline)."""
    engine = LocalEngine()
    out: dict[str, list[np.ndarray]] = defaultdict(list)
    for path, person in labelled_identities():
        if len(out[person]) == 2 or (len(out) >= 4 and person not in out):
            continue
        found = engine.analyze_sync([file_bytes(path)], liveness=LivenessMode.PASSIVE)
        if found.embedding is not None:
            out[person].append(np.asarray(found.embedding, np.float32))
    people = {p: t for p, t in out.items() if len(t) == 2}
    if len(people) < 4:
        pytest.skip("not enough labelled photos with two usable faces")
    return dict(list(people.items())[:4])


def _replica(db_engine: Engine, keyring: KeyRing, snapshots: Path | None = None) -> Biometrics:
    factory = session_factory(db_engine)
    bio = Biometrics(
        cipher=TemplateCipher(keyring, SqlDataKeyStore(factory)),
        gallery=MemoryGallery(),
        thresholds=load_thresholds(),
        model_version=MODEL,
    )
    bio.syncer = bio.make_syncer(factory, snapshot_dir=snapshots)
    bio.rebuild(factory)
    return bio


def _enrol(bio: Biometrics, db_engine: Engine, client: str, customer: str, vec: np.ndarray) -> None:
    bio.prepare(client)
    with transaction(session_factory(db_engine)) as db:
        bio.enrol(
            db,
            client_id=client,
            customer_id=customer,
            puid=f"puid-{customer}",
            embedding=vec,
            device_hash=None,
            now=dt.datetime.now(dt.UTC),
        )


def _erase(bio: Biometrics, db_engine: Engine, client: str, customer: str) -> None:
    with transaction(session_factory(db_engine)) as db:
        assert bio.erase(db, client, customer)


def _identify(bio: Biometrics, db_engine: Engine, client: str, probe: np.ndarray) -> str | None:
    with transaction(session_factory(db_engine)) as db:
        found = bio.identify(db, client, probe)
    return None if found is None else found.customer_id


def test_enrolment_on_one_replica_is_found_by_another(
    db_engine: Engine, keyring: KeyRing, creds: Creds
) -> None:
    people = list(_templates().values())
    a, b = _replica(db_engine, keyring), _replica(db_engine, keyring)
    for n, (enrolled, _) in enumerate(people):
        _enrol(a, db_engine, creds.client_id, f"cust-{n}", enrolled)
    probe = people[2][1]  # another photo of the third person
    assert _identify(a, db_engine, creds.client_id, probe) == "cust-2"
    assert b.gallery.size(creds.client_id) == 0
    assert b.sync(session_factory(db_engine)) == len(people)
    assert _identify(b, db_engine, creds.client_id, probe) == "cust-2"
    assert b.sync(session_factory(db_engine)) == 0  # nothing new: nothing replayed


def test_an_erased_customer_is_never_identified_by_a_lagging_replica(
    db_engine: Engine, keyring: KeyRing, creds: Creds
) -> None:
    people = list(_templates().values())
    a, b = _replica(db_engine, keyring), _replica(db_engine, keyring)
    first, second = people[0]
    # The same person enrolled twice (old and new account), plus the others.
    _enrol(a, db_engine, creds.client_id, "old-account", first)
    _enrol(a, db_engine, creds.client_id, "new-account", second)
    for n, (enrolled, _) in enumerate(people[1:]):
        _enrol(a, db_engine, creds.client_id, f"other-{n}", enrolled)
    b.sync(session_factory(db_engine))
    assert _identify(b, db_engine, creds.client_id, first) == "old-account"

    _erase(a, db_engine, creds.client_id, "old-account")
    # b has not caught up: its gallery still ranks the erased account first...
    assert b.gallery.search(creds.client_id, first, k=1)[0][0] == "old-account"
    # ...but the answer is checked against the store: never the erased customer.
    assert _identify(b, db_engine, creds.client_id, first) == "new-account"
    _erase(a, db_engine, creds.client_id, "new-account")
    assert _identify(b, db_engine, creds.client_id, first) is None
    assert _identify(b, db_engine, creds.client_id, people[1][1]) == "other-0"
    b.sync(session_factory(db_engine))
    hits = b.gallery.search(creds.client_id, first, k=10)
    assert {c for c, _ in hits}.isdisjoint({"old-account", "new-account"})


def test_restart_loads_the_sealed_snapshot_and_replays_what_it_missed(
    db_engine: Engine, keyring: KeyRing, creds: Creds, tmp_path: Path
) -> None:
    people = list(_templates().values())
    snapshots = tmp_path / "gallery"
    a = _replica(db_engine, keyring, snapshots)
    for n in range(3):
        _enrol(a, db_engine, creds.client_id, f"cust-{n}", people[n][0])
    assert a.syncer is not None
    a.syncer.catch_up()
    assert a.syncer.write_snapshots(force=True) == 1
    (snapshot_file,) = snapshots.iterdir()
    assert creds.client_id not in snapshot_file.name
    # While the snapshot ages: one more enrolment, one erasure.
    _enrol(a, db_engine, creds.client_id, "cust-3", people[3][0])
    _erase(a, db_engine, creds.client_id, "cust-0")

    restarted = _replica(db_engine, keyring, snapshots)
    assert restarted.gallery.size(creds.client_id) == 3
    assert _identify(restarted, db_engine, creds.client_id, people[3][1]) == "cust-3"
    assert _identify(restarted, db_engine, creds.client_id, people[1][1]) == "cust-1"
    assert _identify(restarted, db_engine, creds.client_id, people[0][1]) is None

    # The erasure makes the snapshot due: the erased template leaves the disk.
    a.syncer.catch_up()
    a.syncer._erasure_snapshot_seconds = 0.0  # due now rather than within a minute
    assert a.syncer.write_snapshots() == 1
    rewritten = a.syncer._read_snapshot(creds.client_id)
    assert rewritten is not None
    assert sorted(rewritten.state.ids) == ["cust-1", "cust-2", "cust-3"]

    # Without a snapshot a new replica (its data keys not yet loaded) reads the store.
    from_store = _replica(db_engine, keyring)
    assert from_store.gallery.size(creds.client_id) == 3
    assert _identify(from_store, db_engine, creds.client_id, people[2][1]) == "cust-2"

    seeded = _replica(db_engine, keyring, tmp_path / "fresh")
    assert seeded.syncer is not None
    assert seeded.syncer.write_snapshots() == 1  # loaded from the store: written at once

    # A damaged snapshot costs a load from the store, never a wrong answer.
    snapshot_file.write_bytes(snapshot_file.read_bytes()[:-100])
    fallback = _replica(db_engine, keyring, snapshots)
    assert fallback.gallery.size(creds.client_id) == 3
    assert _identify(fallback, db_engine, creds.client_id, people[3][1]) == "cust-3"


def test_a_hole_in_the_log_is_waited_for_then_passed(
    db_engine: Engine, keyring: KeyRing, creds: Creds
) -> None:
    """PostgreSQL numbers changes before commit: a later one can be visible first."""
    people = list(_templates().values())
    writer, reader = _replica(db_engine, keyring), _replica(db_engine, keyring)
    assert reader.syncer is not None
    _enrol(writer, db_engine, creds.client_id, "first", people[0][0])
    _enrol(writer, db_engine, creds.client_id, "late", people[1][0])
    _enrol(writer, db_engine, creds.client_id, "third", people[2][0])
    with transaction(session_factory(db_engine)) as db:
        late = db.scalar(select(GalleryChange).where(GalleryChange.customer_id == "late"))
        assert late is not None
        hole = late.seq
        db.delete(late)  # as if its transaction had not committed yet
    start = reader.syncer.watermark
    assert reader.syncer.catch_up() == 2
    assert reader.syncer.watermark == hole - 1 > start  # stops below the hole
    assert reader.syncer.catch_up() == 0  # nothing applied twice while waiting
    reader.syncer._gap_seconds = 0.0  # a rolled-back transaction: give up on the hole
    reader.syncer.catch_up()
    assert reader.syncer.watermark > hole
