"""A receiver that trickles bytes cannot hold delivery slots forever, cannot make one
webhook be sent twice in parallel, and cannot stall other integrators (review item 3)."""

from __future__ import annotations

import asyncio
import datetime as dt
import select as io_select
import socket
import threading
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from test_webhooks_dispatcher import put
from webhook_helpers import Receiver

from bioverify.webhooks.dispatcher import Dispatcher, DispatcherConfig
from bioverify.webhooks.egress import EgressGuard
from bioverify.webhooks.models import MessageStatus, WebhookDelivery, WebhookMessage
from bioverify.webhooks.retry import RetryPolicy
from bioverify.webhooks.signing import new_webhook_secret

pytestmark = pytest.mark.anyio


class Trickler:
    """Accepts connections, reads the request, then answers one byte at a time, slowly,
    and never finishes; counts how many connections it holds at once."""

    def __init__(self) -> None:
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}/hook"
        self.open = 0
        self.max_open = 0
        self.accepted = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        self._sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                continue
            with self._lock:
                self.accepted += 1
                self.open += 1
                self.max_open = max(self.max_open, self.open)
            threading.Thread(target=self._trickle, args=(conn,), daemon=True).start()

    def _trickle(self, conn: socket.socket) -> None:
        try:
            conn.recv(65536)
            for byte in b"HTTP/1.1 200 OK\r\nx-slow: " + b"a" * 100_000:
                # One byte per tick; a readable socket now means the sender hung up.
                readable, _, _ = io_select.select([conn], [], [], 0.1)
                if self._stop.is_set() or (readable and not conn.recv(1)):
                    break
                conn.sendall(bytes([byte]))
        except OSError:
            pass  # the sender gave up: that is the point
        finally:
            conn.close()
            with self._lock:
                self.open -= 1

    def close(self) -> None:
        self._stop.set()
        self._sock.close()


@pytest.fixture
def trickler() -> Iterator[Trickler]:
    server = Trickler()
    yield server
    server.close()


def _dispatcher(engine: Engine, **kw: object) -> Dispatcher:
    secret = new_webhook_secret()
    return Dispatcher(
        engine,
        DispatcherConfig(
            secrets_for=lambda _client: [secret],
            policy=RetryPolicy.for_tests(attempts=50),
            guard=EgressGuard(allow_private=True),
            poll_interval=0.05,
            **kw,  # type: ignore[arg-type]
        ),
    )


async def _until(predicate: Callable[[], bool], limit_s: float) -> None:
    async with asyncio.timeout(limit_s):
        while not predicate():  # noqa: ASYNC110 - polls another thread's database writes
            await asyncio.sleep(0.05)


def _attempts(engine: Engine, msg_id: str) -> list[WebhookDelivery]:
    with Session(engine) as db:
        return list(db.scalars(select(WebhookDelivery).where(WebhookDelivery.message_id == msg_id)))


async def test_an_attempt_has_a_deadline_shorter_than_the_lease_and_never_runs_twice(
    engine: Engine, trickler: Trickler
) -> None:
    msg_id = put(engine, None, trickler.url)
    dispatcher = _dispatcher(
        engine, lease=dt.timedelta(seconds=2), attempt_deadline=dt.timedelta(seconds=1)
    )
    stop = asyncio.Event()
    task = asyncio.create_task(dispatcher.run(stop))
    try:
        # The lease runs out twice over: without a deadline the first attempt would still
        # be trickling and the same webhook would be claimed and sent again alongside.
        await _until(lambda: len(_attempts(engine, msg_id)) >= 3, 30)
    finally:
        stop.set()
        await task
    attempts = _attempts(engine, msg_id)
    assert all("deadline exceeded" in (a.error or "") for a in attempts)
    assert trickler.max_open == 1


async def test_a_slow_endpoint_cannot_take_the_slots_of_another(
    engine: Engine, trickler: Trickler, receiver: Receiver
) -> None:
    slow = [put(engine, None, trickler.url, session_id=f"slow{i}") for i in range(12)]
    fast = put(engine, None, receiver.url, session_id="fast")
    dispatcher = _dispatcher(
        engine,
        concurrency=4,
        per_endpoint_limit=2,
        lease=dt.timedelta(seconds=120),
        attempt_deadline=dt.timedelta(seconds=60),
    )
    stop = asyncio.Event()
    task = asyncio.create_task(dispatcher.run(stop))

    def delivered() -> bool:
        with Session(engine) as db:
            row = db.get(WebhookMessage, fast)
            return row is not None and row.status == MessageStatus.DELIVERED.value

    try:
        await _until(delivered, 30)
    finally:
        stop.set()
        await task
    assert trickler.max_open <= 2
    assert slow  # twelve queued for the slow endpoint, at most two ever sent at once
