"""Debian's nginx in front of two ``bioverify serve --no-worker`` and one ``bioverify
worker``, on PostgreSQL and Redis: the deployment docs/operations.md describes, with
the nginx configuration of deploy/nginx/bioverify.conf (only the ports replaced).

Every request of these tests goes through nginx, the capture client's included (the
launch URL points at nginx). Loopback only; every process is killed at teardown.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import shutil
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis
from harness import CREATE, Proc, Processes, free_port, make_creds, service_env, wait_until
from sqlalchemy import Engine, select

from bioverify.capture.sdk import CaptureError, CaptureSession
from bioverify.sessions.models import SessionRow
from bioverify.webhooks.models import WebhookMessage
from support import Creds, Receiver, drop_schema_of, fresh_database_url, migrated

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SITE = ROOT / "deploy" / "nginx" / "bioverify.conf"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
REDIS_URL = os.environ.get("BIOVERIFY_TEST_REDIS", "redis://127.0.0.1:6379/0")
#: Where nginx connects to the API processes from (BIOVERIFY_TRUSTED_PROXIES).
NGINX_ADDRESS = "127.0.0.1"
#: BIOVERIFY_AUTH_FAILURE_LIMIT of the stack (shared by both API processes through Redis).
FAILURE_LIMIT = 3
#: Fatal client codes the sessions end with (reported through the capture client).
CODES = (-7, 1, -10)


def _need_nginx() -> None:
    if not Path(NGINX).exists():
        pytest.skip("nginx is not installed: run scripts/install-nginx.sh (.ci/run does)")


def _need_redis() -> None:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        pytest.skip(f"Redis at {REDIS_URL} is not reachable: {exc}")


def nginx_conf(workdir: Path, listen: int, backends: list[int]) -> Path:
    """A complete nginx.conf for one test: the shipped site file, ports replaced, plus
    what a test instance needs (foreground, files in ``workdir``, an access log that
    names the backend of each request)."""
    site = SITE.read_text()
    site = site.replace("127.0.0.1:8080", f"127.0.0.1:{listen}")
    for default, port in zip(("127.0.0.1:8001", "127.0.0.1:8002"), backends, strict=True):
        assert default in site, f"{SITE} no longer names {default}"
        site = site.replace(default, f"127.0.0.1:{port}")
    (workdir / "bioverify.conf").write_text(site)
    temp = "\n".join(
        f"    {kind}_temp_path {workdir / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    conf = workdir / "nginx.conf"
    conf.write_text(
        f"""{"user root;" if os.geteuid() == 0 else ""}
