"""Create-session throughput and latency against a plain FastAPI + SQLAlchemy peer.

The peer (``bench/lib/peer_app.py``, a verbatim copy of the shared baseline) is what a
team would write instead of us: one API-key SELECT and one INSERT in one transaction,
pydantic validation, 201 JSON. ``bioverify`` is started by ``bioverify serve --workers
1`` itself (one process, with its embedded worker, like the one peer process) on a
fresh data directory; both run on the same store kind, one after the other, in the
same run. The load comes from a separate process: an asyncio HTTP/1.1 keep-alive
generator over raw sockets (lighter than any HTTP client library, so the generator
is not the bottleneck it would otherwise be on a 2-core machine; it still takes a
share of the cores, the same for both apps).

Phases per store, each bounded by ``--seconds``:
1. closed loop, ``--connections`` (16) in flight: the peer's maximum rate, then
2. the same against create-session; 1 and 2 alternate for ``--rounds`` (3) rounds;
3. open loop at ``--fraction`` (70 %) of phase 2's rate, paced on a fixed schedule,
   latency counted from each request's *scheduled* time (no coordinated omission).

Run on SQLite and on PostgreSQL (a throwaway schema; skipped with the reason when
the server is unreachable). Ends with one ``GOAL`` line per goal (issue 17):
create-session >= 1.0x the peer; p99 <= 20 ms at 70 % of the maximum rate.

    .venv/bin/python bench/api.py [--seconds 10] [--connections 16] [--pg URL] [--no-pg]
        [--no-sqlite]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import psycopg

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
CREATE_PATH = "/v2/verification-session"
CREATE_BODY = b'{"type":"ENROLL","sessionExpiry":900}'
GOAL_RATIO = 1.0
GOAL_P99_MS = 20.0
BIN = Path(sys.executable).parent
PEER_APP = Path(__file__).resolve().parent / "lib" / "peer_app.py"
PEER_HEADERS = {"x-api-key": "peerkey", "content-type": "application/json"}
PEER_BODY = b'{"type":"ENROLL"}'
GOALS: list[str] = []


def goal(name: str, value: float, target: str, met: bool) -> None:
    GOALS.append(f"GOAL {name} {value:.3g} {target} {'met' if met else 'NOT met'}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ----------------------------------------------------------------- load generator


def build_request(method: str, path: str, headers: dict[str, str], body: bytes) -> bytes:
    lines = [
        f"{method} {path} HTTP/1.1",
        "host: 127.0.0.1",
        "connection: keep-alive",
        f"content-length: {len(body)}",
    ]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> int:
    """Send one request, read one response; return its status."""
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding":
            raise RuntimeError("chunked responses are not supported by this generator")
    if length:
        await reader.readexactly(length)
    return status


@dataclass
class LoadResult:
    requests: int
    errors: int
    seconds: float
    latencies_ms: list[float]

    def summary(self) -> dict[str, float]:
        lat = np.asarray(self.latencies_ms or [float("nan")])
        return {
            "rps": self.requests / self.seconds,
            "errors": float(self.errors),
            "requests": float(self.requests),
            "p50": float(np.percentile(lat, 50)),
            "p95": float(np.percentile(lat, 95)),
            "p99": float(np.percentile(lat, 99)),
        }


async def closed_loop(
    port: int, request: bytes, connections: int, seconds: float, ok: int
) -> LoadResult:
    """``connections`` clients, each sending its next request as soon as one returns."""
    deadline = time.perf_counter() + seconds
    latencies: list[float] = []
    errors = 0

    async def client() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while time.perf_counter() < deadline:
                start = time.perf_counter()
                status = await _exchange(reader, writer, request)
                latencies.append((time.perf_counter() - start) * 1000.0)
                errors += status != ok
        finally:
            writer.close()

    began = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(connections)))
    return LoadResult(len(latencies), errors, time.perf_counter() - began, latencies)


async def open_loop(
    port: int, request: bytes, *, connections: int, seconds: float, rate: float, ok: int
) -> LoadResult:
    """Requests scheduled every 1/rate s; latency counts from the scheduled time."""
    queue: asyncio.Queue[float | None] = asyncio.Queue()
    latencies: list[float] = []
    errors = 0

    async def client() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while (due := await queue.get()) is not None:
                status = await _exchange(reader, writer, request)
                latencies.append((time.perf_counter() - due) * 1000.0)
                errors += status != ok
        finally:
            writer.close()

    workers = [asyncio.create_task(client()) for _ in range(connections)]
    start = time.perf_counter()
    total = int(rate * seconds)
    for i in range(total):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        queue.put_nowait(due)
    for _ in workers:
        queue.put_nowait(None)
    await asyncio.gather(*workers)
    return LoadResult(len(latencies), errors, time.perf_counter() - start, latencies)


def loadgen_main(spec: dict[str, Any]) -> None:
    """Entry point of the load-generating process: prints one JSON summary."""
    with contextlib.suppress(ImportError):
        import uvloop  # noqa: PLC0415 -- optional speed-up of the generator itself

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    request = build_request(spec["method"], spec["path"], spec["headers"], spec["body"].encode())
    if spec["rate"]:
        coro = open_loop(
            spec["port"],
            request,
            connections=spec["connections"],
            seconds=spec["seconds"],
            rate=spec["rate"],
            ok=spec["ok"],
        )
    else:
        coro = closed_loop(spec["port"], request, spec["connections"], spec["seconds"], spec["ok"])
    print(json.dumps(asyncio.run(coro).summary()))


@dataclass(frozen=True)
class Target:
    """One request to repeat, and the status that counts as success."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    ok: int


