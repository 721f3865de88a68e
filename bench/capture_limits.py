"""Capture amplification (security review item 2): memory of the engine worker and
another tenant's capture latency while one tenant floods the engine.

One in-process ``create_app`` served by uvicorn on 127.0.0.1, a real engine with one
worker process (``BIOVERIFY_ENGINE_WORKERS=1``), SQLite in a temporary data dir.

Measured, in this run:
- the engine worker's peak RSS (``VmHWM``, reset through ``/proc/PID/clear_refs``)
  for one normal capture (baseline), for the review's worst case (24 grey 40 MP
  PNGs, now refused before decoding) and for the largest capture still allowed;
- tenant B's capture latency alone, tenant A's largest-allowed capture alone, and
  B's latency while A has three of those in flight.

Goals: worst-case peak <= 1.5x a normal capture's peak; B under A's flood <= 1.5x
(B alone + one A capture), i.e. B waits for at most the analysis already running.

    .venv/bin/python bench/capture_limits.py
"""

from __future__ import annotations

import asyncio
import base64
import re
import socket
import struct
import tempfile
import threading
import time
import zlib
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from bioverify.accounts import service as accounts
from bioverify.accounts.secretbox import KeyRingSealer
from bioverify.api.app import create_app
from bioverify.capture.envelope import fresh_nonce, seal
from bioverify.config import Settings
from bioverify.crypto.keyring import KeyRing
from bioverify.engine.samples import fetch
from bioverify.storage.database import make_engine, session_factory, transaction
from bioverify.storage.migrate import upgrade

CREATE = "/v2/verification-session"
MB = 1024 * 1024


def grey_png(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    packer = zlib.compressobj(9)
    row = b"\x00" + b"\x80" * width
    idat = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )


def peak_rss(pid: int) -> int:
    text = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+) kB", text).group(1)) * 1024  # type: ignore[union-attr]


def reset_peak(pid: int) -> None:
    Path(f"/proc/{pid}/clear_refs").write_text("5")


class Server:
    def __init__(self, app: Any) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        config = uvicorn.Config(app, log_config=None, access_log=False, proxy_headers=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    def __enter__(self) -> Server:
        self.thread.start()
        while not self.server.started:
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=60)


def capture(url: str, creds: dict[str, str], frames: list[bytes]) -> tuple[int, float]:
    """Open a passive/active session for ``creds``, send ``frames``: (status, seconds)."""
    with httpx.Client(base_url=url, timeout=300) as http:
        liveness = "active" if len(frames) > 5 else "passive"
        made = http.post(
            CREATE, json={"type": "ENROLL", "liveness": liveness}, headers=creds
        ).json()
        token = made["launchUrl"].rsplit("/", 1)[1]
        loaded = http.get(f"{CREATE}/{token}").json()
        key = http.get("/public-key").json()
        plain: dict[str, Any] = {
            "nonce": fresh_nonce(),
            "timestamp": int(time.time()),
            "frames": [base64.b64encode(f).decode() for f in frames],
        }
        if liveness == "active":
            plain["challengeId"] = loaded["challenge"]["id"]
            plain["frameTimes"] = [i * 100.0 for i in range(len(frames))]
        body = seal(
            plain,
            public_key_pem=key["publicKey"],
            kid=key["kid"],
            session_id=made["sessionId"],
            route="capture",
        )
        started = time.perf_counter()
        answer = http.post(f"{CREATE}/{token}/capture", json=body)
        return answer.status_code, time.perf_counter() - started


def goal(name: str, value: float, target: float) -> None:
    verdict = "met" if value <= target else "NOT met"
    print(f"GOAL {name} {value:.3f} <={target} {verdict}")


def main() -> None:
    face = (fetch("skimage") / "astronaut.png").read_bytes()
    worst = [grey_png(6325, 6324)] * 24
    largest = [grey_png(1920, 1080)] * 24
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        data.mkdir(mode=0o700)
        url = f"sqlite:///{data / 'bioverify.sqlite3'}"
        db = make_engine(url)
        upgrade(db)
        ring = KeyRing.load_or_create(data / "keys")
        tenants = []
        for name in ("tenant-a", "tenant-b"):
            with transaction(session_factory(db)) as session:
                _, issued = accounts.create_client(session, name=name, sealer=KeyRingSealer(ring))
            tenants.append(
                {
                    "x_api_key": issued.api_key,
                    "clientID": issued.client_id,
                    "clientSecret": issued.client_secret or "",
                }
            )
        a, b = tenants
        settings = Settings(
            data_dir=data, database_url=url, engine_workers=1, max_body_bytes=16 * MB
        )
        app = create_app(settings, db_engine=db, keyring=ring)
        engine = app.state.services.engine
        with Server(app) as server:
            asyncio.run(engine.warm_up())
            worker = next(iter(engine._executor._processes.values())).pid
            capture(server.url, b, [face])  # first-use costs out of the way

            reset_peak(worker)
            status, _ = capture(server.url, b, [face])
            normal_peak = peak_rss(worker)
            print(f"normal capture: HTTP {status}, worker peak RSS {normal_peak / MB:.0f} MB")

            reset_peak(worker)
            status, seconds = capture(server.url, a, worst)
            worst_peak = peak_rss(worker)
            print(
                f"worst case (24 x 40 MP): HTTP {status} in {seconds:.2f} s, "
                f"worker peak RSS {worst_peak / MB:.0f} MB"
            )

            reset_peak(worker)
            status, a_alone = capture(server.url, a, largest)
            largest_peak = peak_rss(worker)
            print(
                f"largest allowed (24 x 1080p): HTTP {status} in {a_alone:.2f} s, "
                f"worker peak RSS {largest_peak / MB:.0f} MB"
            )

            _, b_alone = capture(server.url, b, [face])
            print(f"tenant B alone: {b_alone:.3f} s")

            flood = [
                threading.Thread(target=capture, args=(server.url, a, largest)) for _ in range(3)
            ]
            for thread in flood:
                thread.start()
            time.sleep(1.0)  # let tenant A's captures reach the engine first
            _, b_loaded = capture(server.url, b, [face])
            for thread in flood:
                thread.join()
            print(f"tenant B while tenant A has 3 large captures in flight: {b_loaded:.3f} s")
        goal("worst_case_worker_peak_vs_normal", worst_peak / normal_peak, 1.5)
        goal("other_tenant_latency_vs_one_capture_ahead", b_loaded / (b_alone + a_alone), 1.5)


if __name__ == "__main__":
    main()
