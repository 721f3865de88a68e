"""End-to-end VERIFY flows per second against the bare face models on the same cores.

Baseline: YuNet detect + SFace align-and-feature on the decoded photo, called
directly in one process per core (``cv2.setNumThreads(1)``, as the engine pool runs
them), for ``--seconds``: faces per second. Then ``bioverify serve --workers 1`` (a
fresh SQLite data directory, the default engine pool: one process per core) with one
customer enrolled, and ``--clients`` threads each running whole VERIFY flows for
``--seconds``: create the session (integrator), load it, submit the photo encrypted
through the capture SDK, read the decision (passive liveness, the lightest the API
offers; the photo is tests/data/faces/img29.jpg). The clients run in this process;
their CPU share is printed, since on a 2-core machine it comes out of the same cores.

Goal (issue 17): VERIFY flows/s >= 0.85x bare YuNet + SFace faces/s.

    .venv/bin/python bench/e2e.py [--seconds 15] [--clients 4]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from bioverify.capture.sdk import CaptureSession

ROOT = Path(__file__).resolve().parent.parent
PHOTO = ROOT / "tests" / "data" / "faces" / "img29.jpg"
GOAL_RATIO = 0.85
BIN = Path(sys.executable).parent
CREATE = "/v2/verification-session"


def _bare_worker(seconds: float, out: multiprocessing.Queue[int]) -> None:
    import cv2  # noqa: PLC0415 - in the pool process only

    from bioverify.engine import LocalEngine  # noqa: PLC0415
    from bioverify.engine.decode import decode_frame  # noqa: PLC0415

    cv2.setNumThreads(1)
    models = LocalEngine().models
    image = decode_frame(PHOTO.read_bytes())
    face = models.detect(image)[0]
    models.embed(image, face)  # warm
    done = 0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        face = models.detect(image)[0]
        models.embed(image, face)
        done += 1
    out.put(done)


def bare_faces_per_s(seconds: float, cores: int) -> float:
    ctx = multiprocessing.get_context("spawn")
    out: multiprocessing.Queue[int] = ctx.Queue()
    procs = [ctx.Process(target=_bare_worker, args=(seconds, out)) for _ in range(cores)]
    for proc in procs:
        proc.start()
    total = sum(out.get(timeout=seconds + 120) for _ in procs)
    for proc in procs:
        proc.join()
    return total / seconds


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


def e2e_flows_per_s(seconds: float, clients: int) -> tuple[float, float]:
    """(VERIFY flows/s, CPU cores the clients of this process used)."""
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
            deadline = time.perf_counter() + seconds

            def client(i: int) -> None:
                with httpx.Client(base_url=base, timeout=60) as http:
                    while time.perf_counter() < deadline:
                        _flow(http, headers, "VERIFY", photo)
                        done[i] += 1

            cpu_before = resource.getrusage(resource.RUSAGE_SELF)
            began = time.perf_counter()
            threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            wall = time.perf_counter() - began
            cpu_after = resource.getrusage(resource.RUSAGE_SELF)
        finally:
            server.terminate()
            server.wait(timeout=60)
    used = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    return sum(done) / wall, used / wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--clients", type=int, default=4, help="concurrent VERIFY flows")
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    print(f"machine: {cores} cpus, load {os.getloadavg()[0]:.2f}")
    bare = bare_faces_per_s(args.seconds, cores)
    print(f"  bare YuNet + SFace, {cores} processes: {bare:7.1f} faces/s")
    flows, client_cores = e2e_flows_per_s(args.seconds, args.clients)
    print(
        f"  VERIFY flows, {args.clients} clients:     {flows:7.1f} flows/s "
        f"(the clients used {client_cores:.2f} of the {cores} cores)"
    )
    print(f"load at the end: {os.getloadavg()[0]:.2f}")
    ratio = flows / bare
    print(
        f"GOAL verify_flows_vs_bare_models {ratio:.3g} >={GOAL_RATIO} "
        f"{'met' if ratio >= GOAL_RATIO else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
