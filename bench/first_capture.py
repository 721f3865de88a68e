"""The first capture after ``bioverify serve`` starts, against warm ones.

Starts ``bioverify serve`` (a fresh data directory, SQLite, the default engine pool)
as a process, waits until ``/readyz`` answers ready, then times capture requests
(ENROLL, passive liveness, one real photo from tests/data/faces, through the
capture SDK): the first one, then ``--warm`` more. The in-run baseline is the median
warm capture. Goal (issue 13): the first capture within 2x of a warm one, because
``serve`` loads and runs the models in every engine process before it is ready.

    .venv/bin/python bench/first_capture.py [--warm 10]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bioverify.capture.sdk import CaptureSession

ROOT = Path(__file__).resolve().parent.parent
PHOTO = ROOT / "tests" / "data" / "faces" / "img29.jpg"
GOAL_RATIO = 2.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _cli() -> str:
    return str(Path(sys.executable).with_name("bioverify"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warm", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            **os.environ,
            "BIOVERIFY_DATA_DIR": str(Path(tmp) / "data"),
            "BIOVERIFY_LOG_LEVEL": "warning",
        }
        env.pop("BIOVERIFY_DATABASE_URL", None)
        made = subprocess.run(
            [_cli(), "clients", "create", "--name", "bench", "--json"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        creds = json.loads(made.stdout)
        port = _free_port()
        base = f"http://127.0.0.1:{port}"
        started = time.perf_counter()
        server = subprocess.Popen(
            [_cli(), "serve", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            ready_s = _wait_ready(base, started)
            print(f"serve: ready after {ready_s:.2f} s (models loaded and run in each process)")
            headers = {
                "x_api_key": creds["apiKey"],
                "clientID": creds["clientId"],
                "clientSecret": creds["clientSecret"],
            }
            timings = [_one_capture(base, headers, i) for i in range(args.warm + 1)]
        finally:
            server.terminate()
            server.wait(timeout=30)
    first, warm = timings[0], timings[1:]
    median = statistics.median(warm)
    ratio = first / median
    print(
        f"first capture {first * 1000:.0f} ms; warm median {median * 1000:.0f} ms "
        f"(min {min(warm) * 1000:.0f}, max {max(warm) * 1000:.0f}, n={len(warm)})"
    )
    print(
        f"GOAL first_capture_vs_warm {ratio:.2f} {GOAL_RATIO} "
        f"{'met' if ratio <= GOAL_RATIO else 'NOT met'}"
    )


def _wait_ready(base: str, started: float, limit_s: float = 180.0) -> float:
    with httpx.Client(timeout=5) as http:
        while time.perf_counter() - started < limit_s:
            try:
                if http.get(f"{base}/readyz").status_code == 200:
                    return time.perf_counter() - started
            except httpx.TransportError:
                pass
            time.sleep(0.1)
    raise SystemExit(f"bioverify serve was not ready within {limit_s:.0f} s")


def _one_capture(base: str, headers: dict[str, str], index: int) -> float:
    """Seconds for one capture request (session creation and load not counted)."""
    with httpx.Client(base_url=base, timeout=60) as http:
        response = http.post(
            "/v2/verification-session",
            json={"type": "ENROLL", "customerId": f"bench-{index}", "liveness": "passive"},
            headers=headers,
        )
        response.raise_for_status()
        launch = response.json()["launchUrl"]
    with CaptureSession.from_launch_url(launch) as capture:
        began = time.perf_counter()
        outcome = capture.submit([PHOTO])
        elapsed = time.perf_counter() - began
    if outcome.status != "SUCCESS":
        raise SystemExit(f"capture {index} did not succeed: {outcome}")
    return elapsed


if __name__ == "__main__":
    main()
