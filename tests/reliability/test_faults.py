"""Fault injection on real processes: SIGKILL of the server and of a worker, and a
PostgreSQL restart, under load. Loopback only; every process is killed at teardown.

Sessions end with fatal codes reported by the capture client through the encrypted
``/events`` route (-7, 1, -10) or by expiry (-8); no session here ends in SUCCESS
(that path is covered by the biometric end-to-end tests and does not change what
a crash can lose: the same transaction writes the outcome and the outbox row).
"""

from __future__ import annotations

import datetime as dt
import signal
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from harness import (
    CREATE,
    GatedReceiver,
    Processes,
    free_port,
    make_creds,
    service_env,
    wait_until,
)
from private_postgres import PrivateCluster, private_cluster
from sqlalchemy import Engine, func, select
from standardwebhooks.webhooks import Webhook

from bioverify.capture.sdk import CaptureError, CaptureSession
from bioverify.sessions.models import SessionRow
from bioverify.webhooks.models import MessageStatus, WebhookMessage
from fixtures_faces import FACES, file_bytes
from support import Creds, drop_schema_of, fresh_database_url, migrated

pytestmark = pytest.mark.slow

FATAL_CODES = (-7, 1, -10)
#: Every SUCCESS_EVERY-th session ends in SUCCESS (a real face, passive liveness).
SUCCESS_EVERY = 6
SUCCESS = 0
#: The shortest TTL the API accepts (sessionExpiry >= 60 s).
MIN_TTL_S = 60


def _retrying(call: Callable[[], Any], *, deadline: float) -> Any:
    """Call until it stops failing for transport reasons (the server is restarting)."""
    while True:
        try:
            return call()
        except httpx.TransportError:
            pass
        except CaptureError as exc:
            if exc.http_status not in {0, 500, 502, 503}:
                raise
        if time.monotonic() > deadline:
            raise AssertionError("the server did not come back in time")
        time.sleep(0.05)  # the server is down: retry shortly, bounded by the deadline


def _create(http: httpx.Client, creds: Creds, key: str, callback: str, ttl: int) -> tuple[str, str]:
    """Create a session (idempotently: a retry after a crash returns the same one)."""
    response = http.post(
        CREATE,
        headers={**creds.headers(), "Idempotency-Key": key},
        json={
            "type": "ENROLL",
            "liveness": "passive",
            "sessionExpiry": ttl,
            "callback": {"url": callback},
        },
    )
    if response.status_code >= 500:
        raise httpx.TransportError(f"server answered {response.status_code}")
    assert response.status_code == 201, response.text
    made = response.json()
    return str(made["sessionId"]), str(made["launchUrl"])


def _face() -> bytes:
    """A real face photo from the labelled set in tests/data/faces."""
    return file_bytes(FACES / "img29.jpg")


def _succeed(launch_url: str, photo: bytes) -> None:
    """Capture a real face; 'already ended' counts as done (a lost answer's retry)."""
    try:
        capture = CaptureSession.from_launch_url(launch_url, load_retries=0, timeout=30)
    except CaptureError as exc:
        if exc.http_status == 409:
            return
        raise
    with capture:
        outcome = capture.submit([photo])
    if outcome.http_status == 409:
        return
    if outcome.http_status >= 500:
        raise httpx.TransportError(f"server answered {outcome.http_status}")
    assert outcome.status == "SUCCESS", outcome


def _end_with(launch_url: str, code: int) -> None:
    """Load the session and report a fatal client code; 'already ended' counts as done
    (the previous try's report committed but its answer was lost in the crash)."""
    try:
        capture = CaptureSession.from_launch_url(launch_url, load_retries=0, timeout=10)
    except CaptureError as exc:
        if exc.http_status == 409:
            return
        raise
    with capture:
        try:
            capture.report(code, "fault test")
        except CaptureError as exc:
            if exc.http_status != 409:
                raise


def _session_ids(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.scalars(select(SessionRow.id)))


def _orphan_claims(engine: Engine) -> list[str]:
    """Outbox rows a dead process had claimed (status 'delivering')."""
    with engine.connect() as conn:
        return list(
            conn.scalars(
                select(WebhookMessage.id).where(
                    WebhookMessage.status == MessageStatus.DELIVERING.value
                )
            )
        )


