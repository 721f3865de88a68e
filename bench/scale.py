"""Two API processes against one on PostgreSQL: throughput, CPU per request, lock waits.

Two stacks run side by side on one fresh schema: ``bioverify serve --workers 1
--no-worker`` and ``bioverify serve --workers 2 --no-worker``, with one ``bioverify
worker`` (the audit sequencer and dispatcher) shared by both. Closed-loop
create-session load (16 connections, the generator of ``bench/api.py``) alternates
between them for ``--rounds`` rounds. Meanwhile a sampler reads ``pg_locks`` every
20 ms and records every lock a connection of this bench waits for (connections are
tagged with an ``application_name``), so a lock that all processes share on the
request path would show up as waits on a relation (table-wide) or advisory lock, or
on the audit head.

CPU per request is the CPU time of each stack's process tree (``/proc``) over its
requests. The load generator's own CPU (``RUSAGE_CHILDREN``) is reported as a share
of the machine's cores: on a 2-core machine the generator and PostgreSQL take part of
the second core, which caps what a second API process can add.

    .venv/bin/python bench/scale.py [--seconds 5] [--rounds 3] [--pg URL]
"""

from __future__ import annotations

import argparse
import os
import resource
import secrets
import subprocess
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from api import (
    BIN,
    CREATE_BODY,
    CREATE_PATH,
    PG_URL,
    Target,
    create_client,
    drop_pg_schema,
    free_port,
    merged,
    pg_schema_url,
    process,
    run_load,
    service_env,
)

GOALS: list[str] = []
CPU_GOAL = 1.10
THROUGHPUT_GOAL = 1.6
TICK = os.sysconf("SC_CLK_TCK")


def goal(name: str, value: float, target: str, met: bool) -> None:
    GOALS.append(f"GOAL {name} {value:.3g} {target} {'met' if met else 'NOT met'}")


def tree_cpu_s(root: int) -> float:
    """User + system CPU seconds of ``root`` and every live descendant."""
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(stat.parent.name)
        parents[pid] = int(fields[1])
        times[pid] = (int(fields[11]) + int(fields[12])) / TICK
    total = 0.0
    for pid, cpu in times.items():
        walk = pid
        while walk and walk != root:
            walk = parents.get(walk, 0)
        if walk == root:
            total += cpu
    return total


class LockSampler:
    """Samples the lock waits of this bench's connections until stopped."""

    def __init__(self, admin_url: str, app_name: str) -> None:
        self._url = admin_url.replace("postgresql+psycopg://", "postgresql://", 1)
        self._app = app_name
        self.samples = 0
        #: Most connections of this bench seen at once (proves the filter matches).
        self.connections = 0
        self.waits: Counter[str] = Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> LockSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        query = """
            SELECT l.locktype, l.mode, coalesce(c.relname, '')
            FROM pg_locks l
            JOIN pg_stat_activity a ON a.pid = l.pid
            LEFT JOIN pg_class c ON c.oid = l.relation
            WHERE NOT l.granted AND a.application_name = %s
        """
        count = "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s"
        with psycopg.connect(self._url, autocommit=True) as conn:
            while not self._stop.wait(0.02):
                self.samples += 1
                row = conn.execute(count, (self._app,)).fetchone()
                self.connections = max(self.connections, int(row[0]) if row else 0)
                for locktype, mode, relation in conn.execute(query, (self._app,)):
                    self.waits[f"{locktype}:{mode}:{relation or '-'}"] += 1

    def shared_waits(self) -> int:
        """Waits on a table-wide or advisory lock, or on the audit log's head."""
        return sum(
            n
            for key, n in self.waits.items()
            if key.split(":")[0] in {"relation", "advisory"} or key.endswith(":audit_head")
        )


@dataclass
class Measured:
    rows: dict[int, list[dict[str, float]]] = field(default_factory=lambda: {1: [], 2: []})
    cpu: dict[int, float] = field(default_factory=lambda: {1: 0.0, 2: 0.0})
    loadgen_cpu: float = 0.0
    wall: float = 0.0