def run_load(
    port: int, target: Target, *, connections: int, seconds: float, rate: float = 0.0
) -> dict[str, float]:
    """Run one phase in a separate load-generator process."""
    spec = {
        "port": port,
        "method": target.method,
        "path": target.path,
        "headers": target.headers,
        "body": target.body.decode(),
        "ok": target.ok,
        "connections": connections,
        "seconds": seconds,
        "rate": rate,
    }
    out = subprocess.run(
        [sys.executable, __file__, "--loadgen", json.dumps(spec)],
        capture_output=True,
        text=True,
        timeout=seconds * 4 + 60,
        check=False,
    )
    if out.returncode != 0:
        raise SystemExit(f"load generator failed: {out.stderr.strip()[-2000:]}")
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


# ----------------------------------------------------------------- servers


def wait_listening(port: int, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited early with status {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.1)
    raise SystemExit(f"server on port {port} did not start in {timeout:.0f} s")


@contextlib.contextmanager
def process(
    args: list[str],
    port: int,
    env: dict[str, str] | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    """A server process in its own process group, killed (group) on exit."""
    proc = subprocess.Popen(
        args, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_listening(port, proc)
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def service_env(data_dir: Path, database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BIOVERIFY_")}
    env.update(
        BIOVERIFY_DATA_DIR=str(data_dir),
        BIOVERIFY_LOG_LEVEL="warning",
        BIOVERIFY_ENGINE_WORKERS="0",
    )  # no model pool: create-session needs none
    if database_url:
        env["BIOVERIFY_DATABASE_URL"] = database_url
    return env


def create_client(env: dict[str, str]) -> dict[str, str]:
    out = subprocess.run(
        [str(BIN / "bioverify"), "clients", "create", "--name", "bench", "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    issued = json.loads(out.stdout)
    return {
        "x_api_key": issued["apiKey"],
        "clientID": issued["clientId"],
        "clientSecret": issued["clientSecret"],
        "content-type": "application/json",
    }


# ----------------------------------------------------------------- phases


def pg_schema_url(admin_url: str) -> tuple[str, str] | str:
    """(url with a throwaway search_path, schema), or the reason PostgreSQL is unusable."""
    plain = admin_url.replace("postgresql+psycopg://", "postgresql://", 1)
    schema = "bench_" + secrets.token_hex(5)
    try:
        with psycopg.connect(plain, connect_timeout=3, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
    except psycopg.Error as exc:
        return f"PostgreSQL at {admin_url} is not reachable: {str(exc).splitlines()[0]}"
    return f"{admin_url}?options=-csearch_path%3D{schema}", schema


def drop_pg_schema(admin_url: str, schema: str) -> None:
    plain = admin_url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def merged(rows: list[dict[str, float]]) -> dict[str, float]:
    """Rounds of one phase as one: total requests over total time; worst percentiles."""
    seconds = sum(r["requests"] / r["rps"] for r in rows)
    total = sum(r["requests"] for r in rows)
    out = {k: max(r[k] for r in rows) for k in ("p50", "p95", "p99")}
    out.update(rps=total / seconds, requests=total, errors=sum(r["errors"] for r in rows))
    return out


def _line(name: str, row: dict[str, float]) -> str:
    return (
        f"  {name:<34} {row['rps']:8.0f} req/s   p50 {row['p50']:6.1f} ms   "
        f"p95 {row['p95']:6.1f} ms   p99 {row['p99']:6.1f} ms   "
        f"errors {int(row['errors'])}/{int(row['requests'])}"
    )


def bench_backend(
    label: str, database_url: str, peer_url: str, args: argparse.Namespace
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bv-bench-api-") as tmp:
        env = service_env(Path(tmp) / "data", database_url)
        subprocess.run(
            [str(BIN / "bioverify"), "migrate"],
            env=env,
            check=True,
            capture_output=True,
            timeout=120,
        )
        headers = create_client(env)
        conns, secs = args.connections, args.seconds
        peer_port, api_port = free_port(), free_port()
        peer_db = peer_url or f"sqlite:///{Path(tmp) / 'peer.sqlite3'}"
        peer_target = Target("POST", CREATE_PATH, PEER_HEADERS, PEER_BODY, 201)
        create = Target("POST", CREATE_PATH, headers, CREATE_BODY, 201)
        serve = [
            *[str(BIN / "bioverify"), "serve", "--workers", "1"],
            *["--host", "127.0.0.1", "--port", str(api_port)],
        ]
        with (
            process([sys.executable, str(PEER_APP), str(peer_port), peer_db], peer_port),
            process(serve, api_port, env),
        ):
            run_load(peer_port, peer_target, connections=4, seconds=1)  # warm-up
            run_load(api_port, create, connections=4, seconds=1)
            # Alternate the two in short rounds: on a shared machine the load of the
            # neighbours drifts, and interleaving spreads it over both alike.
            peers, ours = [], []
            for _ in range(args.rounds):
                peers.append(run_load(peer_port, peer_target, connections=conns, seconds=secs))
                ours.append(run_load(api_port, create, connections=conns, seconds=secs))
            peer, peak = merged(peers), merged(ours)
            paced = run_load(
                api_port, create, connections=conns, seconds=secs, rate=peak["rps"] * args.fraction
            )
    ratio = peak["rps"] / peer["rps"]
    print(f"{label}:")
    print(_line("peer app create, closed loop", peer))
    print(_line("create-session, closed loop", peak))
    print(
        _line(f"create-session @ {args.fraction:.0%} of max", paced)
        + f"   (target {peak['rps'] * args.fraction:.0f} req/s)"
    )
    store = label.lower()
    goal(f"create_vs_peer_{store}", ratio, f">={GOAL_RATIO}", ratio >= GOAL_RATIO)
    goal(
        f"create_p99_ms_at_{args.fraction:.0%}_{store}".replace("%", "pct"),
        paced["p99"],
        f"<={GOAL_P99_MS:g}",
        paced["p99"] <= GOAL_P99_MS and paced["errors"] == 0,
    )
    return {"peer": peer, "create": peak, "paced": paced, "ratio": ratio}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each phase")
    parser.add_argument("--rounds", type=int, default=3, help="alternating peer/ours rounds")
    parser.add_argument("--connections", type=int, default=16, help="concurrent connections")
    parser.add_argument("--fraction", type=float, default=0.7, help="open-loop share of max")
    parser.add_argument("--pg", default=PG_URL, help="PostgreSQL URL (admin; a schema is made)")
    parser.add_argument("--no-pg", action="store_true", help="SQLite only")
    parser.add_argument("--no-sqlite", action="store_true", help="PostgreSQL only")
    parser.add_argument("--loadgen", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.loadgen:
        loadgen_main(json.loads(args.loadgen))
        return
    print(
        f"machine: {os.cpu_count()} cpus, load {os.getloadavg()[0]:.2f}; "
        f"{args.connections} connections, {args.rounds} rounds of {args.seconds:.0f} s per app"
    )
    print(
        f"goals: create-session >= {GOAL_RATIO}x the peer app; p99 <= {GOAL_P99_MS:.0f} ms "
        f"at {args.fraction:.0%} of max"
    )
    if not args.no_sqlite:
        bench_backend("SQLite", "", "", args)
    if not args.no_pg:
        made = pg_schema_url(args.pg)
        if isinstance(made, str):
            print(f"PostgreSQL: skipped ({made})")
        else:
            url, schema = made
            try:
                # The peer's own tables (peer_clients, peer_sessions) in the same schema.
                bench_backend("PostgreSQL", url, url, args)
            finally:
                drop_pg_schema(args.pg, schema)
    print(f"load at the end: {os.getloadavg()[0]:.2f}")
    print("\n".join(GOALS))


if __name__ == "__main__":
    main()
