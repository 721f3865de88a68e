"""1:N gallery start-up from a sealed snapshot, and propagation between processes.

Prints numbers and ends with ``GOAL`` lines; never asserts. A SQLite store gets
``--size`` encrypted templates shaped like SFace's (``gallery.py``) with their
change-log rows; this process loads them and writes the sealed snapshot; then more
enrolments and erasures land that the snapshot does not hold. Baseline: a new
process that loads the store without a snapshot. Measured: a new process that loads
the snapshot, replays the change log and answers a SIGN-IN (process start included).
Then this process enrols and erases while the other one answers: SIGN-IN (which
catches up on request, as the capture path does) and its background poll.

    python bench/gallery_start.py [--size 1000000] [--after 1000] [--trials 10]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import insert

from bioverify.accounts.secretbox import KeyRingSealer
from bioverify.accounts.service import create_client
from bioverify.crypto import KeyRing, TemplateCipher
from bioverify.crypto.sqlstore import SqlDataKeyStore
from bioverify.engine import MODEL_VERSION, MemoryGallery, load_thresholds
from bioverify.sessions.biometrics import Biometrics
from bioverify.sessions.gallery_log import GalleryChange
from bioverify.sessions.models import Enrolment
from bioverify.storage.database import make_engine, session_factory, transaction
from bioverify.storage.migrate import upgrade

GOAL_START_S = 30.0
FACES = Path(__file__).resolve().parent.parent / "tests" / "data" / "faces"
Matrix = npt.NDArray[np.float32]
GOAL_PROPAGATE_S = 2.0


def _biometrics(
    url: str, keys: Path, snapshots: Path | None, poll: float
) -> tuple[Biometrics, Any]:
    engine = make_engine(url)
    factory = session_factory(engine)
    bio = Biometrics(
        cipher=TemplateCipher(KeyRing.load_or_create(keys), SqlDataKeyStore(factory)),
        gallery=MemoryGallery(),
        thresholds=load_thresholds(),
        model_version=MODEL_VERSION,
    )
    bio.syncer = bio.make_syncer(factory, snapshot_dir=snapshots, poll_seconds=poll)
    return bio, factory


def fill_store(url: str, keys: Path, gallery: Matrix) -> tuple[Biometrics, Any, str]:
    engine = make_engine(url)
    upgrade(engine)
    bio, factory = _biometrics(url, keys, None, 0.5)
    with transaction(factory) as db:
        sealer = KeyRingSealer(KeyRing.load_or_create(keys))
        client, _ = create_client(db, name="bench", sealer=sealer)
    tenant = client.id
    bio.prepare(tenant)
    t0 = time.perf_counter()
    now = dt.datetime.now(dt.UTC)
    for start in range(0, len(gallery), 20_000):
        rows = []
        changes = []
        for n in range(start, min(len(gallery), start + 20_000)):
            cid = f"c{n}"
            blob = bio.cipher.encrypt(
                tenant, gallery[n].tobytes(), f"template:{tenant}:{cid}".encode()
            )
            rows.append(
                {
                    "client_id": tenant,
                    "customer_id": cid,
                    "puid": cid,
                    "template": blob,
                    "model_version": MODEL_VERSION,
                    "device_hash": None,
                    "enrolled_at": now,
                }
            )
            changes.append({"client_id": tenant, "customer_id": cid, "at": now})
        with transaction(factory) as db:
            db.execute(insert(Enrolment), rows)
            db.execute(insert(GalleryChange), changes)
    print(
        f"store: {len(gallery):,} encrypted templates written in {time.perf_counter() - t0:.1f} s"
    )
    return bio, factory, tenant


def _enrol(bio: Biometrics, factory: Any, tenant: str, cid: str, vec: Matrix) -> None:
    with transaction(factory) as db:
        bio.enrol(
            db,
            client_id=tenant,
            customer_id=cid,
            puid=cid,
            embedding=vec,
            device_hash=None,
            now=dt.datetime.now(dt.UTC),
        )


def _erase(bio: Biometrics, factory: Any, tenant: str, cid: str) -> None:
    with transaction(factory) as db:
        bio.erase(db, tenant, cid)


def spawn(
    url: str, keys: Path, snapshots: Path | None, tenant: str, probe: Matrix
) -> tuple[subprocess.Popen[str], float, dict[str, Any]]:
    cmd = [
        sys.executable,
        __file__,
        "--replica",
        url,
        str(keys),
        str(snapshots or ""),
        tenant,
        probe.astype(np.float32).tobytes().hex(),
    ]
    t0 = time.time()
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    ready = json.loads(proc.stdout.readline())
    print(
        f"  (process start + imports {ready['main_at'] - t0:.1f} s, load "
        f"{ready['loaded_at'] - ready['main_at']:.1f} s, first SIGN-IN "
        f"{ready['at'] - ready['loaded_at']:.2f} s)"
    )
    return proc, ready["at"] - t0, ready


def ask(proc: subprocess.Popen[str], **command: Any) -> dict[str, Any]:
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(json.dumps(command) + "\n")
    proc.stdin.flush()
    answer: dict[str, Any] = json.loads(proc.stdout.readline())
    return answer


def replica_main(argv: Sequence[str]) -> None:
    """The other process: load, answer one SIGN-IN, then serve commands on stdin."""
    main_at = time.time()  # after the imports
    url, keys, snapshots, tenant, probe_hex = argv
    probe = np.frombuffer(bytes.fromhex(probe_hex), np.float32)
    bio, factory = _biometrics(url, Path(keys), Path(snapshots) if snapshots else None, 0.5)
    bio.rebuild(factory)
    loaded_at = time.time()
    with transaction(factory) as db:
        found = bio.identify(db, tenant, probe)
    syncer = bio.syncer
    assert syncer is not None
    print(
        json.dumps(
            {
                "at": time.time(),
                "main_at": main_at,
                "loaded_at": loaded_at,
                "size": bio.gallery.size(tenant),
                "found": found and found.customer_id,
            }
        ),
        flush=True,
    )
    stop = threading.Event()

    def poll() -> None:  # what the app's lifespan task does
        while not stop.wait(syncer.poll_seconds):
            syncer.catch_up()

    threading.Thread(target=poll, daemon=True).start()
    for raw in sys.stdin:
        cmd = json.loads(raw)
        vec = np.frombuffer(bytes.fromhex(cmd["vec"]), np.float32)
        if cmd["op"] == "signin":  # the capture path: catch up, then identify
            bio.sync(factory)
            with transaction(factory) as db:
                hit = bio.identify(db, tenant, vec)
            print(json.dumps({"at": time.time(), "found": hit and hit.customer_id}), flush=True)
            continue
        deadline = time.time() + 10.0
        want_present = cmd["op"] == "watch-add"
        while time.time() < deadline:  # background poll only: no request-path catch-up
            top = bio.gallery.search(tenant, vec, 1)
            if (bool(top) and top[0][0] == cmd["cid"]) == want_present:
                break
            time.sleep(0.002)
        print(json.dumps({"at": time.time()}), flush=True)
    stop.set()


def bench_start(args: argparse.Namespace, gallery: Matrix, shape: Any) -> list[str]:
    from gallery import _unit, goal  # noqa: PLC0415  # the replica process does not need it

    rng = np.random.default_rng(11)
    with tempfile.TemporaryDirectory(prefix="bench-gallery-") as tmp:
        work = Path(tmp)
        url = f"sqlite:///{work / 'store.sqlite3'}"
        bio, factory, tenant = fill_store(url, work / "keys", gallery)
        snapshots = work / "gallery"
        t0 = time.perf_counter()
        bio.syncer = bio.make_syncer(factory, snapshot_dir=snapshots)
        bio.rebuild(factory)
        load_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        bio.syncer.write_snapshots(force=True)
        size_mb = sum(p.stat().st_size for p in snapshots.iterdir()) / 1e6
        print(
            f"this process: loaded from the store in {load_s:.1f} s; snapshot "
            f"{size_mb:.0f} MB written in {time.perf_counter() - t0:.1f} s"
        )
        # The snapshot ages: enrolments and erasures it does not hold.
        extra = shape.sample(shape.centres(args.after, rng), rng)
        for n, vec in enumerate(extra):
            _enrol(bio, factory, tenant, f"late{n}", vec)
        for n in range(args.after // 10):
            _erase(bio, factory, tenant, f"c{n}")
        probe = _unit(extra[-1:] + rng.normal(0, 0.02, (1, 128)).astype(np.float32))[0]
        print(f"after the snapshot: {args.after} enrolments, {args.after // 10} erasures")

        base, base_s, base_ready = spawn(url, work / "keys", None, tenant, probe)
        ask_close(base)
        print(
            f"baseline: new process loading the store (no snapshot): ready in {base_s:.1f} s, "
            f"{base_ready['size']:,} templates, found {base_ready['found']}"
        )
        proc, ready_s, ready = spawn(url, work / "keys", snapshots, tenant, probe)
        print(
            f"new process from the snapshot + change log: ready in {ready_s:.1f} s, "
            f"{ready['size']:,} templates, found {ready['found']} "
            f"({base_s / ready_s:.1f}x faster than the baseline)"
        )
        signin, added, erased = [], [], []
        for n in range(args.trials):
            vec = shape.sample(shape.centres(1, rng), rng)[0]
            _enrol(bio, factory, tenant, f"new{n}", vec)
            t0 = time.time()
            answer = ask(proc, op="signin", vec=vec.tobytes().hex())
            signin.append(answer["at"] - t0 if answer["found"] == f"new{n}" else float("inf"))
            vec = shape.sample(shape.centres(1, rng), rng)[0]
            _enrol(bio, factory, tenant, f"bg{n}", vec)
            t0 = time.time()
            added.append(
                ask(proc, op="watch-add", cid=f"bg{n}", vec=vec.tobytes().hex())["at"] - t0
            )
            _erase(bio, factory, tenant, f"bg{n}")
            t0 = time.time()
            erased.append(
                ask(proc, op="watch-remove", cid=f"bg{n}", vec=vec.tobytes().hex())["at"] - t0
            )
        ask_close(proc)
        print(f"propagation over {args.trials} trials (seconds, max / median):")
        print(
            f"  enrolment -> SIGN-IN on the other process (catch-up on request): "
            f"{max(signin):.3f} / {np.median(signin):.3f}"
        )
        print(
            f"  enrolment -> other gallery, background poll (0.5 s): "
            f"{max(added):.3f} / {np.median(added):.3f}"
        )
        print(
            f"  erasure -> gone from the other gallery, background poll: "
            f"{max(erased):.3f} / {np.median(erased):.3f} "
            f"(identification refuses it at once: store check)"
        )
        ok = ready["found"] == f"late{args.after - 1}" and ready["size"] == base_ready["size"]
        return [
            goal("gallery_start_ready_s", ready_s, GOAL_START_S, ok and ready_s <= GOAL_START_S),
            goal("gallery_start_speedup_vs_store_load", base_s / ready_s, 1, base_s > ready_s),
            goal(
                "gallery_enrol_to_signin_other_process_s",
                max(signin),
                GOAL_PROPAGATE_S,
                max(signin) <= GOAL_PROPAGATE_S,
            ),
        ]


def ask_close(proc: subprocess.Popen[str]) -> None:
    assert proc.stdin is not None
    proc.stdin.close()
    proc.wait(timeout=60)


def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--replica"]:
        replica_main(argv[1:])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--after", type=int, default=1000, help="enrolments after the snapshot")
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--faces", type=Path, default=FACES)
    args = parser.parse_args(argv)
    print(
        f"goals at {args.size:,}: ready for SIGN-IN <= {GOAL_START_S:.0f} s; enrolment found "
        f"by another process <= {GOAL_PROPAGATE_S:.0f} s. load average "
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )
    from gallery import Shape, make_vectors, real_templates  # noqa: PLC0415

    shape = Shape(*real_templates(args.faces))
    gallery, _, _ = make_vectors(shape, args.size, 1, np.random.default_rng(7))
    for row in bench_start(args, gallery, shape):
        print(row)


if __name__ == "__main__":
    main()