def measure(args: argparse.Namespace, url: str, sampler: LockSampler) -> Measured:
    """Both stacks on ``url``, rounds of closed-loop load alternating between them."""
    out = Measured()
    with tempfile.TemporaryDirectory(prefix="bv-bench-scale-") as tmp:
        env = service_env(Path(tmp) / "data", url)
        subprocess.run(
            [str(BIN / "bioverify"), "migrate"], env=env, check=True, capture_output=True
        )
        create = Target("POST", CREATE_PATH, create_client(env), CREATE_BODY, 201)
        ports = {1: free_port(), 2: free_port()}

        def serve(n: int) -> list[str]:
            return [
                *[str(BIN / "bioverify"), "serve", "--no-worker", "--workers", str(n)],
                *["--host", "127.0.0.1", "--port", str(ports[n])],
            ]

        worker = subprocess.Popen(
            [str(BIN / "bioverify"), "worker"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            with process(serve(1), ports[1], env) as one, process(serve(2), ports[2], env) as two:
                time.sleep(3)  # the second process of `two` comes up after the port
                roots = {1: one.pid, 2: two.pid}
                for n in (1, 2):
                    run_load(ports[n], create, connections=4, seconds=1)  # warm-up
                with sampler:
                    for _ in range(args.rounds):
                        for n in (1, 2):
                            before = tree_cpu_s(roots[n])
                            usage = resource.getrusage(resource.RUSAGE_CHILDREN)
                            began = time.perf_counter()
                            out.rows[n].append(
                                run_load(
                                    ports[n],
                                    create,
                                    connections=args.connections,
                                    seconds=args.seconds,
                                )
                            )
                            out.wall += time.perf_counter() - began
                            after = resource.getrusage(resource.RUSAGE_CHILDREN)
                            out.loadgen_cpu += (after.ru_utime - usage.ru_utime) + (
                                after.ru_stime - usage.ru_stime
                            )
                            out.cpu[n] += tree_cpu_s(roots[n]) - before
        finally:
            worker.terminate()
            worker.wait(timeout=30)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each phase")
    parser.add_argument("--rounds", type=int, default=3, help="alternating 1/2-process rounds")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--pg", default=PG_URL, help="PostgreSQL URL (admin; a schema is made)")
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    print(f"machine: {cores} cpus, load {os.getloadavg()[0]:.2f}; {args.connections} connections")
    made = pg_schema_url(args.pg)
    if isinstance(made, str):
        print(f"skipped: {made}")
        return
    url, schema = made
    app_name = "bvscale_" + secrets.token_hex(4)
    sampler = LockSampler(args.pg, app_name)
    try:
        got = measure(args, f"{url}&application_name={app_name}", sampler)
    finally:
        drop_pg_schema(args.pg, schema)

    result = {n: merged(got.rows[n]) for n in (1, 2)}
    per_request = {n: got.cpu[n] / result[n]["requests"] * 1000.0 for n in (1, 2)}
    for n in (1, 2):
        row = result[n]
        print(
            f"  {n} API process{'es' if n > 1 else '  '}  {row['rps']:7.0f} req/s   "
            f"p50 {row['p50']:6.1f} ms   p99 {row['p99']:6.1f} ms   "
            f"CPU {per_request[n]:.2f} ms/request   errors {int(row['errors'])}"
        )
    share = got.loadgen_cpu / got.wall
    print(
        f"  load generator: {share:.2f} of {cores} cores on average; "
        f"the rest is shared by the API processes, the worker and PostgreSQL"
    )
    print(
        f"  pg_locks: {sampler.samples} samples, up to {sampler.connections} connections of "
        "this bench at once; their lock waits:"
    )
    for key, n in sampler.waits.most_common(10):
        print(f"    {n:6d}  {key}")
    if not sampler.waits:
        print("    none")
    print(f"load at the end: {os.getloadavg()[0]:.2f}")
    shared = sampler.shared_waits()
    goal("pg_shared_lock_waits", float(shared), "==0", not shared)
    cpu_ratio = per_request[2] / per_request[1]
    goal("cpu_per_request_2_vs_1", cpu_ratio, f"<={CPU_GOAL}", cpu_ratio <= CPU_GOAL)
    ratio = result[2]["rps"] / result[1]["rps"]
    print(
        f"  throughput goal >= {THROUGHPUT_GOAL}x needs two free cores for the API; "
        f"here {cores - share:.2f} cores were left after the load generator "
        "(PostgreSQL and the worker share them too)"
    )
    goal("throughput_2_vs_1", ratio, f">={THROUGHPUT_GOAL}", ratio >= THROUGHPUT_GOAL)
    print("\n".join(GOALS))


if __name__ == "__main__":
    main()
