"""Webhook delivery: deliveries per second against the fastest raw HTTP client, one vs
two worker processes, and enqueue -> first attempt latency.

Against a loopback uvicorn receiver in its own process, on SQLite and PostgreSQL.
Baselines, measured in the same run: the HTTP clients installed (aiohttp, the
dispatcher's client; httpx async and sync in threads; urllib3 in threads) POSTing the
same signed bodies and headers to the same receiver, 64 in flight (threads: 16), with
no outbox; the fastest counts. Ends with GOAL lines:

- ``deliveries_vs_fastest_raw_{sqlite,postgresql}`` >= 0.8 (outbox drained by one
  in-process dispatcher / the fastest raw client's POSTs per second);
- ``deliveries_2_vs_1_workers_postgresql`` > 1 (two worker processes draining one
  PostgreSQL outbox / one process, rounds alternated).

    .venv/bin/python bench/webhooks.py [--count 3000] [--pg URL] [--no-latency]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import httpx
from sqlalchemy import Engine, create_engine, func, insert, select, text
from sqlalchemy.orm import Session

from bioverify.storage.base import Base, utcnow
from bioverify.storage.database import make_engine
from bioverify.webhooks import outbox
from bioverify.webhooks.dispatcher import Dispatcher, DispatcherConfig, request_headers
from bioverify.webhooks.egress import EgressGuard
from bioverify.webhooks.models import TABLES, WebhookDelivery, WebhookMessage, new_message_id
from bioverify.webhooks.outbox import MessageView
from bioverify.webhooks.signing import new_webhook_secret, sign

RECEIVER = """
import uvicorn
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"ok"})
uvicorn.run(app, host="127.0.0.1", port=int(__import__("sys").argv[1]), log_level="warning",
            access_log=False, loop="uvloop", http="httptools")
