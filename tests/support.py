"""Shared test helpers: backends, clocks, credentials, envelope assertions."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import http.server
import json
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import uvicorn
from sqlalchemy import Engine

from bioverify.accounts import service as accounts
from bioverify.accounts.secretbox import KeyRingSealer
from bioverify.api.http_protocol import LimitedHttpToolsProtocol
from bioverify.crypto.keyring import KeyRing
from bioverify.storage.database import make_engine, session_factory, transaction
from bioverify.storage.migrate import upgrade

PG_ADMIN_URL = os.environ.get("BIOVERIFY_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def postgres_reachable() -> str | None:
    """None when the test server answers, else the reason it does not."""
    try:
        with psycopg.connect(PG_ADMIN_URL, connect_timeout=3):
            return None
    except psycopg.Error as exc:
        return f"PostgreSQL at {PG_ADMIN_URL} is not reachable: {exc}".splitlines()[0]


def fresh_database_url(kind: str, tmp_path: Path) -> str:
    """A migrated, empty store of ``kind`` ("sqlite" or "postgres") for one test."""
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'bioverify.sqlite3'}"
    reason = postgres_reachable()
    if reason:
        pytest.skip(reason)
    schema = "t_" + secrets.token_hex(6)
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    base = PG_ADMIN_URL.replace("postgresql://", "postgresql+psycopg://", 1)
    return f"{base}?options=-csearch_path%3D{schema}"


def drop_schema_of(url: str) -> None:
    if "search_path%3D" not in url:
        return
    schema = url.rsplit("%3D", 1)[1]
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def migrated(url: str) -> Engine:
    engine = make_engine(url)
    upgrade(engine)
    return engine


class FakeClock:
    """An injectable UTC clock: wall time plus whatever the test jumped ahead.

    Following wall time keeps it in step with the timestamps clients put in their
    requests; ``advance`` jumps past TTLs and windows without sleeping.
    """

    def __init__(self) -> None:
        self._offset = dt.timedelta()
        self._lock = threading.Lock()

    def __call__(self) -> dt.datetime:
        with self._lock:
            return dt.datetime.now(dt.UTC) + self._offset

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._offset += dt.timedelta(seconds=seconds)


@dataclass(frozen=True)
class Creds:
    api_key: str
    client_id: str
    client_secret: str | None
    webhook_secret: str

    def headers(self) -> dict[str, str]:
        out = {"x_api_key": self.api_key, "clientID": self.client_id}
        if self.client_secret:
            out["clientSecret"] = self.client_secret
        return out


#: The run's key ring (set by the session fixture), which seals webhook secrets.
TEST_KEYRING: list[KeyRing] = []


def make_client(
    engine: Engine,
    *,
    name: str = "test",
    public_key_pem: str | None = None,
    key_only: bool = False,
    keyring: KeyRing | None = None,
) -> Creds:
    ring = keyring or TEST_KEYRING[0]
    with transaction(session_factory(engine)) as db:
        _, issued = accounts.create_client(
            db,
            name=name,
            public_key_pem=public_key_pem,
            key_only=key_only,
            sealer=KeyRingSealer(ring),
        )
    return Creds(issued.api_key, issued.client_id, issued.client_secret, issued.webhook_secret)


def assert_envelope(response: Any, status: int, codes: list[int] | None = None) -> dict[str, Any]:
    """The answer is the API.md error envelope with this status (and codes)."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["status"] == "error"
    assert isinstance(body["message"], str) and body["message"]
    assert isinstance(body["errorCodes"], list)
    assert body["requestId"] == response.headers["x-request-id"]
    if codes is not None:
        assert body["errorCodes"] == codes
    for leak in ("Traceback", "sqlalchemy", 'File "', "/work/", "psycopg"):
        assert leak not in body["message"]
    return dict(body)


class LiveServer:
    """A real uvicorn serving ``app`` on an ephemeral loopback port, in a thread."""

    def __init__(self, app: Any) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        # proxy_headers=False as `bioverify serve` does: forwarding headers are the
        # app's business (BIOVERIFY_TRUSTED_PROXIES), not uvicorn's.
        config = uvicorn.Config(
            app,
            log_config=None,
            access_log=False,
            lifespan="on",
            proxy_headers=False,
            http=LimitedHttpToolsProtocol,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True
        )

    def __enter__(self) -> LiveServer:
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("test server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=20)
        self._sock.close()


@contextlib.contextmanager
def serve(app: Any) -> Iterator[httpx.Client]:
    """An httpx client talking to ``app`` over real HTTP on loopback."""
    with LiveServer(app) as server, httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def webhook_id(self) -> str:
        return self.headers["webhook-id"]


class Receiver:
    """A real webhook receiver on loopback; answers with ``statuses`` in turn, then 200.

    With ``hold=True`` it records each request but holds the answer until ``gate`` is
    set (so a sender can be killed with its sends in flight). ``answer``, when given,
    picks the status and extra headers from the request body instead.
    """

    def __init__(
        self,
        statuses: list[int] | None = None,
        *,
        hold: bool = False,
        answer: Callable[[bytes], tuple[int, dict[str, str]]] | None = None,
    ) -> None:
        self.statuses = list(statuses or [])
        self.gate = threading.Event()
        if not hold:
            self.gate.set()
        self.received: list[Received] = []
        self._cond = threading.Condition()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(length)
                with receiver._cond:
                    receiver.received.append(
                        Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                    )
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                    extra: dict[str, str] = {}
                    if answer is not None:
                        status, extra = answer(body)
                    receiver._cond.notify_all()
                receiver.gate.wait(timeout=60)
                with contextlib.suppress(OSError):  # the sender may be dead by now
                    self.send_response(status)
                    for name, value in extra.items():
                        self.send_header(name, value)
                    self.send_header("content-length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")

            def log_message(self, *args: object) -> None:
                return None

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hook"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.gate.set()
        self._server.shutdown()
        self._server.server_close()

    def ids_by_session(self) -> dict[str, set[str]]:
        """Distinct ``webhook-id``s received for each session."""
        with self._cond:
            hooks = list(self.received)
        out: dict[str, set[str]] = {}
        for hook in hooks:
            out.setdefault(str(hook.json()["sessionId"]), set()).add(hook.webhook_id)
        return out

    def wait_for(self, count: int, timeout: float = 20.0) -> list[Received]:
        """Block until ``count`` requests arrived (bounded); all received so far."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.received) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"expected {count} webhooks, got {len(self.received)}")
                self._cond.wait(left)
            return list(self.received)


def on_loop() -> bool:
    """Whether the calling thread is running an event loop (store work must not)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True