daemon off;
worker_processes 1;
pid {workdir / "nginx.pid"};
error_log {workdir / "error.log"} warn;
events {{ worker_connections 512; }}
http {{
    log_format upstream '$remote_addr $request_method $uri $status $upstream_addr';
    access_log {workdir / "access.log"} upstream;
{temp}
    include {workdir / "bioverify.conf"};
}}
"""
    )
    return conf


def clients_seen(workdir: Path) -> set[str]:
    """The client addresses nginx accepted requests from (from its access log)."""
    return {line.split(" ", 1)[0] for line in (workdir / "access.log").read_text().splitlines()}


def backends_used(workdir: Path) -> dict[str, int]:
    """How many requests each backend answered (from nginx's access log)."""
    counts: dict[str, int] = {}
    for line in (workdir / "access.log").read_text().splitlines():
        # "$upstream_addr" lists every backend tried: "a:1, b:2" after a failover.
        for addr in re.findall(r"127\.0\.0\.1:\d+", line.split(" ", 4)[-1]):
            counts[addr] = counts.get(addr, 0) + 1
    return counts


@dataclass
class Stack:
    url: str
    creds: Creds
    engine: Engine
    env: dict[str, str]
    api: list[Proc]
    api_ports: list[int]
    workdir: Path


@pytest.fixture
def stack(tmp_path: Path, procs: Processes) -> Iterator[Stack]:
    _need_nginx()
    _need_redis()
    url = fresh_database_url("postgres", tmp_path)
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    engine = migrated(url)
    creds = make_creds(engine, data)
    listen = free_port()
    proxy = f"http://127.0.0.1:{listen}"
    env = service_env(
        data,
        url,
        BIOVERIFY_REDIS_URL=REDIS_URL,
        BIOVERIFY_PUBLIC_URL=proxy,
        # nginx reaches the API processes from loopback: its X-Forwarded-For is believed.
        BIOVERIFY_TRUSTED_PROXIES=NGINX_ADDRESS,
        BIOVERIFY_AUTH_FAILURE_LIMIT=str(FAILURE_LIMIT),
    )
    ports = [free_port(), free_port()]
    api = [procs.serve(env, port, "--no-worker", "--workers", "1")[0] for port in ports]
    procs.worker(env)
    conf = nginx_conf(tmp_path, listen, ports)
    nginx = Proc(
        [NGINX, "-p", str(tmp_path), "-c", str(conf), "-e", str(tmp_path / "error.log")],
        dict(os.environ),
        tmp_path / "nginx.out",
    ).start()
    procs.started.append(nginx)

    def proxied() -> bool:
        with contextlib.suppress(httpx.TransportError):
            return httpx.get(f"{proxy}/healthz", timeout=1.0).status_code == 200
        return not nginx.alive

    wait_until(proxied, 30, "nginx to answer")
    assert nginx.alive, nginx.output() + (tmp_path / "error.log").read_text()
    try:
        yield Stack(proxy, creds, engine, env, api, ports, tmp_path)
    finally:
        engine.dispose()
        drop_schema_of(url)


def _create(http: httpx.Client, creds: Creds, key: str, callback: str) -> tuple[str, str]:
    """Create a session, retrying with the same Idempotency-Key while the proxy answers
    502 (the request was in flight on a backend that died) or the connection drops."""
    deadline = time.monotonic() + 60
    while True:
        with contextlib.suppress(httpx.TransportError):
            response = http.post(
                CREATE,
                headers={**creds.headers(), "Idempotency-Key": key},
                json={"type": "ENROLL", "liveness": "passive", "callback": {"url": callback}},
            )
            if response.status_code not in {502, 503, 504}:
                assert response.status_code == 201, response.text
                made = response.json()
                return str(made["sessionId"]), str(made["launchUrl"])
        assert time.monotonic() < deadline, "the proxy never answered the create"
        time.sleep(0.05)  # the retry a client makes; bounded by the deadline


def _end_with(launch_url: str, code: int) -> None:
    """Report a fatal client code through the capture client; 'already ended' is done
    (an earlier try committed but its answer was lost with the backend)."""
    deadline = time.monotonic() + 60
    while True:
        try:
            with CaptureSession.from_launch_url(launch_url, load_retries=0, timeout=10) as cap:
                cap.report(code, "proxy test")
            return
        except CaptureError as exc:
            if exc.http_status == 409:
                return
            if exc.http_status not in {0, 502, 503, 504}:
                raise
        assert time.monotonic() < deadline, "the proxy never answered the capture client"
        time.sleep(0.05)  # as above


def _session_ids(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        return set(conn.scalars(select(SessionRow.id)))


def _run_sessions(
    stack: Stack, receiver: Receiver, count: int, *, midway: threading.Event | None = None
) -> dict[str, int]:
    """Create and end ``count`` sessions through the proxy, 4 at a time; set ``midway``
    after half of them were created. Session id -> the code it ended with."""
    made: dict[str, int] = {}
    lock = threading.Lock()
    with httpx.Client(base_url=stack.url, timeout=15) as http:

        def drive(i: int) -> None:
            session_id, launch = _create(http, stack.creds, f"proxy-{i}", receiver.url)
            with lock:
                made[session_id] = CODES[i % len(CODES)]
                if midway is not None and len(made) == count // 2:
                    midway.set()
            _end_with(launch, made[session_id])

        with ThreadPoolExecutor(4) as pool:
            for future in [pool.submit(drive, i) for i in range(count)]:
                future.result(timeout=120)
    return made


def _check_outcome(stack: Stack, receiver: Receiver, made: dict[str, int]) -> None:
    """No session lost or doubled, one final webhook each with its code, a sound log."""
    assert _session_ids(stack.engine) == set(made), "a session was lost or made twice"
    try:
        wait_until(
            lambda: set(receiver.ids_by_session()) >= set(made), 120, "a final webhook per session"
        )
    except AssertionError as exc:
        missing = set(made) - set(receiver.ids_by_session())
        with stack.engine.connect() as conn:
            rows = conn.execute(
                select(
                    WebhookMessage.session_id, WebhookMessage.status, WebhookMessage.attempts
                ).where(WebhookMessage.session_id.in_(missing))
            ).all()
        raise AssertionError(f"{exc}: outbox of the missing: {rows}") from None
    per_session = receiver.ids_by_session()
    assert all(len(per_session[sid]) == 1 for sid in made), per_session
    for hook in receiver.received:
        assert hook.json()["errorCodes"] == [made[hook.json()["sessionId"]]]
    verified = Processes(stack.workdir).cli(stack.env, "audit", "verify", "--quiet")
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_requests_spread_over_both_api_processes_and_each_session_gets_one_webhook(
    stack: Stack,
) -> None:
    with Receiver() as receiver:
        made = _run_sessions(stack, receiver, 24)
        _check_outcome(stack, receiver, made)
    used = backends_used(stack.workdir)
    # The configuration docs/operations.md shows is the one tested here.
    assert SITE.read_text() in (ROOT / "docs" / "operations.md").read_text()
    for port in stack.api_ports:
        # Each backend took a real share (round robin: about half of ~72 requests).
        assert used.get(f"127.0.0.1:{port}", 0) >= 10, used


def test_a_killed_api_process_behind_nginx_loses_no_session(stack: Stack) -> None:
    midway = threading.Event()
    with Receiver() as receiver:
        killer = threading.Thread(
            target=lambda: midway.wait(120) and stack.api[0].kill(signal.SIGKILL)
        )
        killer.start()
        made = _run_sessions(stack, receiver, 24, midway=midway)
        killer.join()
        assert not stack.api[0].alive, "the first API process was not killed"
        # The survivor answers everything now, with nginx in front as before.
        with httpx.Client(base_url=stack.url, timeout=15) as http:
            for session_id in made:
                got = http.get(f"{CREATE}/{session_id}", headers=stack.creds.headers())
                assert got.status_code == 200, got.text
                assert got.json()["status"] == "FAILED"
        _check_outcome(stack, receiver, made)
    used = backends_used(stack.workdir)
    assert used.get(f"127.0.0.1:{stack.api_ports[1]}", 0) > 0, used


def _client_at(stack: Stack, address: str) -> httpx.Client:
    """An HTTP client whose connections to nginx come from ``address`` (a loopback
    address other than nginx's own: a distinct real client as nginx sees it)."""
    transport = httpx.HTTPTransport(local_address=address)
    return httpx.Client(base_url=stack.url, transport=transport, timeout=15)


def _loopback_clients(count: int) -> list[str]:
    """Distinct loopback addresses, random so that no other run's failure counts (the
    Redis throttle is shared and keeps them for its window) fall on this run's clients."""
    picked: set[str] = set()
    while len(picked) < count:
        octets = (random.randint(1, 254), random.randint(0, 255), random.randint(1, 254))
        picked.add(".".join(map(str, (127, *octets))))
    return sorted(picked)


def _create_status(http: httpx.Client, headers: dict[str, str]) -> int:
    body = {"type": "ENROLL", "liveness": "passive"}
    return http.post(CREATE, headers=headers, json=body).status_code


def test_throttles_count_each_real_client_address_behind_nginx(stack: Stack) -> None:
    attacker_at, bystander_at, spoofer_at = _loopback_clients(3)
    wrong_key = {**stack.creds.headers(), "x_api_key": "not-a-key-of-anyone"}
    with (
        _client_at(stack, attacker_at) as attacker,
        _client_at(stack, bystander_at) as bystander,
        _client_at(stack, spoofer_at) as spoofer,
    ):
        # Failures from one address (spread over both API processes by nginx) ...
        for _ in range(FAILURE_LIMIT):
            assert _create_status(attacker, wrong_key) == 401
        # ... get that address refused on further failing attempts,
        assert _create_status(attacker, wrong_key) == 429
        # also when the client claims, in its own X-Forwarded-For, to be someone else:
        # nginx appends the address it saw, and the API takes the right-most untrusted hop.
        for claimed in ("203.0.113.7", bystander_at, f"{bystander_at}, {NGINX_ADDRESS}"):
            status = _create_status(attacker, {**wrong_key, "X-Forwarded-For": claimed})
            assert status == 429, claimed
        # A client at another address is not refused, not even its own failing attempt,
        assert _create_status(bystander, wrong_key) == 401
        assert _create_status(bystander, stack.creds.headers()) == 201
        # and valid credentials from the attacker's own address are still honoured.
        assert _create_status(attacker, stack.creds.headers()) == 201
        # Nor can a client get its failures counted against someone else's address:
        # claiming to be the refused attacker, a third client is only answered 401.
        status = _create_status(spoofer, {**wrong_key, "X-Forwarded-For": attacker_at})
        assert status == 401
    # The attempts really came through nginx from those addresses, to both processes.
    # nginx writes a request's log line after it has sent the response, so the last
    # lines may land a moment after the client has its answer.
    addresses = {attacker_at, bystander_at, spoofer_at}
    wait_until(lambda: addresses <= clients_seen(stack.workdir), 10, "nginx to log every client")
    used = backends_used(stack.workdir)
    assert all(used.get(f"127.0.0.1:{port}", 0) > 0 for port in stack.api_ports), used
