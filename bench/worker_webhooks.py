"""The real worker draining a filled outbox, against a bare dispatcher on the same store.

The worker is what ``bioverify worker`` runs (``build_services`` + ``Worker``): per
claimed batch it reads the clients' webhook secrets (one SELECT, unsealed), runs the
payload completer, signs with the HMAC secrets and the Ed25519 key, and after each
delivery commit drops kept portraits (one UPDATE) and counts the metric. None of that
shows in ``bench/webhooks.py``, whose dispatcher has constant secrets and no callbacks.

Baseline, measured in the same run on the same store: the bare ``Dispatcher`` as
``bench/webhooks.py`` builds it (one constant secret, no payload completion, no
``on_recorded`` work; its only callback counts deliveries) with the worker's own
limits (``DispatcherConfig`` defaults: 64 in flight, 16 per endpoint, so the two
differ only in the per-message work). Both drain ``--count`` final messages of the
same shape (``--clients`` clients, spread over 4 receiver ports so no claim waits
for an endpoint's slot cap) to the same loopback aiohttp receiver in its own process.
The outbox is emptied before each drain; an untimed warm-up drain of each comes
first; then the timed drains alternate (worker, bare, worker, bare, ... for
``--rounds`` rounds) so a shared machine's drifting load falls on both.

Each drain reports deliveries per second, CPU per delivery (this process, and the
event loop's thread alone) and the loop's lag (how late a 2 ms sleeper wakes).
The payloads carry no audit receipt, so the completer only parses them (no
receipt wait, no session read). Ends with one ``GOAL`` line per store (issue 17):

- ``worker_vs_bare_dispatcher_{sqlite,postgresql}`` >= 0.8 (worker's mean
  deliveries/s / the bare dispatcher's: the worker's per-message work costs at
  most a fifth of the throughput).

PostgreSQL: a throwaway schema on ``--pg`` (loopback only), dropped after; skipped
with the reason when the server is unreachable.

    .venv/bin/python bench/worker_webhooks.py [--count 3000] [--clients 4] [--rounds 2]
        [--pg URL] [--no-pg] [--no-sqlite]

Old code for comparison: ``PYTHONPATH=<old checkout>/src`` in front.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import ipaddress
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
from sqlalchemy import Engine, delete, insert

# bench/ is this script's own folder on sys.path: the outbox rows of the dispatcher bench.
from webhooks import outbox_rows

from bioverify.accounts import service as accounts
from bioverify.accounts.secretbox import KeyRingSealer
from bioverify.cli._context import migrated_engine
from bioverify.config import Settings
from bioverify.metrics import WEBHOOKS_DELIVERED
from bioverify.storage.database import transaction
from bioverify.webhooks import outbox
from bioverify.webhooks.dispatcher import Dispatcher, DispatcherConfig
from bioverify.webhooks.egress import EgressGuard
from bioverify.webhooks.models import WebhookDelivery, WebhookMessage
from bioverify.webhooks.outbox import MessageView
from bioverify.webhooks.signing import new_webhook_secret
from bioverify.wiring import Services, build_services
from bioverify.worker import Worker

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
PORTS = 4
GOAL_RATIO = 0.8
RECEIVER_START_S = 15.0
#: Before the clock starts: the worker's first sweep and sequencer start-up.
SETTLE_S = 0.5
#: At stop, in-flight sends get the dispatcher's grace (10 s); beyond this, cancelled.
STOP_S = 30.0
SECRET = new_webhook_secret()
GOALS: list[str] = []

# The listening sockets are bound (port 0) by this process and handed down by fd, so
# the ports are known and free before the receiver starts.
RECEIVER = """
import asyncio, socket, sys
from aiohttp import web
async def ok(request):
    await request.read()
    return web.Response(text="ok")
async def main():
    app = web.Application()
    app.router.add_post("/hook", ok)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    for fd in sys.argv[1:]:
        await web.SockSite(runner, socket.socket(fileno=int(fd))).start()
    await asyncio.Event().wait()