def _outbox_of(engine: Engine, session_ids: set[str]) -> list[tuple[Any, ...]]:
    """(session, status, attempts, next attempt) of the outbox rows of these sessions."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                WebhookMessage.session_id,
                WebhookMessage.status,
                WebhookMessage.attempts,
                WebhookMessage.next_attempt_at,
            ).where(WebhookMessage.session_id.in_(session_ids))
        ).all()
    found = {row[0] for row in rows}
    return [tuple(row) for row in rows] + [(sid, "NO OUTBOX ROW") for sid in session_ids - found]


def _read_back(http: httpx.Client, creds: Creds, session_id: str) -> dict[str, Any]:
    response = http.get(f"{CREATE}/{session_id}", headers=creds.headers())
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_sigkill_of_the_server_under_load_loses_and_duplicates_nothing(
    tmp_path: Path, procs: Processes
) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    url = f"sqlite:///{(data / 'bioverify.sqlite3').resolve()}"
    engine = migrated(url)
    creds = make_creds(engine, data)
    env = service_env(data)
    port = free_port()
    n_fatal, n_expiring = 36, 4  # of the 36, every 6th ends in SUCCESS instead
    photo = _face()
    expected: dict[str, int] = {}
    done = threading.Semaphore(0)

    with (
        GatedReceiver() as receiver,
        httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http,
    ):
        server, _ = procs.serve(env, port)
        deadline = time.monotonic() + 120

        def drive(i: int) -> None:
            expiring = i < n_expiring
            session_id, launch = _retrying(
                lambda: _create(
                    http, creds, f"kill-{i}", receiver.url, MIN_TTL_S if expiring else 600
                ),
                deadline=deadline,
            )
            if expiring:
                code = -8
            elif i % SUCCESS_EVERY == SUCCESS_EVERY - 1:
                code = SUCCESS
                _retrying(lambda: _succeed(launch, photo), deadline=deadline)
            else:
                code = FATAL_CODES[i % len(FATAL_CODES)]
                _retrying(lambda: _end_with(launch, code), deadline=deadline)
            with lock:
                expected[session_id] = code
            done.release()

        lock = threading.Lock()
        with ThreadPoolExecutor(4) as pool:
            futures = [pool.submit(drive, i) for i in range(n_fatal + n_expiring)]
            for _ in range((n_fatal + n_expiring) // 2):
                assert done.acquire(timeout=60), "load stalled before the kill"
            server.kill(signal.SIGKILL)
            print(f"claims orphaned by the kill: {len(_orphan_claims(engine))}")
            # The restarted server (SQLite's only writer) hands them back at start.
            procs.serve(env, port)
            for future in futures:
                future.result(timeout=120)

        ids = _session_ids(engine)
        assert len(ids) == n_fatal + n_expiring, "a retried create made a second session"
        assert set(ids) == set(expected)
        wait_until(
            lambda: all(
                _read_back(http, creds, sid)["status"] in {"FAILED", "SUCCESS"} for sid in ids
            ),
            MIN_TTL_S + 30,
            "every session to end",
        )
        try:
            wait_until(
                lambda: set(receiver.ids_by_session()) >= set(ids),
                30,
                "a final webhook for every session",
            )
        except AssertionError as exc:
            missing = set(ids) - set(receiver.ids_by_session())
            raise AssertionError(
                f"{exc}: {_outbox_of(engine, missing)}; server log: {procs.started[-1].output()}"
            ) from None
        for sid in ids:
            final = _read_back(http, creds, sid)
            fatal = [e["code"] for e in final["errors"] if e["kind"] == "fatal"]
            if expected[sid] == SUCCESS:
                assert final["status"] == "SUCCESS", final
                assert fatal == [], final
            else:
                assert fatal == [expected[sid]], final
        per_session = receiver.ids_by_session()
        assert all(len(per_session[sid]) == 1 for sid in ids), per_session
        for hook in receiver.received:
            Webhook(creds.webhook_secret).verify(hook.body, hook.headers)
            code = expected[hook.json()["sessionId"]]
            assert hook.json()["errorCodes"] == ([] if code == SUCCESS else [code])

    quiet = procs.cli(env, "audit", "verify", "--quiet")
    assert quiet.returncode == 0, quiet.stdout + quiet.stderr
    # The operator's form (with its progress bar) must pass as well.
    verified = procs.cli(env, "audit", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    engine.dispose()


# ----------------------------------------------------------------- worker SIGKILL (PostgreSQL)

#: How long a killed worker's claims may stay stuck before another worker takes them.
RECLAIM_BOUND_S = 30
#: BIOVERIFY_WEBHOOK_LEASE_SECONDS for these tests (production default: 120 s).
LEASE_S = 5


@pytest.fixture
def pg_url(tmp_path: Path) -> Iterator[str]:
    # Request it before ``procs`` (fixtures tear down in reverse): the schema is then
    # dropped only after every service process is stopped. Dropped under a running
    # worker, the DROP deadlocked with its dispatcher's writes.
    url = fresh_database_url("postgres", tmp_path)  # skips when PostgreSQL is unreachable
    yield url
    drop_schema_of(url)


def _orphaned_by_killed_worker(
    tmp_path: Path,
    procs: Processes,
    pg_url: str,
    receiver: GatedReceiver,
    sessions: int,
) -> tuple[Engine, dict[str, str], Creds, list[str]]:
    """API (--no-worker) + worker A on PostgreSQL; ``sessions`` end with -7 while the
    receiver holds A's requests; A is SIGKILLed with every claim in flight.
    Returns (engine, env, creds, ended session ids)."""
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    engine = migrated(pg_url)
    creds = make_creds(engine, data)
    env = service_env(data, pg_url, BIOVERIFY_WEBHOOK_LEASE_SECONDS=str(LEASE_S))
    _, url = procs.serve(env, free_port(), "--no-worker")
    worker_a = procs.worker(env)
    ended = []
    with httpx.Client(base_url=url, timeout=10) as http:
        for i in range(sessions):
            session_id, launch = _create(http, creds, f"w-{i}", receiver.url, 600)
            _end_with(launch, -7)
            ended.append(session_id)
    wait_until(lambda: len(receiver.received) >= sessions, 30, "worker A to send every webhook")
    worker_a.kill(signal.SIGKILL)
    receiver.gate.set()
    return engine, env, creds, ended


@pytest.mark.postgres
def test_sigkill_of_a_worker_leaves_no_webhook_undelivered(
    tmp_path: Path, pg_url: str, procs: Processes
) -> None:
    with GatedReceiver(open_gate=False) as receiver:
        engine, env, _, ended = _orphaned_by_killed_worker(
            tmp_path, procs, pg_url, receiver, sessions=8
        )
        orphans = _orphan_claims(engine)
        assert len(orphans) == len(ended), "the killed worker held every claim"
        procs.worker(env)
        # Worker B takes the claims over once A's (configured, short) lease runs out.
        wait_until(
            lambda: len(receiver.received) >= 2 * len(ended),
            LEASE_S + 30,
            "worker B to redeliver the orphaned webhooks",
        )
        per_session = receiver.ids_by_session()
        # Every session's final webhook arrived, always under one webhook-id: the
        # receiver deduplicates A's unacknowledged attempt and B's redelivery.
        assert set(per_session) == set(ended)
        assert all(len(ids) == 1 for ids in per_session.values()), per_session
        wait_until(lambda: _orphan_claims(engine) == [], 10, "the outbox to settle")
        with engine.connect() as conn:
            delivered = conn.scalar(
                select(func.count())
                .select_from(WebhookMessage)
                .where(WebhookMessage.status == MessageStatus.DELIVERED.value)
            )
        assert delivered == len(ended)
    engine.dispose()


@pytest.mark.postgres
def test_a_killed_workers_claims_are_reclaimable_within_a_bounded_time(
    tmp_path: Path, pg_url: str, procs: Processes
) -> None:
    with GatedReceiver(open_gate=False) as receiver:
        engine, _, _, _ = _orphaned_by_killed_worker(tmp_path, procs, pg_url, receiver, sessions=2)
        with engine.connect() as conn:
            lease_end = conn.scalar(select(func.max(WebhookMessage.claimed_until)))
        engine.dispose()
    assert lease_end is not None
    left = (lease_end - dt.datetime.now(dt.UTC)).total_seconds()
    assert left <= RECLAIM_BOUND_S, f"claims stay leased for another {left:.0f} s"


# ----------------------------------------------------------------- PostgreSQL restart


@pytest.fixture
def own_postgres() -> Iterator[PrivateCluster]:
    """A server of this test's own: stopping the shared one would break other suites."""
    with private_cluster() as cluster:
        yield cluster


