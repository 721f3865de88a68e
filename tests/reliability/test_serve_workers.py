"""``bioverify serve --workers 2`` on the SQLite default: two API processes on one
port, the embedded worker once, a killed process replaced, a clean stop."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import httpx
import pytest
from harness import CREATE, Processes, free_port, make_creds, service_env, wait_until
from test_proxy import _end_with

from support import Receiver, migrated

pytestmark = pytest.mark.slow


def api_processes(parent: int) -> set[int]:
    """Pids of the API processes ``serve`` spawned (not its resource tracker)."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue  # exited meanwhile
        if int(fields[1]) == parent and b"spawn_main" in cmdline:
            found.add(int(stat.parent.name))
    return found


def test_two_api_processes_share_the_port_and_the_worker_runs_once(
    tmp_path: Path, procs: Processes
) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    engine = migrated(f"sqlite:///{(data / 'bioverify.sqlite3').resolve()}")
    creds = make_creds(engine, data)
    env = service_env(data)
    port = free_port()
    server, url = procs.serve(env, port, "--workers", "2")
    assert server.popen is not None
    pid = server.popen.pid
    wait_until(lambda: len(api_processes(pid)) == 2, 60, "two API processes")
    first = api_processes(pid)

    with Receiver() as receiver, httpx.Client(base_url=url, timeout=15) as http:

        def create(i: int) -> tuple[str, str]:
            response = http.post(
                CREATE,
                headers={**creds.headers(), "Idempotency-Key": f"workers-{i}"},
                json={"type": "ENROLL", "liveness": "passive", "callback": {"url": receiver.url}},
            )
            assert response.status_code == 201, response.text
            return str(response.json()["sessionId"]), str(response.json()["launchUrl"])

        made = [create(i) for i in range(8)]
        for _, launch in made:
            _end_with(launch, -7)
        wait_until(lambda: len(receiver.ids_by_session()) == len(made), 30, "8 final webhooks")

        # A killed API process is replaced; the port keeps answering meanwhile.
        victim = sorted(first)[1]
        os.kill(victim, signal.SIGKILL)
        wait_until(
            lambda: len(api_processes(pid)) == 2 and victim not in api_processes(pid),
            60,
            "the killed API process to be replaced",
        )
        more = [create(i) for i in range(8, 12)]
        for _, launch in more:
            _end_with(launch, 1)
        wait_until(lambda: len(receiver.ids_by_session()) == 12, 30, "12 final webhooks")
        per_session = receiver.ids_by_session()
        # The dispatcher ran once: one delivery per session, never one per process.
        assert all(len(ids) == 1 for ids in per_session.values()), per_session
        assert len(receiver.received) == 12

    # SIGTERM stops the supervisor and every API process, with status 0.
    server.popen.send_signal(signal.SIGTERM)
    assert server.popen.wait(timeout=60) == 0, server.output()
    assert api_processes(pid) == set()
    verified = procs.cli(env, "audit", "verify", "--quiet")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    engine.dispose()