"""
SECRET = new_webhook_secret()
PAYLOAD = {
    "sessionId": "x" * 36,
    "type": "VERIFY",
    "status": "SUCCESS",
    "errorCodes": [],
    "result": {"matchScore": 0.91, "threshold": 0.62},
    "timestamp": "1743795933839",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_receiver() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", RECEIVER, str(port)])
    for _ in range(100):
        try:
            httpx.post(f"http://127.0.0.1:{port}/", content=b"{}", timeout=1)
            return proc, f"http://127.0.0.1:{port}/hook"
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("receiver did not start")


Signed = list[tuple[bytes, dict[str, str]]]


def signed_requests(count: int) -> Signed:
    """What the dispatcher sends for ``count`` messages: body and headers, signed."""
    body = outbox.encode_payload(PAYLOAD).encode()
    now = int(time.time())
    out: Signed = []
    for _ in range(count):
        msg_id = new_message_id()
        signature = sign(msg_id, now, body, secrets=[SECRET])
        out.append((body, request_headers(msg_id, now, signature, 1, {})))
    return out


async def raw_httpx_async(url: str, reqs: Signed, concurrency: int, per_pool: int) -> float:
    """httpx.AsyncClient POSTs per second, ``concurrency`` in flight, pools of ``per_pool``."""
    limits = httpx.Limits(max_connections=per_pool, max_keepalive_connections=per_pool)
    clients = [httpx.AsyncClient(limits=limits) for _ in range(concurrency // per_pool)]
    queue = iter(reqs)

    async def worker(client: httpx.AsyncClient) -> None:
        for body, headers in queue:
            (await client.post(url, content=body, headers=headers)).raise_for_status()

    started = time.perf_counter()
    await asyncio.gather(*(worker(clients[i % len(clients)]) for i in range(concurrency)))
    rate = len(reqs) / (time.perf_counter() - started)
    for client in clients:
        await client.aclose()
    return rate


#: CPU microseconds per request of this process (all its threads), by what ran: the
#: steadier figure when other jobs share the machine (throughput swings with their load).
CPU_US: dict[str, float] = {}


async def raw_aiohttp(url: str, reqs: Signed, concurrency: int) -> float:
    """aiohttp POSTs per second, one session, ``concurrency`` in flight."""
    queue = iter(reqs)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            for body, headers in queue:
                async with session.post(url, data=body, headers=headers) as resp:
                    resp.raise_for_status()
                    await resp.read()

        started, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        CPU_US["raw aiohttp"] = (time.process_time() - cpu) / len(reqs) * 1e6
        return len(reqs) / (time.perf_counter() - started)


def raw_threads(
    make_post: Callable[[], Callable[[bytes, dict[str, str]], None]], reqs: Signed, threads: int
) -> float:
    """POSTs per second of a blocking client, one client per thread."""
    queue = iter(reqs)  # next() on a list iterator is atomic under the GIL
    errors: list[BaseException] = []

    def worker() -> None:
        post = make_post()
        try:
            for body, headers in queue:
                post(body, headers)
        except BaseException as exc:  # reported below  # noqa: BLE001
            errors.append(exc)

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    started = time.perf_counter()
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    if errors:
        raise SystemExit(f"raw client failed: {errors[0]!r}")
    return len(reqs) / (time.perf_counter() - started)


def httpx_sync_post(url: str) -> Callable[[], Callable[[bytes, dict[str, str]], None]]:
    def make() -> Callable[[bytes, dict[str, str]], None]:
        client = httpx.Client()

        def post(body: bytes, headers: dict[str, str]) -> None:
            client.post(url, content=body, headers=headers).raise_for_status()

        return post

    return make


def urllib3_post(url: str) -> Callable[[], Callable[[bytes, dict[str, str]], None]] | None:
    try:
        import urllib3  # noqa: PLC0415 - installed with the dev tools, not a dependency
    except ImportError:
        return None

    def make() -> Callable[[bytes, dict[str, str]], None]:
        pool = urllib3.PoolManager(maxsize=1)

        def post(body: bytes, headers: dict[str, str]) -> None:
            resp = pool.request("POST", url, body=body, headers=headers, redirect=False)
            if resp.status != 200:
                raise RuntimeError(f"receiver answered {resp.status}")

        return post

    return make


async def fastest_raw(url: str, count: int) -> tuple[str, float]:
    """Every installed raw client, 64 in flight (threads: 16), the same signed requests;
    prints each and returns the fastest."""
    reqs = signed_requests(count)
    rates: dict[str, float] = {
        "httpx async, 1 pool of 64": await raw_httpx_async(url, reqs, 64, 64),
        "httpx async, 8 pools of 8": await raw_httpx_async(url, reqs, 64, 8),
        "httpx async, 32 pools of 2": await raw_httpx_async(url, reqs, 64, 2),
        "httpx sync, 16 threads": await asyncio.to_thread(
            raw_threads, httpx_sync_post(url), reqs, 16
        ),
    }
    with_urllib3 = urllib3_post(url)
    if with_urllib3 is not None:
        rates["urllib3, 16 threads"] = await asyncio.to_thread(raw_threads, with_urllib3, reqs, 16)
    rates["aiohttp, 64 in flight"] = await raw_aiohttp(url, reqs, 64)
    for name, rate in rates.items():
        print(f"raw        {name:28s} POSTs/s: {rate:8.0f}")
    best = max(rates, key=rates.__getitem__)
    return best, rates[best]


def make_dispatcher(
    engine: Engine,
    concurrency: int,
    poll: float,
    on_delivered: Callable[[MessageView], None] | None = None,
) -> Dispatcher:
    return Dispatcher(
        engine,
        DispatcherConfig(
            secrets_for=lambda c: [SECRET],
            guard=EgressGuard(allow_private=True),
            concurrency=concurrency,
            per_endpoint_limit=concurrency,
            poll_interval=poll,
            on_delivered=on_delivered,
        ),
    )


def outbox_rows(
    count: int, client_ids: list[str], urls: list[str], body: str
) -> list[dict[str, Any]]:
    """``count`` final webhooks due now, spread over ``client_ids`` and ``urls``."""
    now = utcnow()
    return [
        {
            "id": new_message_id(),
            "session_id": f"{i:036d}",
            "client_id": client_ids[i % len(client_ids)],
            "kind": "final",
            "payload": body,
            "url": urls[i % len(urls)],
            "headers": "{}",
            "created_at": now,
            "next_attempt_at": now,
            "attempts": 0,
            "schedule_base": 0,
            "status": "pending",
            "sequence": 1,
        }
        for i in range(count)
    ]


def bulk_enqueue(engine: Engine, url: str, count: int) -> None:
    rows = outbox_rows(count, ["c1"], [url], outbox.encode_payload(PAYLOAD))
    with engine.begin() as conn:
        conn.execute(insert(WebhookMessage), rows)


def delivered(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(
            conn.scalar(
                select(func.count())
                .select_from(WebhookMessage)
                .where(WebhookMessage.status == "delivered")
            )
            or 0
        )


async def throughput(engine: Engine, url: str, count: int, concurrency: int) -> float:
    """Deliveries per second draining a pre-filled outbox."""
    bulk_enqueue(engine, url, count)
    all_done = asyncio.Event()
    seen: list[str] = []

    def count_one(view: MessageView) -> None:
        seen.append(view.id)
        if len(seen) >= count:
            all_done.set()

    dispatcher = make_dispatcher(engine, concurrency, poll=0.01, on_delivered=count_one)
    stop = asyncio.Event()
    started, cpu = time.perf_counter(), time.process_time()
    task = asyncio.create_task(dispatcher.run(stop))
    with contextlib.suppress(TimeoutError):  # reported below as "only N delivered"
        await asyncio.wait_for(all_done.wait(), timeout=120)
    elapsed = time.perf_counter() - started
    CPU_US["dispatcher"] = (time.process_time() - cpu) / count * 1e6
    stop.set()
    await task
    if delivered(engine) < count:
        raise SystemExit(f"only {delivered(engine)} of {count} delivered in 120 s")
    return count / elapsed


async def latency(
    engine: Engine, url: str, count: int, rate: float, *, wake: bool, poll: float
) -> tuple[float, float]:
    """Enqueue one message per transaction at ``rate``/s; p50, p99 of enqueue -> attempt."""
    dispatcher = make_dispatcher(engine, 64, poll=poll)
    session_ids = [f"lat-{secrets.token_hex(4)}-{i}" for i in range(count)]

    def producer() -> None:
        for sid in session_ids:
            with Session(engine) as db:
                outbox.enqueue(
                    db, session_id=sid, client_id="c1", url=url, headers={}, payload=PAYLOAD
                )
                db.commit()
            if wake:
                dispatcher.wake()
            time.sleep(1 / rate)

    stop = asyncio.Event()
    task = asyncio.create_task(dispatcher.run(stop))
    await asyncio.sleep(0.05)
    await asyncio.to_thread(producer)
    await asyncio.sleep(0.5)
    stop.set()
    await task
    with Session(engine) as db:
        rows = db.execute(
            select(WebhookDelivery.at, WebhookMessage.created_at)
            .join(WebhookMessage, WebhookMessage.id == WebhookDelivery.message_id)
            .where(WebhookMessage.session_id.in_(session_ids), WebhookDelivery.attempt == 1)
        ).all()
    if len(rows) < count:
        raise SystemExit(f"latency run: only {len(rows)} of {count} attempted")
    ms = sorted((at - created).total_seconds() * 1000 for at, created in rows)
    return statistics.median(ms), ms[int(len(ms) * 0.99) - 1]


async def bench_store(
    name: str, engine: Engine, url: str, count: int, *, with_latency: bool
) -> float:
    """The in-process dispatcher's deliveries/s on this store (and its latencies)."""
    rate = await throughput(engine, url, count, concurrency=64)
    print(f"{name:10s} outbox deliveries/s (1 dispatcher, 64 in flight): {rate:8.0f}")
    mine, raw = CPU_US["dispatcher"], CPU_US["raw aiohttp"]
    print(
        f"{name:10s} CPU per delivery {mine:5.0f} us, per raw aiohttp POST {raw:5.0f} us "
        f"({mine / raw:.2f}x; this process, every thread)"
    )
    if with_latency:
        for wake, poll, label in ((True, 0.25, "in-process wake"), (False, 0.05, "poll 50 ms")):
            p50, p99 = await latency(engine, url, 300, 200.0, wake=wake, poll=poll)
            print(
                f"{name:10s} enqueue->first attempt ({label:15s}): p50 {p50:6.1f} ms   "
                f"p99 {p99:6.1f} ms   (goal p50 <= 50 ms)"
            )
    return rate