asyncio.run(main())
"""


class BenchError(Exception):
    """A drain failed (a store's failure is reported on its GOAL line; the other
    store still runs)."""


def goal(name: str, value: float | str, target: str, met: bool) -> None:
    shown = value if isinstance(value, str) else f"{value:.3g}"
    GOALS.append(f"GOAL {name} {shown} {target} {'met' if met else 'NOT met'}")


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


# ------------------------------------------------------------------------ receiver


def wait_answering(proc: subprocess.Popen[bytes], ports: list[int], timeout: float) -> None:
    """Until each port answers a POST with 200 (bounded; a clear error otherwise)."""
    deadline = time.monotonic() + timeout
    pending, last = list(ports), "no attempt"
    while pending:
        if proc.poll() is not None:
            raise SystemExit(f"receiver exited with status {proc.returncode} before answering")
        if time.monotonic() > deadline:
            raise SystemExit(
                f"receiver did not answer on 127.0.0.1:{pending[0]} within {timeout:g} s ({last})"
            )
        conn = http.client.HTTPConnection("127.0.0.1", pending[0], timeout=1)
        try:
            conn.request("POST", "/hook", body=b"{}")
            status = conn.getresponse().status
            if status != 200:
                raise SystemExit(f"receiver answered {status} on 127.0.0.1:{pending[0]}")
            pending.pop(0)
        except OSError as exc:
            last = f"{type(exc).__name__}: {exc}"
            time.sleep(0.05)  # polling another process's start-up
        finally:
            conn.close()


@contextlib.contextmanager
def receiver() -> Iterator[list[str]]:
    """A loopback aiohttp receiver on ``PORTS`` free ports, in its own process; its URLs."""
    socks = []
    for _ in range(PORTS):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(512)
        socks.append(sock)
    fds = [sock.fileno() for sock in socks]
    ports = [int(sock.getsockname()[1]) for sock in socks]
    proc = subprocess.Popen([sys.executable, "-c", RECEIVER, *map(str, fds)], pass_fds=fds)
    for sock in socks:
        sock.close()  # the receiver has its own copies
    try:
        wait_answering(proc, ports, RECEIVER_START_S)
        yield [f"http://127.0.0.1:{port}/hook" for port in ports]
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# ------------------------------------------------------------------------- stores


@dataclass
class Store:
    name: str
    services: Services
    engine: Engine
    client_ids: list[str]


@contextlib.asynccontextmanager
async def open_store(
    name: str, data_dir: Path, database_url: str | None, clients: int
) -> AsyncIterator[Store]:
    """A migrated store with ``clients`` clients, and the services the worker runs on."""
    cfg = Settings(
        data_dir=data_dir,
        allow_private_callbacks=True,
        database_wait_s=5.0,
        **({"database_url": database_url} if database_url else {}),
    )
    engine = migrated_engine(cfg)
    services: Services | None = None
    try:
        services = build_services(cfg, db_engine=engine)
        services.require_ready()
        sealer = KeyRingSealer(services.need_keyring())
        with transaction(services.factory) as db:
            ids = [
                accounts.create_client(db, name=f"c{i}", sealer=sealer)[1].client_id
                for i in range(clients)
            ]
        yield Store(name, services, engine, ids)
    finally:
        if services is not None and services.engine is not None:
            await services.engine.close()  # the face engine's pool, as serve shuts it down
        engine.dispose()


def check_loopback(url: str) -> None:
    host = urlsplit(url).hostname or ""
    if host in ("", "localhost"):  # "": a local socket
        return
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise SystemExit(f"--pg must name a loopback host, not {host!r}")


@contextlib.contextmanager
def pg_schema(url: str) -> Iterator[str | None]:
    """A throwaway schema's SQLAlchemy URL, dropped after (None: server unreachable)."""
    plain = url.replace("postgresql+psycopg://", "postgresql://", 1)
    schema = "bench_wwh_" + secrets.token_hex(4)
    try:
        with psycopg.connect(plain, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
    except psycopg.Error as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        print(f"postgresql skipped: {type(exc).__name__}: {reason}")
        yield None
        return
    try:
        base = plain.replace("postgresql://", "postgresql+psycopg://", 1)
        yield f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(plain, autocommit=True, connect_timeout=3) as conn:
            conn.execute("SET lock_timeout = '10s'")  # bounded even if a connection lingers
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


# ------------------------------------------------------------------------- drains


def rows_for(count: int, client_ids: list[str], urls: list[str]) -> list[dict[str, Any]]:
    body = outbox.encode_payload({"sessionId": "x", "status": "FAILED", "errorCodes": [-7]})
    return outbox_rows(count, client_ids, urls, body)


def refill(engine: Engine, rows: list[dict[str, Any]]) -> None:
    """An outbox holding exactly ``rows`` (every drain starts from the same tables)."""
    with engine.begin() as conn:
        conn.execute(delete(WebhookDelivery))
        conn.execute(delete(WebhookMessage))
        if rows:  # an empty executemany would insert one row of defaults
            conn.execute(insert(WebhookMessage), rows)


@dataclass
class Drain:
    rate: float
    cpu_us: float
    loop_us: float
    lags_ms: list[float]

    def q(self, f: float) -> float:
        return self.lags_ms[min(len(self.lags_ms) - 1, int(f * len(self.lags_ms)))]

    def line(self, n: int) -> str:
        return (
            f"{n} in {n / self.rate:5.2f} s ({self.rate:5.0f}/s); CPU/delivery process "
            f"{self.cpu_us:5.0f} us, loop thread {self.loop_us:5.0f} us; loop lag p50 "
            f"{self.q(0.5):.2f} p99 {self.q(0.99):.2f} max {self.lags_ms[-1]:.1f} ms"
        )


def bare_dispatcher(engine: Engine, on_delivered: Callable[[MessageView], None]) -> Dispatcher:
    return Dispatcher(
        engine,
        DispatcherConfig(
            secrets_for=lambda client_id: [SECRET],
            guard=EgressGuard(allow_private=True),
            on_delivered=on_delivered,
        ),
    )


def delivered_metric() -> float:
    return float(WEBHOOKS_DELIVERED._value.get())


async def drain(store: Store, kind: str, rows: list[dict[str, Any]], limit_s: float) -> Drain:
    """Empty the outbox, fill it with ``rows``, and time ``kind`` ("worker" or "bare")
    delivering them all (bounded by ``limit_s``)."""
    run: Callable[[asyncio.Event], Awaitable[None]]
    if kind == "worker":
        worker = Worker(store.services)
        if worker.dispatcher is None:
            raise BenchError(f"worker not started: {sorted(store.services.problems)}")
        dispatcher, run = worker.dispatcher, worker.run
        base = delivered_metric()

        def progress() -> int:
            return int(delivered_metric() - base)
    else:
        seen = [0]

        def count(view: MessageView) -> None:
            seen[0] += 1

        dispatcher = bare_dispatcher(store.engine, count)
        run = dispatcher.run

        def progress() -> int:
            return seen[0]

    n = len(rows)
    await asyncio.to_thread(refill, store.engine, [])
    stop, done = asyncio.Event(), asyncio.Event()
    lags: list[float] = []

    async def probe() -> None:
        while not done.is_set():
            t = time.perf_counter()
            await asyncio.sleep(0.002)
            lags.append((time.perf_counter() - t - 0.002) * 1000)

    task = asyncio.create_task(run(stop))
    prober: asyncio.Task[None] | None = None
    try:
        await asyncio.sleep(SETTLE_S)
        await asyncio.to_thread(refill, store.engine, rows)
        prober = asyncio.create_task(probe())
        cpu0, tcpu0, t0 = time.process_time(), time.thread_time(), time.perf_counter()
        dispatcher.wake()
        while progress() < n:
            if task.done():
                raise BenchError(f"{kind} stopped after {progress()} of {n}: {task.exception()!r}")
            if time.perf_counter() - t0 > limit_s:
                raise BenchError(f"{kind}: only {progress()} of {n} delivered in {limit_s:g} s")
            await asyncio.sleep(0.005)  # polls a counter
        cpu1, tcpu1, t1 = time.process_time(), time.thread_time(), time.perf_counter()
    finally:
        done.set()
        if prober is not None:
            await prober
        stop.set()
        try:
            await asyncio.wait_for(task, timeout=STOP_S)
        except TimeoutError:
            print(f"{store.name}: {kind} did not stop within {STOP_S:g} s; cancelled")
    return Drain(
        n / (t1 - t0), (cpu1 - cpu0) / n * 1e6, (tcpu1 - tcpu0) / n * 1e6, sorted(lags) or [0.0]
    )


async def bench_store(store: Store, urls: list[str], args: argparse.Namespace) -> None:
    name = f"{store.name:10s}"
    warm = rows_for(min(200, args.count), store.client_ids, urls)
    for kind in ("worker", "bare"):
        await drain(store, kind, warm, args.timeout)
    runs: dict[str, list[Drain]] = {"worker": [], "bare": []}
    for r in range(1, args.rounds + 1):
        for kind in ("worker", "bare"):
            rows = rows_for(args.count, store.client_ids, urls)
            result = await drain(store, kind, rows, args.timeout)
            runs[kind].append(result)
            print(f"{name} {kind:6s} round {r}: {result.line(args.count)}", flush=True)
    mean = {kind: statistics.mean(d.rate for d in done) for kind, done in runs.items()}
    for kind, done in runs.items():
        print(
            f"{name} {kind:6s} mean {mean[kind]:5.0f}/s; CPU/delivery process "
            f"{statistics.mean(d.cpu_us for d in done):5.0f} us, loop thread "
            f"{statistics.mean(d.loop_us for d in done):5.0f} us; loop lag p50 "
            f"{max(d.q(0.5) for d in done):.2f} p99 "
            f"{max(d.q(0.99) for d in done):.2f} max {max(d.lags_ms[-1] for d in done):.1f} ms "
            "(worst round)"
        )
    ratio = mean["worker"] / mean["bare"]
    print(f"{name} worker / bare dispatcher: {ratio:.3f}")
    goal(f"worker_vs_bare_dispatcher_{store.name}", ratio, f">={GOAL_RATIO}", ratio >= GOAL_RATIO)


async def run_store(
    name: str, data_dir: Path, database_url: str | None, urls: list[str], args: argparse.Namespace
) -> bool:
    try:
        async with open_store(name, data_dir, database_url, args.clients) as store:
            await bench_store(store, urls, args)
    except Exception as exc:  # noqa: BLE001 - reported on its GOAL line; the other store runs
        print(f"{name}: failed: {type(exc).__name__}: {exc}")
        goal(f"worker_vs_bare_dispatcher_{name}", "failed", f">={GOAL_RATIO}", False)
        return False
    return True


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=3000, help="messages per drain")
    parser.add_argument("--clients", type=int, default=4, help="clients the messages belong to")
    parser.add_argument("--rounds", type=int, default=2, help="alternated worker/bare rounds")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per drain, at most")
    parser.add_argument("--pg", default=PG_URL, help="PostgreSQL server (loopback)")
    parser.add_argument("--no-pg", action="store_true", help="skip PostgreSQL")
    parser.add_argument("--no-sqlite", action="store_true", help="skip SQLite")
    args = parser.parse_args()
    if args.count < 1 or args.clients < 1 or args.rounds < 1:
        parser.error("--count, --clients and --rounds must be at least 1")
    if not args.no_pg:
        check_loopback(args.pg)
    print(f"load before: {uptime()}")
    print(
        f"{args.count} final messages per drain, {args.clients} clients, {PORTS} receiver "
        f"ports; goal: worker >= {GOAL_RATIO}x the bare dispatcher's deliveries/s"
    )
    ok = True
    with receiver() as urls, tempfile.TemporaryDirectory(prefix="bench-worker-") as tmp:
        if not args.no_sqlite:
            ok &= await run_store("sqlite", Path(tmp) / "sqlite", None, urls, args)
        if not args.no_pg:
            with pg_schema(args.pg) as url:
                if url is None:
                    goal(
                        "worker_vs_bare_dispatcher_postgresql", "skipped", f">={GOAL_RATIO}", False
                    )
                else:
                    ok &= await run_store("postgresql", Path(tmp) / "pg", url, urls, args)
    print(f"load after: {uptime()}")
    print("\n".join(GOALS))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
