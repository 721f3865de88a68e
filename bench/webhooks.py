"""Webhook delivery: deliveries per second and enqueue -> first attempt latency.

Against a loopback uvicorn receiver in its own process, on SQLite (and PostgreSQL
when reachable). Baseline: raw httpx POSTs per second to the same receiver with
no outbox, signing or bookkeeping. Goals: >= 1,000 deliveries/s; p50 <= 50 ms.

    .venv/bin/python bench/webhooks.py [--count 3000] [--pg URL]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
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

import httpx
from sqlalchemy import Engine, create_engine, func, insert, select, text
from sqlalchemy.orm import Session

from bioverify.storage.base import Base, utcnow
from bioverify.storage.database import make_engine
from bioverify.webhooks import outbox
from bioverify.webhooks.dispatcher import Dispatcher
from bioverify.webhooks.egress import EgressGuard
from bioverify.webhooks.models import TABLES, WebhookDelivery, WebhookMessage, new_message_id
from bioverify.webhooks.outbox import MessageView
from bioverify.webhooks.signing import new_webhook_secret

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


async def baseline(url: str, count: int, concurrency: int, per_pool: int) -> float:
    """Raw httpx POSTs per second at ``concurrency``, pools of ``per_pool``, no outbox."""
    limits = httpx.Limits(max_connections=per_pool, max_keepalive_connections=per_pool)
    body = outbox.encode_payload(PAYLOAD).encode()
    clients = [httpx.AsyncClient(limits=limits) for _ in range(concurrency // per_pool)]
    queue = iter(range(count))

    async def worker(client: httpx.AsyncClient) -> None:
        for _ in queue:
            (await client.post(url, content=body)).raise_for_status()

    started = time.perf_counter()
    await asyncio.gather(*(worker(clients[i % len(clients)]) for i in range(concurrency)))
    rate = count / (time.perf_counter() - started)
    for client in clients:
        await client.aclose()
    return rate


def make_dispatcher(
    engine: Engine,
    concurrency: int,
    poll: float,
    on_delivered: Callable[[MessageView], None] | None = None,
) -> Dispatcher:
    return Dispatcher(
        engine,
        secrets_for=lambda c: [SECRET],
        guard=EgressGuard(allow_private=True),
        concurrency=concurrency,
        per_endpoint_limit=concurrency,
        poll_interval=poll,
        on_delivered=on_delivered,
    )


def bulk_enqueue(engine: Engine, url: str, count: int) -> None:
    now = utcnow()
    body = outbox.encode_payload(PAYLOAD)
    rows = [
        {
            "id": new_message_id(),
            "session_id": f"s{i}",
            "client_id": "c1",
            "kind": "final",
            "payload": body,
            "url": url,
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
    started = time.perf_counter()
    task = asyncio.create_task(dispatcher.run(stop))
    with contextlib.suppress(TimeoutError):  # reported below as "only N delivered"
        await asyncio.wait_for(all_done.wait(), timeout=120)
    elapsed = time.perf_counter() - started
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


async def bench_store(name: str, engine: Engine, url: str, count: int) -> None:
    rate = await throughput(engine, url, count, concurrency=64)
    print(f"{name:10s} outbox deliveries/s: {rate:8.0f}   (goal >= 1000)")
    for wake, poll, label in ((True, 0.25, "in-process wake"), (False, 0.05, "poll 50 ms")):
        p50, p99 = await latency(engine, url, 300, 200.0, wake=wake, poll=poll)
        print(
            f"{name:10s} enqueue->first attempt ({label:15s}): p50 {p50:6.1f} ms   "
            f"p99 {p99:6.1f} ms   (goal p50 <= 50 ms)"
        )


def pg_engine(url: str) -> tuple[Engine, Callable[[], None]] | None:
    schema = "webhooks_bench_" + secrets.token_hex(4)
    admin = create_engine(url, connect_args={"connect_timeout": 3})
    try:
        with admin.begin() as conn:
            conn.execute(text(f"CREATE SCHEMA {schema}"))
    except Exception as exc:  # any failure to reach PostgreSQL skips that part  # noqa: BLE001 - reported, never fatal here
        print(f"postgresql skipped: {type(exc).__name__}")
        return None
    engine = create_engine(
        url, connect_args={"options": f"-csearch_path={schema}"}, pool_size=10, max_overflow=10
    )

    def drop() -> None:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()

    return engine, drop


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=3000)
    parser.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    proc, url = start_receiver()
    try:
        for per_pool in (64, 8):
            raw = await baseline(url, args.count, 64, per_pool)
            print(
                f"baseline   raw httpx POSTs/s:    {raw:8.0f}   (64 in flight, pools of "
                f"{per_pool}, no outbox)"
            )
        with tempfile.TemporaryDirectory() as tmp:
            engine = make_engine(f"sqlite:///{Path(tmp) / 'bench.db'}")
            Base.metadata.create_all(engine, tables=list(TABLES))
            await bench_store("sqlite", engine, url, args.count)
            engine.dispose()
        pg = pg_engine(args.pg)
        if pg is not None:
            engine, drop = pg
            try:
                Base.metadata.create_all(engine, tables=list(TABLES))
                await bench_store("postgresql", engine, url, args.count)
            finally:
                drop()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


if __name__ == "__main__":
    threading.excepthook = lambda a: print(f"thread error: {a.exc_value!r}")
    asyncio.run(main())