def pg_engine(url: str) -> tuple[Engine, str, Callable[[], None]] | None:
    schema = "webhooks_bench_" + secrets.token_hex(4)
    admin = create_engine(url, connect_args={"connect_timeout": 3})
    try:
        with admin.begin() as conn:
            conn.execute(text(f"CREATE SCHEMA {schema}"))
    except Exception as exc:  # any failure to reach PostgreSQL skips that part  # noqa: BLE001 - reported, never fatal here
        print(f"postgresql skipped: {type(exc).__name__}")
        return None
    engine = schema_engine(url, schema)

    def drop() -> None:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()

    return engine, schema, drop


def schema_engine(url: str, schema: str) -> Engine:
    return create_engine(
        url, connect_args={"options": f"-csearch_path={schema}"}, pool_size=10, max_overflow=10
    )


# ---------------------------------------------------------------- worker processes


async def drain_worker(url: str, schema: str) -> None:
    """One worker process (``--drain-worker``): a dispatcher on the schema's outbox,
    started by a line on stdin and stopped when stdin closes."""
    engine = schema_engine(url, schema)
    loop = asyncio.get_running_loop()
    go, stop = asyncio.Event(), asyncio.Event()

    def control() -> None:
        sys.stdin.readline()
        loop.call_soon_threadsafe(go.set)
        sys.stdin.read()
        loop.call_soon_threadsafe(stop.set)

    threading.Thread(target=control, daemon=True).start()
    dispatcher = make_dispatcher(engine, 64, poll=0.01)
    print("ready", flush=True)
    await go.wait()
    await dispatcher.run(stop)
    engine.dispose()


