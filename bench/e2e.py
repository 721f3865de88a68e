"""End-to-end VERIFY flows per second against the bare face models on the same cores.

Baseline: YuNet detect + SFace align-and-feature on the decoded photo, called
directly in one process per core (``cv2.setNumThreads(1)``, as the engine pool runs
them): faces per second, measured for ``--seconds`` / 2 before the flows and again
after them (the machine is shared: the mean of the two is the baseline, and both are
printed so a drifting load shows). Then ``bioverify serve --workers 1`` (a fresh
SQLite data directory, the default engine pool: one process per core) with one
customer enrolled, and ``--clients`` threads each running whole VERIFY flows for
``--seconds``: create the session (integrator), load it, submit the photo encrypted
through the capture SDK, read the decision (passive liveness, the lightest the API
offers; the photo is tests/data/faces/img29.jpg).

The clients run in this process and take their CPU from the same cores, so the CPU
time of every part is printed per flow (clients, the API process, the engine
processes, from /proc) next to the bare models' CPU per face: on a loaded machine
these are steadier than the rates, and they say where a flow's cost goes.

Goal (issue 17): VERIFY flows/s >= 0.85x bare YuNet + SFace faces/s. The GOAL line
takes the lower of that rate ratio and the CPU ratio (bare CPU per face over all CPU
per flow): other jobs on a shared machine flatter the rate of the run with more
processes, and the CPU ratio alone would not see cores left idle.

    .venv/bin/python bench/e2e.py [--seconds 15] [--clients 4]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import queue
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from bioverify.capture.sdk import CaptureSession

ROOT = Path(__file__).resolve().parent.parent
PHOTO = ROOT / "tests" / "data" / "faces" / "img29.jpg"
GOAL_RATIO = 0.85
BIN = Path(sys.executable).parent
CREATE = "/v2/verification-session"


_TICK = os.sysconf("SC_CLK_TCK")


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _bare_worker(seconds: float, out: multiprocessing.Queue[tuple[int, float]]) -> None:
    import cv2  # noqa: PLC0415 - in the pool process only

    from bioverify.engine.decode import decode_frame  # noqa: PLC0415
    from bioverify.engine.models import FaceModels  # noqa: PLC0415

    cv2.setNumThreads(1)
    models = FaceModels()
    image = decode_frame(PHOTO.read_bytes())
    face = models.detect(image)[0]
    models.embed(image, face)  # warm
    done = 0
    cpu = time.process_time()
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        face = models.detect(image)[0]
        models.embed(image, face)
        done += 1
    out.put((done, time.process_time() - cpu))


def bare_faces(seconds: float, cores: int) -> tuple[float, float]:
    """(faces/s of ``cores`` processes, CPU ms per face)."""
    ctx = multiprocessing.get_context("spawn")
    out: multiprocessing.Queue[tuple[int, float]] = ctx.Queue()
    procs = [ctx.Process(target=_bare_worker, args=(seconds, out)) for _ in range(cores)]
    for proc in procs:
        proc.start()
    results = []
    deadline = time.monotonic() + seconds + 120
    while len(results) < cores:
        try:
            results.append(out.get(timeout=1))
        except queue.Empty:
            if any(p.exitcode not in (None, 0) for p in procs) or time.monotonic() > deadline:
                raise SystemExit("a bare-model process failed (see its traceback above)") from None
    for proc in procs:
        proc.join()
    faces = sum(done for done, _ in results)
    return faces / seconds, 1000 * sum(cpu for _, cpu in results) / max(1, faces)


def _wait_ready(base: str, limit_s: float = 180.0) -> None:
    deadline = time.monotonic() + limit_s
    with httpx.Client(timeout=5) as http:
        while time.monotonic() < deadline:
            try:
                if http.get(f"{base}/readyz").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
    raise SystemExit(f"bioverify serve was not ready within {limit_s:.0f} s")


def _session(http: httpx.Client, headers: dict[str, str], kind: str) -> str:
    response = http.post(
        CREATE,
        json={"type": kind, "customerId": "bench-customer", "liveness": "passive"},
        headers=headers,
    )
    response.raise_for_status()
    return str(response.json()["launchUrl"])


def _flow(http: httpx.Client, headers: dict[str, str], kind: str, photo: bytes) -> None:
    with CaptureSession.from_launch_url(_session(http, headers, kind), timeout=60) as capture:
        outcome = capture.submit([photo])
    if outcome.status != "SUCCESS":
        raise SystemExit(f"a {kind} flow did not succeed: {outcome}")


@dataclass(frozen=True)
class FlowRun:
    flows_per_s: float
    client_cores: float
    #: CPU ms per flow: this process's clients, the API process, the engine processes.
    client_ms: float
    api_ms: float
    engine_ms: float


def e2e_flows(seconds: float, clients: int) -> FlowRun:
    """VERIFY flows/s of ``clients`` threads, and the CPU each part spent on them."""
    with tempfile.TemporaryDirectory(prefix="bv-bench-e2e-") as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith("BIOVERIFY_")}
        env.update(BIOVERIFY_DATA_DIR=str(Path(tmp) / "data"), BIOVERIFY_LOG_LEVEL="warning")
        made = subprocess.run(
            [str(BIN / "bioverify"), "clients", "create", "--name", "bench", "--json"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        creds = json.loads(made.stdout)
        headers = {
            "x_api_key": creds["apiKey"],
            "clientID": creds["clientId"],
            "clientSecret": creds["clientSecret"],
        }
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        base = f"http://127.0.0.1:{port}"
        server = subprocess.Popen(
            [str(BIN / "bioverify"), "serve", "--workers", "1", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            _wait_ready(base)
            photo = PHOTO.read_bytes()
            with httpx.Client(base_url=base, timeout=60) as http:
                _flow(http, headers, "ENROLL", photo)
                _flow(http, headers, "VERIFY", photo)  # warm
            done = [0] * clients
            engines = [  # the pool's processes, not multiprocessing's resource tracker
                p
                for p in _children(server.pid)
                if b"resource_tracker" not in Path(f"/proc/{p}/cmdline").read_bytes()
            ]
            deadline = time.perf_counter() + seconds

            def client(i: int) -> None:
                with httpx.Client(base_url=base, timeout=60) as http:
                    while time.perf_counter() < deadline:
                        _flow(http, headers, "VERIFY", photo)
                        done[i] += 1

            cpu_before = os.times()
            server_before = _cpu_s(server.pid), sum(_cpu_s(p) for p in engines)
            began = time.perf_counter()
            threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            wall = time.perf_counter() - began
            cpu_after = os.times()
            server_after = _cpu_s(server.pid), sum(_cpu_s(p) for p in engines)
        finally:
            server.terminate()
            server.wait(timeout=60)
    used = (cpu_after.user - cpu_before.user) + (cpu_after.system - cpu_before.system)
    flows = max(1, sum(done))
    return FlowRun(
        flows_per_s=sum(done) / wall,
        client_cores=used / wall,
        client_ms=1000 * used / flows,
        api_ms=1000 * (server_after[0] - server_before[0]) / flows,
        engine_ms=1000 * (server_after[1] - server_before[1]) / flows,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--clients", type=int, default=4, help="concurrent VERIFY flows")
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    print(f"machine: {cores} cpus, load {os.getloadavg()[0]:.2f}")
    before, bare_ms = bare_faces(args.seconds / 2, cores)
    run = e2e_flows(args.seconds, args.clients)
    after, bare_ms_after = bare_faces(args.seconds / 2, cores)
    bare = (before + after) / 2
    print(
        f"  bare YuNet + SFace, {cores} processes: {bare:7.1f} faces/s "
        f"(before {before:.1f}, after {after:.1f}; "
        f"{(bare_ms + bare_ms_after) / 2:.0f} ms CPU per face)"
    )
    print(
        f"  VERIFY flows, {args.clients} clients:     {run.flows_per_s:7.1f} flows/s "
        f"(the clients used {run.client_cores:.2f} of the {cores} cores)"
    )
    print(
        f"  CPU per flow: engine {run.engine_ms:.0f} ms, API process {run.api_ms:.0f} ms, "
        f"clients {run.client_ms:.0f} ms"
    )
    print(f"load at the end: {os.getloadavg()[0]:.2f}")
    rate = run.flows_per_s / bare
    # On a shared machine the flows' processes (API, engines, client threads) get a
    # larger share of the contended cores than the baseline's two, which flatters the
    # rate; CPU per flow against CPU per face is the same comparison per core-second,
    # but does not see cores left idle. The goal holds only if both ratios reach it.
    cpu = ((bare_ms + bare_ms_after) / 2) / (run.engine_ms + run.api_ms + run.client_ms)
    print(f"  ratios: flows/s vs faces/s {rate:.3g}, CPU per face vs CPU per flow {cpu:.3g}")
    ratio = min(rate, cpu)
    print(
        f"GOAL verify_flows_vs_bare_models {ratio:.3g} >={GOAL_RATIO} "
        f"{'met' if ratio >= GOAL_RATIO else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
