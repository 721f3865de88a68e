"""The real worker (what ``bioverify worker`` runs: ``build_services`` + ``Worker``)
draining a pre-filled outbox to a loopback receiver in its own process (4 ports, so
no claim is deferred for an endpoint's slot cap).

Prints CPU per delivery (this process, and the event loop's thread alone) and the
event loop's lag (how late a 2 ms sleeper wakes): the store work the worker does per
message (secrets, portrait drops) shows up here, not in ``bench/webhooks.py``, whose
dispatcher has constant secrets and no callbacks.

    .venv/bin/python bench/worker_webhooks.py [COUNT] [CLIENTS] [pg]

``pg``: a fresh schema on ``BIOVERIFY_TEST_PG`` (default the test server), dropped after.
Old code for comparison: ``PYTHONPATH=<old checkout>/src`` in front.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import Engine, func, insert, select

from bioverify.accounts import service as accounts
from bioverify.accounts.secretbox import KeyRingSealer
from bioverify.cli._context import migrated_engine
from bioverify.config import Settings
from bioverify.metrics import WEBHOOKS_DELIVERED
from bioverify.storage.base import utcnow
from bioverify.storage.database import transaction
from bioverify.webhooks import outbox
from bioverify.webhooks.models import WebhookMessage, new_message_id
from bioverify.wiring import build_services
from bioverify.worker import Worker

PG = os.environ.get("BIOVERIFY_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
PORTS = 4

RECEIVER = """
import asyncio, sys
from aiohttp import web
async def ok(request):
    await request.read()
    return web.Response(text="ok")
async def main():
    app = web.Application()
    app.router.add_post("/hook", ok)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    for k in range(int(sys.argv[2])):
        await web.TCPSite(runner, "127.0.0.1", int(sys.argv[1]) + k).start()
    await asyncio.Event().wait()
asyncio.run(main())
"""


def rows_for(count: int, client_ids: list[str], urls: list[str]) -> list[dict[str, Any]]:
    now = utcnow()
    body = outbox.encode_payload({"sessionId": "x", "status": "FAILED", "errorCodes": [-7]})
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


def delivered_in(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(
            conn.scalar(
                select(func.count())
                .select_from(WebhookMessage)
                .where(WebhookMessage.status == "delivered")
            )
            or 0
        )


def delivered_count() -> float:
    return float(WEBHOOKS_DELIVERED._value.get())


async def drain(worker: Worker, engine: Engine, rows: list[dict[str, Any]]) -> str:
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    await asyncio.sleep(1.0)  # start-up, idle
    lags: list[float] = []
    done = asyncio.Event()

    async def probe() -> None:
        while not done.is_set():
            t = time.perf_counter()
            await asyncio.sleep(0.002)
            lags.append(time.perf_counter() - t - 0.002)

    base = delivered_count()
    with engine.begin() as conn:
        conn.execute(insert(WebhookMessage), rows)
    prober = asyncio.create_task(probe())
    cpu0, tcpu0, t0 = time.process_time(), time.thread_time(), time.perf_counter()
    assert worker.dispatcher is not None
    worker.dispatcher.wake()
    n = len(rows)
    while delivered_count() - base < n and time.perf_counter() - t0 < 300:  # noqa: ASYNC110 - polls a counter
        await asyncio.sleep(0.005)
    cpu1, tcpu1, t1 = time.process_time(), time.thread_time(), time.perf_counter()
    done.set()
    await prober
    stop.set()
    await task
    lags.sort()

    def q(f: float) -> float:
        return lags[min(len(lags) - 1, int(f * len(lags)))] * 1000

    return (
        f"delivered {delivered_in(engine)}/{n} in {t1 - t0:.2f} s ({n / (t1 - t0):.0f}/s); "
        f"CPU/delivery process {(cpu1 - cpu0) / n * 1e6:.0f} us, "
        f"loop thread {(tcpu1 - tcpu0) / n * 1e6:.0f} us; "
        f"loop lag p50 {q(0.5):.2f} ms p99 {q(0.99):.2f} ms max {lags[-1] * 1000:.1f} ms, "
        f"lag > 5 ms: {sum(1 for x in lags if x > 0.005)} of {len(lags)} probes"
    )


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
    clients = int(sys.argv[2]) if len(sys.argv) > 2 else 4
    schema = "bench_" + secrets.token_hex(4) if sys.argv[3:] == ["pg"] else None
    tmp = Path(tempfile.mkdtemp(prefix="bench-worker-"))
    url = None
    if schema:
        with psycopg.connect(PG, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
        url = PG.replace("postgresql://", "postgresql+psycopg://", 1)
        url += f"?options=-csearch_path%3D{schema}"
    cfg = Settings(
        data_dir=tmp / "data",
        allow_private_callbacks=True,
        **({"database_url": url} if url else {}),
    )
    engine = migrated_engine(cfg)
    services = build_services(cfg, db_engine=engine)
    services.require_ready()
    sealer = KeyRingSealer(services.need_keyring())
    with transaction(services.factory) as db:
        ids = [
            accounts.create_client(db, name=f"c{i}", sealer=sealer)[1].client_id
            for i in range(clients)
        ]
    port = 18000 + PORTS * (os.getpid() % 500)
    receiver = subprocess.Popen([sys.executable, "-c", RECEIVER, str(port), str(PORTS)])
    try:
        time.sleep(1.0)  # the receiver's start-up
        urls = [f"http://127.0.0.1:{port + k}/hook" for k in range(PORTS)]
        print(asyncio.run(drain(Worker(services), engine, rows_for(count, ids, urls))))
    finally:
        receiver.terminate()
        receiver.wait()
        engine.dispose()
        if schema:
            with psycopg.connect(PG, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


if __name__ == "__main__":
    main()
