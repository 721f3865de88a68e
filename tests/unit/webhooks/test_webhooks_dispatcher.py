"""The dispatcher against a real loopback receiver and a real SQLite file."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import socket
import threading
from collections.abc import Sequence
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine
from sqlalchemy.orm import Session
from standardwebhooks.webhooks import Webhook
from webhook_helpers import FakeClock, Receiver, Reply, put, status_of

from bioverify.webhooks import outbox
from bioverify.webhooks.dispatcher import FINAL_WAITS_AT_MOST, Dispatcher, DispatcherConfig
from bioverify.webhooks.egress import EgressGuard
from bioverify.webhooks.models import MessageStatus
from bioverify.webhooks.outbox import MessageView
from bioverify.webhooks.retry import RetryPolicy
from bioverify.webhooks.signing import new_webhook_secret, verify

pytestmark = pytest.mark.anyio

SECRET = new_webhook_secret()
LOOPBACK = EgressGuard(allow_private=True)


def make(engine: Engine, clock: FakeClock, **kw: Any) -> Dispatcher:
    kw.setdefault("policy", RetryPolicy.for_tests(attempts=5))
    kw.setdefault("guard", LOOPBACK)
    return Dispatcher(
        engine, DispatcherConfig(secrets_for=lambda client_id: [SECRET], clock=clock, **kw)
    )


async def drive(dispatcher: Dispatcher, clock: FakeClock, rounds: int) -> list[int]:
    """Run ``rounds`` passes, moving the clock a second between them."""
    sent = []
    for _ in range(rounds):
        sent.append(await dispatcher.run_once())
        clock.advance(1)
    await dispatcher.aclose()
    return sent


async def test_retries_keep_the_webhook_id_and_every_signature_verifies(
    engine: Engine, clock: FakeClock, receiver: Receiver
) -> None:
    receiver.script = [Reply(500), Reply(500), Reply(200)]
    msg_id = put(
        engine,
        clock,
        receiver.url,
        headers={"X-Tenant": "t1", "webhook-id": "forged", "Content-Type": "text/x"},
    )
    assert await drive(make(engine, clock), clock, 4) == [1, 1, 1, 0]

    assert [r.headers["webhook-id"] for r in receiver.requests] == [msg_id] * 3
    assert [r.headers["webhook-attempt"] for r in receiver.requests] == ["1", "2", "3"]
    for request in receiver.requests:
        assert Webhook(SECRET).verify(request.body, request.headers) == {"sessionId": "s1"}
        assert request.headers["x-tenant"] == "t1"
        assert request.headers["content-type"] == "application/json"
    assert status_of(engine, msg_id).status == MessageStatus.DELIVERED
    with Session(engine) as db:
        deliveries = outbox.list_deliveries(db, "s1")
    assert [d.http_status for d in deliveries] == [500, 500, 200]
    assert deliveries[0].next_retry_at is not None
    assert deliveries[-1].next_retry_at is None
    assert deliveries[0].as_json()["webhookId"] == msg_id


async def test_ed25519_signatures_ride_along_when_enabled(
    engine: Engine, clock: FakeClock, receiver: Receiver
) -> None:
    key = Ed25519PrivateKey.generate()
    put(engine, clock, receiver.url)
    await drive(make(engine, clock, signing_keys=lambda: [key]), clock, 1)
    request = receiver.requests[0]
    verify(request.body, request.headers, public_keys=[key.public_key()])
    assert "v1a," in request.headers["webhook-signature"]


async def test_410_stops_the_message_for_good(
    engine: Engine, clock: FakeClock, receiver: Receiver
) -> None:
    receiver.default = Reply(410)
    first = put(engine, clock, receiver.url)
    dispatcher = make(engine, clock)
    await dispatcher.run_once(limit=1)
    second = put(engine, clock, receiver.url, session_id="s2")
    other_endpoint = put(engine, clock, receiver.url + "/other", session_id="s3")
    receiver.default = Reply(200)
    assert await drive(dispatcher, clock, 3) == [2, 0, 0]
    assert status_of(engine, first).status == MessageStatus.STOPPED
    assert len(receiver.requests) == 3  # the stopped message was never retried
    # Sessions created after the 410 may use the endpoint again (it may be fixed).
    assert status_of(engine, second).status == MessageStatus.DELIVERED
    assert status_of(engine, other_endpoint).status == MessageStatus.DELIVERED


async def test_410_stops_messages_already_queued_for_that_endpoint(
    engine: Engine, clock: FakeClock, receiver: Receiver
) -> None:
    receiver.script = [Reply(500)]
    queued = put(engine, clock, receiver.url, session_id="s0")
    dispatcher = make(engine, clock)
    await dispatcher.run_once()  # s0 now waits for its retry
    receiver.default = Reply(410)
    gone = put(engine, clock, receiver.url)
    await dispatcher.run_once()
    await dispatcher.aclose()
    assert status_of(engine, gone).status == MessageStatus.STOPPED
    assert status_of(engine, queued).status == MessageStatus.STOPPED


async def test_429_retry_after_is_honoured_on_the_injected_clock(
    engine: Engine, clock: FakeClock, receiver: Receiver
) -> None:
    receiver.script = [Reply(429, {"Retry-After": "120"})]
    msg_id = put(engine, clock, receiver.url)
    dispatcher = make(engine, clock, policy=RetryPolicy())
    assert await dispatcher.run_once() == 1
    assert status_of(engine, msg_id).next_attempt_at == clock.now + dt.timedelta(seconds=120)
    clock.advance(119)
    assert await dispatcher.run_once() == 0
    clock.advance(2)
    assert await dispatcher.run_once() == 1
    await dispatcher.aclose()
    assert status_of(engine, msg_id).status == MessageStatus.DELIVERED


async def test_receiver_down_for_a_while_then_up_gets_the_webhook(
    engine: Engine, clock: FakeClock
) -> None:
    with socket.socket() as probe:  # a port nobody listens on (yet)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    msg_id = put(engine, clock, f"http://127.0.0.1:{port}/hook")
    dispatcher = make(engine, clock, policy=RetryPolicy.for_tests(attempts=6))
    for _ in range(3):
        assert await dispatcher.run_once() == 1
        clock.advance(1)
    with Session(engine) as db:
        errors_seen = [d.error for d in outbox.list_deliveries(db, "s1")]
    assert all(e and "ConnectError" in e for e in errors_seen)
    receiver = Receiver(port)
    try:
        assert await drive(dispatcher, clock, 2) == [1, 0]
    finally:
        receiver.stop()
    assert status_of(engine, msg_id).status == MessageStatus.DELIVERED
    assert receiver.requests[0].headers["webhook-attempt"] == "4"


async def test_dead_letter_after_the_last_attempt_calls_on_dead_once(
    engine: Engine, clock: FakeClock, receiver: Receiver
) -> None:
    receiver.default = Reply(500)
    dead: list[MessageView] = []

    async def alert(view: MessageView) -> None:
        dead.append(view)

    msg_id = put(engine, clock, receiver.url)
    dispatcher = make(engine, clock, policy=RetryPolicy.for_tests(attempts=3), on_dead=alert)
    assert await drive(dispatcher, clock, 5) == [1, 1, 1, 0, 0]
    assert status_of(engine, msg_id).status == MessageStatus.DEAD
    assert [(v.id, v.status, v.attempts, v.last_status) for v in dead] == [(msg_id, "dead", 3, 500)]
    with Session(engine) as db:
        assert [m.id for m in outbox.list_messages(db, failed_only=True)] == [msg_id]
        # An operator redelivers: same id, a fresh schedule.
        outbox.redeliver(db, "s1", "c1", now=clock.now)
        db.commit()
    receiver.default = Reply(200)
    assert await drive(dispatcher, clock, 1) == [1]
    assert receiver.requests[-1].headers["webhook-id"] == msg_id
    assert status_of(engine, msg_id).status == MessageStatus.DELIVERED


async def test_redirects_are_refused_and_count_as_failed_attempts(
    engine: Engine, clock: FakeClock, receiver: Receiver
) -> None:
    receiver.script = [Reply(302, {"Location": receiver.url + "/elsewhere"})]
    msg_id = put(engine, clock, receiver.url)
    await drive(make(engine, clock), clock, 1)
    assert [r.path for r in receiver.requests] == ["/hook"]
    row = status_of(engine, msg_id)
    assert row.status == MessageStatus.PENDING
    assert row.last_error is not None
    assert "redirect" in row.last_error


async def test_huge_response_bodies_are_not_read_past_the_cap(
    engine: Engine, clock: FakeClock, receiver: Receiver
) -> None:
    huge = 256 * 1024 * 1024
    receiver.script = [Reply(200, body_size=huge)]
    msg_id = put(engine, clock, receiver.url)
    await asyncio.wait_for(drive(make(engine, clock), clock, 1), timeout=20)
    assert status_of(engine, msg_id).status == MessageStatus.DELIVERED
    assert receiver.bytes_written < huge // 4


async def test_send_time_egress_check_blocks_dns_rebinding(
    engine: Engine, clock: FakeClock, receiver: Receiver
) -> None:
    answers = {"rebind.example": ["93.184.216.34"]}
    guard = EgressGuard(resolver=lambda host, port: answers[host])
    url = f"https://rebind.example:{receiver.port}/hook"
    guard.check_url(url)  # session create: the name looked public
    answers["rebind.example"] = ["127.0.0.1"]  # ...then it rebinds to loopback
    msg_id = put(engine, clock, url)
    await drive(make(engine, clock, guard=guard), clock, 1)
    assert receiver.requests == []
    row = status_of(engine, msg_id)
    assert row.last_error is not None
    assert "egress refused" in row.last_error


async def test_a_literal_internal_address_is_refused_at_send_time(
    engine: Engine, clock: FakeClock, receiver: Receiver
) -> None:
    # No name to resolve: the HTTP client would connect without asking any resolver,
    # so the literal address must be vetted before the request all the same.
    msg_id = put(engine, clock, receiver.url)  # http://127.0.0.1:<port>/hook
    await drive(make(engine, clock, guard=EgressGuard()), clock, 1)
    assert receiver.requests == []
    row = status_of(engine, msg_id)
    assert row.last_error is not None
    assert "egress refused" in row.last_error


async def test_connection_goes_to_the_vetted_address_with_the_original_host(
    engine: Engine, clock: FakeClock, receiver: Receiver
) -> None:
    guard = EgressGuard(allow_private=True, resolver=lambda host, port: ["127.0.0.1"])
    put(engine, clock, f"http://receiver.test:{receiver.port}/hook")
    await drive(make(engine, clock, guard=guard), clock, 1)
    assert receiver.requests[0].headers["host"] == f"receiver.test:{receiver.port}"


async def test_event_webhooks_go_before_the_sessions_final_one(
    engine: Engine, clock: FakeClock, receiver: Receiver
) -> None:
    event = put(
        engine, clock, receiver.url.replace("/hook", "/event"), kind="event", event="session.loaded"
    )
    final = put(engine, clock, receiver.url)
    dispatcher = make(engine, clock)
    assert await drive(dispatcher, clock, 2) == [1, 1]
    assert [r.path for r in receiver.requests] == ["/event", "/hook"]
    assert status_of(engine, event).status == status_of(engine, final).status == "delivered"


async def test_a_failing_event_webhook_does_not_hold_the_final_one(
    engine: Engine, clock: FakeClock, receiver: Receiver
) -> None:
    receiver.route = lambda path: (
        Reply(500)
        if path == "/event" and len([r for r in receiver.requests if r.path == "/event"]) == 1
        else None
    )
    event = put(
        engine, clock, receiver.url.replace("/hook", "/event"), kind="event", event="session.loaded"
    )
    final = put(engine, clock, receiver.url)
    dispatcher = make(engine, clock)
    assert sum(await drive(dispatcher, clock, 3)) == 3
    # The event was tried first; once it failed, the final one went out and the event
    # followed on its own schedule.
    assert receiver.requests[0].path == "/event"
    assert sorted(r.path for r in receiver.requests[1:]) == ["/event", "/hook"]
    assert status_of(engine, event).status == status_of(engine, final).status == "delivered"


async def test_a_final_webhook_waits_behind_a_silent_event_at_most_its_limit(
    engine: Engine, clock: FakeClock, receiver: Receiver
) -> None:
    event = put(
        engine, clock, receiver.url.replace("/hook", "/event"), kind="event", event="session.loaded"
    )
    final = put(engine, clock, receiver.url)
    stuck = make(engine, clock, lease=dt.timedelta(minutes=2))
    assert [c.id for c in stuck._claim(1)] == [event]  # in flight, never answered
    dispatcher = make(engine, clock)
    assert await dispatcher.run_once() == 0  # ordered: the final one waits
    clock.advance(FINAL_WAITS_AT_MOST.total_seconds())
    assert await dispatcher.run_once() == 1  # but not for the event's whole lease
    await dispatcher.aclose()
    assert [r.path for r in receiver.requests] == ["/hook"]
    assert status_of(engine, final).status == "delivered"


async def test_a_crashed_workers_claims_are_retried_after_the_lease(
    engine: Engine, clock: FakeClock, receiver: Receiver
) -> None:
    msg_id = put(engine, clock, receiver.url)
    crashed = make(engine, clock, lease=dt.timedelta(seconds=30))
    claimed = crashed._claim(10)  # claimed, then SIGKILLed before sending
    assert [c.id for c in claimed] == [msg_id]
    survivor = make(engine, clock)
    assert await survivor.run_once() == 0  # the lease still holds
    clock.advance(31)
    assert await survivor.run_once() == 1
    await survivor.aclose()
    assert receiver.requests[0].headers["webhook-id"] == msg_id
    assert receiver.requests[0].headers["webhook-attempt"] == "2"
    assert status_of(engine, msg_id).status == MessageStatus.DELIVERED


async def test_run_delivers_until_stopped(engine: Engine, receiver: Receiver) -> None:
    ids = [put(engine, None, receiver.url, session_id=f"s{i}") for i in range(20)]
    delivered: list[str] = []
    dispatcher = Dispatcher(
        engine,
        DispatcherConfig(
            secrets_for=lambda c: [SECRET],
            guard=LOOPBACK,
            concurrency=8,
            poll_interval=0.01,
            on_delivered=lambda view: delivered.append(view.id),
        ),
    )
    stop = asyncio.Event()
    task = asyncio.create_task(dispatcher.run(stop))
    for _ in range(500):
        if len(delivered) == len(ids):
            break
        await asyncio.sleep(0.01)
    stop.set()
    await asyncio.wait_for(task, timeout=5)
    assert sorted(delivered) == sorted(ids)
    assert sorted(r.headers["webhook-id"] for r in receiver.requests) == sorted(ids)


async def test_shutdown_releases_claims_it_could_not_finish(
    engine: Engine, receiver: Receiver
) -> None:
    # The receiver holds its answer until the test ends, so the send is in flight at stop.
    received = threading.Event()
    release = threading.Event()

    def hold(path: str) -> Reply:
        received.set()
        release.wait(timeout=30)
        return Reply()

    receiver.route = hold
    msg_id = put(engine, None, receiver.url)
    dispatcher = Dispatcher(
        engine,
        DispatcherConfig(
            secrets_for=lambda c: [SECRET],
            guard=LOOPBACK,
            poll_interval=0.01,
            shutdown_grace=0.05,
        ),
    )
    stop = asyncio.Event()
    task = asyncio.create_task(dispatcher.run(stop))
    try:
        assert await asyncio.to_thread(received.wait, 5)
        assert status_of(engine, msg_id).status == MessageStatus.DELIVERING
        stop.set()
        await asyncio.wait_for(task, timeout=5)
    finally:
        release.set()
    row = status_of(engine, msg_id)
    assert (row.status, row.claimed_by) == (MessageStatus.PENDING, None)


def test_missing_secret_is_a_failed_attempt_not_a_crash(
    engine: Engine, clock: FakeClock, receiver: Receiver
) -> None:
    msg_id = put(engine, clock, receiver.url)
    secrets: Sequence[str] = []
    dispatcher = Dispatcher(
        engine,
        DispatcherConfig(
            secrets_for=lambda c: secrets,
            guard=LOOPBACK,
            clock=clock,
            policy=RetryPolicy.for_tests(),
        ),
    )
    assert asyncio.run(drive(dispatcher, clock, 1)) == [1]
    row = status_of(engine, msg_id)
    assert receiver.requests == []
    assert row.status == MessageStatus.PENDING
    assert row.last_error is not None
    assert SECRET not in json.dumps(row.last_error)