@pytest.mark.postgres
def test_postgresql_down_under_load_answers_503_envelopes_and_recovers(
    tmp_path: Path, procs: Processes, own_postgres: PrivateCluster
) -> None:
    pg_url = own_postgres.url
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    engine = migrated(pg_url)
    creds = make_creds(engine, data)
    engine.dispose()
    _, url = procs.serve(service_env(data, pg_url), free_port())
    answers: list[httpx.Response] = []
    stop = threading.Event()

    def load() -> None:
        with httpx.Client(base_url=url, timeout=15) as http:
            while not stop.is_set():
                answers.append(http.post(CREATE, json={"type": "ENROLL"}, headers=creds.headers()))

    loader = threading.Thread(target=load, daemon=True)
    loader.start()
    try:
        wait_until(lambda: sum(r.status_code == 201 for r in answers) >= 5, 30, "load")
        stopped = own_postgres.ctl("stop")
        assert stopped.returncode == 0, stopped.stderr
        wait_until(
            lambda: sum(r.status_code >= 500 for r in answers) >= 5,
            30,
            "requests to fail while PostgreSQL is down",
        )
        started = own_postgres.ctl("start")
        assert started.returncode == 0, started.stderr
        before = len(answers)
        wait_until(
            lambda: any(r.status_code == 201 for r in answers[before:]),
            60,
            "create-session to succeed again",
        )
    finally:
        stop.set()
        loader.join(timeout=30)
    failed = [r for r in answers if r.status_code != 201]
    assert failed, "PostgreSQL going down was not noticed"
    for response in failed:
        body = response.json()  # never a non-JSON page
        assert response.status_code == 503, (response.status_code, body)
        assert body["status"] == "error" and body["errorCodes"] == [], body
        assert body["requestId"] == response.headers["x-request-id"]
        assert int(response.headers["retry-after"]) > 0
        assert "Traceback" not in response.text and "psycopg" not in response.text
    with httpx.Client(base_url=url, timeout=15) as http:
        assert http.get("/readyz").status_code == 200
