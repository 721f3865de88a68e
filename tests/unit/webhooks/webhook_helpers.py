"""Test helpers for webhooks: a real loopback receiver, an injectable clock, outbox rows."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from bioverify.webhooks import outbox
from bioverify.webhooks.models import WebhookMessage


@dataclass
class Reply:
    """What the receiver answers: status, headers, body; ``body_size`` streams zeros."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"ok"
    body_size: int | None = None


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


class Receiver:
    """A threaded HTTP/1.1 server on 127.0.0.1 that answers from a script."""

    def __init__(self, port: int = 0) -> None:
        self.requests: list[Received] = []
        self.script: list[Reply] = []
        self.default = Reply()
        self.route: Callable[[str], Reply | None] | None = None
        self.bytes_written = 0
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self.port = port
        self.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def _next_reply(self, path: str) -> Reply:
        with self._lock:
            if self.route is not None:
                routed = self.route(path)
                if routed is not None:
                    return routed
            return self.script.pop(0) if self.script else self.default

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(length)
                with receiver._lock:
                    receiver.requests.append(
                        Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                    )
                reply = receiver._next_reply(self.path)
                self.send_response(reply.status)
                for key, value in reply.headers.items():
                    self.send_header(key, value)
                size = reply.body_size if reply.body_size is not None else len(reply.body)
                self.send_header("content-length", str(size))
                self.end_headers()
                if reply.body_size is None:
                    self.wfile.write(reply.body)
                    return
                chunk = b"\0" * 65536
                try:
                    while receiver.bytes_written < size:
                        self.wfile.write(chunk)
                        receiver.bytes_written += len(chunk)
                except OSError:
                    self.close_connection = True

            def log_message(self, format: str, *args: object) -> None:
                pass

        ThreadingHTTPServer.request_queue_size = 256  # the default backlog of 5 refuses bursts
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


class FakeClock:
    """Injected time: starts at the wall clock (receivers check timestamps), moves on demand."""

    def __init__(self) -> None:
        self.now = dt.datetime.now(dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


# An outbox message due now (or at the fake clock's time), committed.
def put(
    engine: Engine,
    clock: FakeClock | None,
    url: str,
    *,
    session_id: str = "s1",
    client_id: str = "c1",
    headers: dict[str, str] | None = None,
    **kw: Any,
) -> str:
    with Session(engine) as db:
        msg_id = outbox.enqueue(
            db,
            session_id=session_id,
            client_id=client_id,
            url=url,
            headers=headers or {},
            payload={"sessionId": session_id},
            now=clock() if clock else None,
            **kw,
        )
        db.commit()
    return msg_id


def status_of(engine: Engine, msg_id: str) -> WebhookMessage:
    with Session(engine) as db:
        row = db.get(WebhookMessage, msg_id)
        assert row is not None
        return row
