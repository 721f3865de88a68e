"""PostgreSQL: many dispatchers share one outbox and never send a message twice."""

from __future__ import annotations

import asyncio
import secrets
from collections import Counter
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, create_engine, select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session
from webhook_helpers import Receiver, Reply

from bioverify.storage.base import Base
from bioverify.webhooks import outbox
from bioverify.webhooks.dispatcher import Dispatcher, DispatcherConfig
from bioverify.webhooks.egress import EgressGuard
from bioverify.webhooks.models import TABLES, MessageStatus, WebhookDelivery, WebhookMessage
from bioverify.webhooks.retry import RetryPolicy
from bioverify.webhooks.signing import new_webhook_secret

pytestmark = [pytest.mark.postgres, pytest.mark.anyio]

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
SECRET = new_webhook_secret()


@pytest.fixture
def pg_engine() -> Iterator[Engine]:
    schema = "webhooks_test_" + secrets.token_hex(4)
    admin = create_engine(PG_URL, connect_args={"connect_timeout": 3})
    try:
        with admin.begin() as conn:
            conn.execute(text(f"CREATE SCHEMA {schema}"))
    except OperationalError as exc:
        admin.dispose()
        pytest.skip(f"PostgreSQL not reachable at {PG_URL}: {type(exc).__name__}")
    # Our own schema: the tables never meet other tests' tables of the same name.
    engine = create_engine(PG_URL, connect_args={"options": f"-csearch_path={schema}"})
    Base.metadata.create_all(engine, tables=list(TABLES))
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def _fill(engine: Engine, url: str, count: int) -> set[str]:
    with Session(engine) as db:
        ids = {
            outbox.enqueue(
                db, session_id=f"s{i}", client_id="c1", url=url, headers={}, payload={"n": i}
            )
            for i in range(count)
        }
        db.commit()
    return ids


def _dispatcher(engine: Engine) -> Dispatcher:
    return Dispatcher(
        engine,
        DispatcherConfig(
            secrets_for=lambda c: [SECRET],
            policy=RetryPolicy.for_tests(),
            guard=EgressGuard(allow_private=True),
            concurrency=16,
        ),
    )


def test_skip_locked_hands_each_row_to_one_claimer(pg_engine: Engine) -> None:
    ids = _fill(pg_engine, "http://127.0.0.1:9/hook", 20)
    first, second = _dispatcher(pg_engine), _dispatcher(pg_engine)
    with pg_engine.connect() as conn, conn.begin():
        held = {c.id for c in first.claim_with(conn, 6)}
        # The first claimer has not committed: the second must skip, not wait.
        taken = {c.id for c in second._claim(10)}
    assert len(held) == 6
    assert taken  # not blocked behind the open transaction
    assert not held & taken
    rest = {c.id for c in second._claim(20)}
    assert held | taken | rest == ids
    assert not rest & (held | taken)


async def test_two_dispatchers_never_double_send(pg_engine: Engine, receiver: Receiver) -> None:
    ids = _fill(pg_engine, receiver.url, 300)
    dispatchers = [_dispatcher(pg_engine), _dispatcher(pg_engine)]

    async def drain(d: Dispatcher) -> int:
        total = 0
        while sent := await d.run_once():
            total += sent
        await d.aclose()
        return total

    totals = await asyncio.gather(*(drain(d) for d in dispatchers))
    with Session(pg_engine) as db:
        errors = list(
            db.scalars(select(WebhookDelivery.error).where(WebhookDelivery.error.is_not(None)))
        )
    assert errors == []
    seen = Counter(r.headers["webhook-id"] for r in receiver.requests)
    assert set(seen) == ids
    assert max(seen.values()) == 1
    assert sum(totals) == 300
    assert min(totals) > 0  # both really worked the queue
    with Session(pg_engine) as db:
        statuses = set(db.scalars(select(WebhookMessage.status)))
    assert statuses == {MessageStatus.DELIVERED.value}


def _enqueue(engine: Engine, urls: dict[str, str]) -> None:
    """One message per session id, to its URL."""
    with Session(engine) as db:
        for session_id, url in urls.items():
            outbox.enqueue(
                db, session_id=session_id, client_id="c1", url=url, headers={}, payload={}
            )
        db.commit()


async def test_a_batch_of_mixed_outcomes_is_recorded_row_by_row(
    pg_engine: Engine, receiver: Receiver
) -> None:
    # A batch's new states are written by one UPDATE ... FROM (VALUES ...) on
    # PostgreSQL: each row must get its own outcome, and a column that is NULL in
    # every row (no delivery yet) must still be written.
    receiver.route = lambda path: Reply(status=503) if path.endswith("/fail") else None
    failing = receiver.url + "/fail"
    dispatcher = Dispatcher(
        pg_engine,
        DispatcherConfig(
            secrets_for=lambda c: [SECRET],
            policy=RetryPolicy(),  # retries far off: a failed message is not due again here
            guard=EgressGuard(allow_private=True),
        ),
    )
    _enqueue(pg_engine, {"f0": failing, "f1": failing, "f2": failing})
    assert await dispatcher.run_once() == 3
    _enqueue(pg_engine, {"m0": receiver.url, "m1": failing, "m2": receiver.url})
    assert await dispatcher.run_once() == 3
    await dispatcher.aclose()

    with Session(pg_engine) as db:
        rows = {m.session_id: m for m in db.scalars(select(WebhookMessage))}
        log = list(db.scalars(select(WebhookDelivery)))
    assert len(receiver.requests) == 6
    for sid in ("f0", "f1", "f2", "m1"):
        msg = rows[sid]
        assert msg.status == MessageStatus.PENDING.value
        assert (msg.last_status, msg.delivered_at, msg.claimed_by) == (503, None, None)
        assert msg.next_attempt_at > msg.created_at
    for sid in ("m0", "m2"):
        msg = rows[sid]
        assert msg.status == MessageStatus.DELIVERED.value
        assert (msg.last_status, msg.last_error, msg.claimed_by) == (200, None, None)
        assert msg.delivered_at is not None
    assert sorted((d.http_status, d.next_retry_at is None) for d in log) == [
        (200, True),
        (200, True),
        *[(503, False)] * 4,
    ]


async def test_a_sessions_event_goes_before_its_final_one(
    pg_engine: Engine, receiver: Receiver
) -> None:
    # PostgreSQL claims look up a candidate's session in a second statement: the
    # session's order must hold there as it does in SQLite's joined one.
    with Session(pg_engine) as db:
        event = outbox.enqueue(
            db,
            session_id="s1",
            client_id="c1",
            url=receiver.url.replace("/hook", "/event"),
            headers={},
            payload={"n": 1},
            kind="event",
            event="session.loaded",
        )
        final = outbox.enqueue(
            db, session_id="s1", client_id="c1", url=receiver.url, headers={}, payload={"n": 2}
        )
        other = outbox.enqueue(
            db, session_id="s2", client_id="c1", url=receiver.url, headers={}, payload={"n": 3}
        )
        db.commit()
    dispatcher = _dispatcher(pg_engine)
    assert await dispatcher.run_once() == 2  # the event and s2's final; s1's final waits
    assert await dispatcher.run_once() == 1
    await dispatcher.aclose()
    ids = [r.headers["webhook-id"] for r in receiver.requests]
    assert sorted(ids[:2]) == sorted([event, other])
    assert ids[2] == final
