"""The store work around a send runs off the event loop: the clients' secrets are read
once per claimed batch in the claiming thread, and the batch hook (``on_recorded``)
runs in the recording thread after the commit. A blocked loop stalls every send."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import pytest
from sqlalchemy import Engine
from standardwebhooks.webhooks import Webhook
from webhook_helpers import FakeClock, Receiver, put, status_of

from bioverify.webhooks.dispatcher import Dispatcher, DispatcherConfig
from bioverify.webhooks.egress import EgressGuard
from bioverify.webhooks.models import MessageStatus
from bioverify.webhooks.outbox import MessageView
from bioverify.webhooks.retry import RetryPolicy
from bioverify.webhooks.signing import new_webhook_secret
from support import on_loop

pytestmark = pytest.mark.anyio

LOOPBACK = EgressGuard(allow_private=True)


def make(engine: Engine, clock: FakeClock, **kw: Any) -> Dispatcher:
    kw.setdefault("secrets_for", lambda _client: pytest.fail("secrets_for was called"))
    return Dispatcher(
        engine,
        DispatcherConfig(guard=LOOPBACK, clock=clock, policy=RetryPolicy.for_tests(), **kw),
    )


async def test_secrets_are_read_once_per_batch_for_its_clients_off_the_loop(
    engine: Engine, clock: FakeClock, receiver: Receiver
) -> None:
    keys = {"c1": new_webhook_secret(), "c2": new_webhook_secret()}
    calls: list[tuple[list[str], bool]] = []

    def many(client_ids: Collection[str]) -> Mapping[str, Sequence[str]]:
        calls.append((sorted(client_ids), on_loop()))
        return {c: [keys[c]] for c in client_ids}

    sent = {
        put(engine, clock, receiver.url, client_id=client, session_id=f"s{i}"): client
        for i, client in enumerate(["c1", "c1", "c2", "c1", "c2"])
    }
    dispatcher = make(engine, clock, secrets_for_many=many)
    assert await dispatcher.run_once() == 5
    await dispatcher.aclose()
    assert calls == [(["c1", "c2"], False)]
    for request in receiver.requests:
        client = sent[request.headers["webhook-id"]]
        Webhook(keys[client]).verify(request.body, request.headers)


async def test_secrets_for_alone_is_called_off_the_loop_once_per_client(
    engine: Engine, clock: FakeClock, receiver: Receiver
) -> None:
    secret = new_webhook_secret()
    calls: list[tuple[str, bool]] = []

    def secrets_for(client_id: str) -> Sequence[str]:
        calls.append((client_id, on_loop()))
        return [secret]

    for i in range(3):
        put(engine, clock, receiver.url, client_id="c1", session_id=f"s{i}")
    dispatcher = make(engine, clock, secrets_for=secrets_for)
    assert await dispatcher.run_once() == 3
    await dispatcher.aclose()
    assert calls == [("c1", False)]
    assert len(receiver.requests) == 3


async def test_a_rotation_signs_every_message_claimed_after_it(
    engine: Engine, clock: FakeClock, receiver: Receiver
) -> None:
    old, new = new_webhook_secret(), new_webhook_secret()
    current = {"c1": [old]}
    dispatcher = make(engine, clock, secrets_for=lambda c: list(current[c]))
    put(engine, clock, receiver.url, client_id="c1", session_id="s1")
    assert await dispatcher.run_once() == 1
    current["c1"] = [new]  # rotated (the old one withdrawn) between two claims
    put(engine, clock, receiver.url, client_id="c1", session_id="s2")
    assert await dispatcher.run_once() == 1
    await dispatcher.aclose()
    first, second = receiver.requests
    Webhook(old).verify(first.body, first.headers)
    Webhook(new).verify(second.body, second.headers)
    with pytest.raises(Exception, match="No matching signature"):
        Webhook(old).verify(second.body, second.headers)


async def test_one_clients_unusable_secrets_fail_only_its_attempts(
    engine: Engine, clock: FakeClock, receiver: Receiver
) -> None:
    secret = new_webhook_secret()

    def many(client_ids: Collection[str]) -> Mapping[str, Sequence[str] | Exception]:
        return {c: [secret] if c == "c1" else ValueError("does not open") for c in client_ids}

    good = put(engine, clock, receiver.url, client_id="c1", session_id="s1")
    bad = [put(engine, clock, receiver.url, client_id="c2", session_id=f"s{i}") for i in (2, 3)]
    dispatcher = make(engine, clock, secrets_for_many=many)
    assert await dispatcher.run_once() == 3
    await dispatcher.aclose()
    assert [r.headers["webhook-id"] for r in receiver.requests] == [good]
    assert status_of(engine, good).status == MessageStatus.DELIVERED
    for msg_id in bad:
        failed = status_of(engine, msg_id)
        assert failed.status == MessageStatus.PENDING
        assert failed.last_error is not None
        assert failed.last_error.startswith("could not sign the webhook")


async def test_a_failing_batch_lookup_is_each_messages_failed_attempt(
    engine: Engine, clock: FakeClock, receiver: Receiver
) -> None:
    def many(client_ids: Collection[str]) -> Mapping[str, Sequence[str]]:
        raise ConnectionError("the store is down")

    msg_id = put(engine, clock, receiver.url, client_id="c1", session_id="s1")
    dispatcher = make(engine, clock, secrets_for_many=many)
    assert await dispatcher.run_once() == 1
    await dispatcher.aclose()
    assert receiver.requests == []
    failed = status_of(engine, msg_id)
    assert (failed.status, failed.attempts) == (MessageStatus.PENDING, 1)
    assert failed.last_error is not None
    assert failed.last_error.startswith("could not sign the webhook")


async def test_on_recorded_runs_off_the_loop_after_the_deliveries_committed(
    engine: Engine, receiver: Receiver
) -> None:
    secret = new_webhook_secret()
    ids = {put(engine, None, receiver.url, client_id="c1", session_id=f"s{i}") for i in range(12)}
    seen: list[tuple[str, str, bool, str]] = []
    lock = threading.Lock()
    all_seen = threading.Event()

    def recorded(views: Sequence[MessageView]) -> None:
        for view in views:
            stored = status_of(engine, view.id).status  # another connection: committed?
            with lock:
                seen.append((view.id, view.status, on_loop(), stored))
        if len(seen) >= len(ids):
            all_seen.set()

    dispatcher = Dispatcher(
        engine,
        DispatcherConfig(
            secrets_for=lambda _c: [secret],
            guard=LOOPBACK,
            concurrency=4,
            poll_interval=0.01,
            on_recorded=recorded,
        ),
    )
    stop = asyncio.Event()
    task = asyncio.create_task(dispatcher.run(stop))
    try:
        assert await asyncio.to_thread(all_seen.wait, 10)
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=5)
    assert sorted(s[0] for s in seen) == sorted(ids)
    assert {s[1:] for s in seen} == {("delivered", False, MessageStatus.DELIVERED)}