def processes_rate(
    engine: Engine, pg_url: str, schema: str, url: str, count: int, *, n: int
) -> float:
    """Deliveries/s of ``n`` worker processes draining ``count`` pre-filled messages
    (timed from "go", after every process has started and connected)."""
    with engine.begin() as conn:
        conn.execute(WebhookDelivery.__table__.delete())
        conn.execute(WebhookMessage.__table__.delete())
    bulk_enqueue(engine, url, count)
    cmd = [sys.executable, __file__, "--drain-worker", "--pg", pg_url, "--schema", schema]
    procs = [
        subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        for _ in range(n)
    ]
    try:
        for proc in procs:
            assert proc.stdout is not None
            if proc.stdout.readline().strip() != "ready":
                raise SystemExit("a worker process did not start")
        started = time.perf_counter()
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        cpu_before = sum(cpu_seconds(proc.pid) for proc in procs)
        idle_before = idle_seconds()
        deadline = started + 120
        while delivered(engine) < count:
            if time.perf_counter() > deadline:
                raise SystemExit(f"{n} workers: only {delivered(engine)} of {count} in 120 s")
            time.sleep(0.02)  # polling another process's progress
        elapsed = time.perf_counter() - started
        cpu = sum(cpu_seconds(proc.pid) for proc in procs) - cpu_before
        idle = (idle_seconds() - idle_before) / elapsed
        print(
            f"postgresql {n} worker process(es): {count / elapsed:8.0f} deliveries/s, "
            f"{cpu / elapsed:.2f} cores busy in the workers ({cpu / count * 1000:.2f} ms CPU "
            f"each), {idle:.2f} of {os.cpu_count()} cores idle machine-wide"
        )
        return count / elapsed
    finally:
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.close()
        for proc in procs:
            proc.wait(timeout=30)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def idle_seconds() -> float:
    """Seconds all cores together spent idle so far (Linux /proc/stat)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()
    return (int(fields[4]) + int(fields[5])) / os.sysconf("SC_CLK_TCK")


def two_vs_one(engine: Engine, pg_url: str, schema: str, url: str, count: int) -> float:
    """Rounds alternate (1, 2, 1, 2) so a shared machine's drifting load falls on both."""
    rates: dict[int, list[float]] = {1: [], 2: []}
    for n in (1, 2, 1, 2):
        rates[n].append(processes_rate(engine, pg_url, schema, url, count, n=n))
    one, two = statistics.mean(rates[1]), statistics.mean(rates[2])
    print(f"postgresql mean: 1 process {one:.0f}/s, 2 processes {two:.0f}/s")
    return two / one


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


def goal(name: str, value: float, target: str, met: bool) -> str:
    return f"GOAL {name} {value:.3g} {target} {'met' if met else 'NOT met'}"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=3000)
    parser.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--no-latency", action="store_true", help="skip the latency runs")
    parser.add_argument("--drain-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--schema", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.drain_worker:
        await drain_worker(args.pg, args.schema)
        return
    print(f"load before: {uptime()}")
    goals: list[str] = []
    proc, url = start_receiver()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            engine = make_engine(f"sqlite:///{Path(tmp) / 'bench.db'}")
            Base.metadata.create_all(engine, tables=list(TABLES))
            best, raw = await fastest_raw(url, args.count)
            ours = await bench_store(
                "sqlite", engine, url, args.count, with_latency=not args.no_latency
            )
            engine.dispose()
        ratio = ours / raw
        print(f"sqlite     {ours:.0f}/s vs fastest raw ({best}) {raw:.0f}/s")
        goals.append(goal("deliveries_vs_fastest_raw_sqlite", ratio, ">=0.8", ratio >= 0.8))
        pg = pg_engine(args.pg)
        if pg is None:
            goals.append("GOAL deliveries_vs_fastest_raw_postgresql skipped NOT met")
        else:
            engine, schema, drop = pg
            try:
                Base.metadata.create_all(engine, tables=list(TABLES))
                best, raw = await fastest_raw(url, args.count)
                ours = await bench_store(
                    "postgresql", engine, url, args.count, with_latency=not args.no_latency
                )
                ratio = ours / raw
                print(f"postgresql {ours:.0f}/s vs fastest raw ({best}) {raw:.0f}/s")
                goals.append(
                    goal("deliveries_vs_fastest_raw_postgresql", ratio, ">=0.8", ratio >= 0.8)
                )
                scale = await asyncio.to_thread(
                    two_vs_one, engine, args.pg, schema, url, args.count * 2
                )
                goals.append(goal("deliveries_2_vs_1_workers_postgresql", scale, ">1", scale > 1))
            finally:
                drop()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    print(f"load after: {uptime()}")
    for line in goals:
        print(line)


if __name__ == "__main__":
    threading.excepthook = lambda a: print(f"thread error: {a.exc_value!r}")
    asyncio.run(main())
