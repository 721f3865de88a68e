"""The outbox joins the caller's transaction; redelivery keeps the webhook-id."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from bioverify import errors
from bioverify.webhooks import outbox
from bioverify.webhooks.models import MessageStatus, WebhookMessage

NOW = dt.datetime(2025, 4, 1, 12, 0, tzinfo=dt.UTC)
PAYLOAD = {"sessionId": "s1", "status": "SUCCESS", "message": "Vérifié"}


def _enqueue(db: Session, session_id: str = "s1", **kw: object) -> str:
    args: dict[str, object] = {
        "session_id": session_id,
        "client_id": "c1",
        "url": "https://hooks.example.com/cb",
        "headers": {"X-Tenant": "t1"},
        "payload": PAYLOAD,
        "now": NOW,
    }
    args.update(kw)
    return outbox.enqueue(db, **args)  # type: ignore[arg-type]


def test_enqueue_is_part_of_the_callers_transaction(engine: Engine) -> None:
    with Session(engine) as db:
        _enqueue(db)
        db.rollback()
    with Session(engine) as db:
        assert db.scalars(select(WebhookMessage)).all() == []
        msg_id = _enqueue(db)
        db.commit()
    with Session(engine) as db:
        row = db.get(WebhookMessage, msg_id)
        assert row is not None
        assert msg_id.startswith("msg_")
        assert row.status == MessageStatus.PENDING
        assert row.next_attempt_at == NOW
        assert json.loads(row.payload) == PAYLOAD
        assert outbox.final_payload(db, "s1") == PAYLOAD
        assert outbox.final_payload(db, "other") is None


def test_sequence_orders_a_sessions_messages(engine: Engine) -> None:
    with Session(engine) as db:
        first = _enqueue(db, kind="event", event="session.loaded", payload={"event": "x"})
        final = _enqueue(db)
        _enqueue(db, session_id="s2")
        db.commit()
        seq = {m.id: m.sequence for m in db.scalars(select(WebhookMessage))}
    assert seq[first] < seq[final]


def test_kind_and_event_must_agree(engine: Engine) -> None:
    with Session(engine) as db:
        with pytest.raises(ValueError, match="event"):
            _enqueue(db, kind="event")
        with pytest.raises(ValueError, match="kind"):
            _enqueue(db, kind="other")


def test_redeliver_keeps_the_id_and_makes_it_due(engine: Engine) -> None:
    with Session(engine) as db:
        msg_id = _enqueue(db)
        db.commit()
        row = db.get(WebhookMessage, msg_id)
        assert row is not None
        row.status, row.attempts = MessageStatus.DEAD.value, 7
        db.commit()
        later = NOW + dt.timedelta(days=4)
        assert outbox.redeliver(db, "s1", "c1", now=later) == msg_id
        db.commit()
        db.expire_all()
        row = db.get(WebhookMessage, msg_id)
        assert row is not None
        assert (row.status, row.next_attempt_at, row.schedule_base) == ("pending", later, 7)
        assert [m.id for m in outbox.list_messages(db, failed_only=True)] == []
        with pytest.raises(errors.NotFound):
            outbox.redeliver(db, "s1", "another-client")
