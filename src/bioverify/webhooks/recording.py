"""Recording attempts: the delivery log, each message's new state, and what follows.

One transaction per batch of results: every attempt is a row of the delivery log;
delivered and rescheduled messages are updated in one statement; the rare outcomes
(dead-lettered, stopped by 410 Gone) one by one, firing their callbacks only for rows
this worker still held.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    Integer,
    String,
    bindparam,
    column,
    insert,
    text,
    update,
)

from bioverify.storage.base import UTCDateTime
from bioverify.webhooks.claiming import Claimed
from bioverify.webhooks.dispatch_config import DispatcherConfig
from bioverify.webhooks.models import MessageKind, MessageStatus, WebhookDelivery, WebhookMessage
from bioverify.webhooks.outbox import MessageView
from bioverify.webhooks.retry import Action

_M = WebhookMessage

#: A message whose callback is due, with the action that ended it (``None``: delivered).
Fired = tuple[MessageView, Action | None]


@dataclasses.dataclass(frozen=True, slots=True)
class Attempt:
    """The outcome of one send of a claimed message."""

    msg: Claimed
    at: dt.datetime
    status: int | None
    error: str | None
    headers: dict[str, str]
    latency_ms: int


def record(engine: Engine, config: DispatcherConfig, results: Sequence[Attempt]) -> list[Fired]:
    """Store the attempts and the messages' new states in one transaction; return
    callbacks to fire once it has committed."""
    with engine.begin() as conn:
        return record_with(conn, config, results)


def record_with(
    conn: Connection, config: DispatcherConfig, results: Sequence[Attempt]
) -> list[Fired]:
    """:func:`record` inside ``conn``'s transaction (callbacks only after it commits)."""
    deliveries: list[dict[str, Any]] = []
    done: list[dict[str, Any]] = []
    fired: list[Fired] = []
    finish = _finish_stmt(config.worker_id)
    for res in results:
        msg = res.msg
        decision = config.policy.classify(res.status, res.headers, now=res.at)
        delay = config.policy.delay_after(decision, msg.attempt - msg.schedule_base, config.rng)
        next_at = None if delay is None else res.at + delay
        deliveries.append(
            {
                "message_id": msg.id,
                "attempt": msg.attempt,
                "at": res.at,
                "http_status": res.status,
                "error": res.error,
                "latency_ms": res.latency_ms,
                "next_retry_at": next_at,
            }
        )
        if decision.action is Action.DELIVERED:
            status = MessageStatus.DELIVERED
        elif decision.action is Action.STOP_ENDPOINT:
            status = MessageStatus.STOPPED
        else:
            status = MessageStatus.PENDING if next_at else MessageStatus.DEAD
        values = {
            "b_id": msg.id,
            "b_status": status.value,
            "b_next": next_at or res.at,
            "b_last_status": res.status,
            "b_last_error": res.error,
            "b_delivered_at": res.at if status is MessageStatus.DELIVERED else None,
        }
        if status in (MessageStatus.DELIVERED, MessageStatus.PENDING):
            done.append(values)
            if status is MessageStatus.DELIVERED and (config.on_delivered or config.on_recorded):
                fired.append((view(res, status, next_at), None))
            continue
        # Rare outcomes: one statement each, and only fire callbacks for rows
        # this worker still held (a redelivery may have reset it meanwhile).
        if conn.execute(finish, values).rowcount:
            fired.append((view(res, status, next_at), decision.action))
        if status is MessageStatus.STOPPED:
            _stop_endpoint(conn, msg, res.at)
    if deliveries:
        # One executemany of one prebuilt INSERT: SQLite runs it in-process and
        # psycopg pipelines it (one round trip). A multi-row VALUES statement per batch
        # size was a new statement to build and compile for each size seen.
        conn.execute(_INSERT_DELIVERY, deliveries)
    if done:
        if conn.dialect.name == "postgresql":
            conn.execute(_finish_many_stmt(config.worker_id, len(done)), _flat(done))
        else:  # SQLite runs executemany in-process: no round trips to save
            conn.execute(finish, done)
    _wake_successors(conn, results)
    return fired


@functools.lru_cache(maxsize=16)
def _finish_stmt(worker_id: str) -> Any:
    # Built once per worker id: a batch is recorded several times a second.
    return (
        update(_M)
        .where(_M.id == bindparam("b_id"), _M.claimed_by == worker_id)
        .values(
            status=bindparam("b_status"),
            next_attempt_at=bindparam("b_next"),
            claimed_by=None,
            claimed_until=None,
            last_status=bindparam("b_last_status"),
            last_error=bindparam("b_last_error"),
            delivered_at=bindparam("b_delivered_at"),
        )
    )


#: The placeholders of :func:`_finish_many_stmt`'s VALUES rows.
_FINISH_COLUMNS = (
    column("b_id", String()),
    column("b_status", String()),
    column("b_next", UTCDateTime()),
    column("b_last_status", Integer()),
    column("b_last_error", String()),
    column("b_delivered_at", UTCDateTime()),
)


def _flat(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The parameters of a many-row statement: row i's ``key`` as ``r{i}_{key}``."""
    return {f"r{i}_{key}": value for i, row in enumerate(rows) for key, value in row.items()}


#: Built once: a batch is recorded several times a second.
_INSERT_DELIVERY = insert(WebhookDelivery)


def _many_stmt(sql: str, n: int, columns: Sequence[Any], row_sql: str) -> Any:
    # Written as text with named, typed placeholders: SQLAlchemy cannot cache a
    # multi-row VALUES construct, and compiling one per batch costs more than it saves.
    rows = ", ".join(row_sql.format(i=i) for i in range(n))
    binds = [bindparam(f"r{i}_{c.key}", type_=c.type) for i in range(n) for c in columns]
    return text(sql.format(rows=rows)).bindparams(*binds)


@functools.lru_cache(maxsize=128)
def _finish_many_stmt(worker_id: str, n: int) -> Any:
    """:func:`_finish_stmt` for ``n`` rows as ONE ``UPDATE ... FROM (VALUES ...)``
    (PostgreSQL): one statement for the server instead of one per row. Every
    value is cast, so a column of NULLs still has its column's type."""
    casts = (
        "CAST(:r{i}_b_id AS VARCHAR), CAST(:r{i}_b_status AS VARCHAR), "
        "CAST(:r{i}_b_next AS TIMESTAMP WITH TIME ZONE), CAST(:r{i}_b_last_status AS INTEGER), "
        "CAST(:r{i}_b_last_error AS VARCHAR), "
        "CAST(:r{i}_b_delivered_at AS TIMESTAMP WITH TIME ZONE)"
    )
    stmt = _many_stmt(  # only our own names and numbered placeholders in the text
        f"UPDATE {_M.__tablename__} SET status = v.b_status, next_attempt_at = v.b_next, "  # noqa: S608
        "claimed_by = NULL, claimed_until = NULL, last_status = v.b_last_status, "
        "last_error = v.b_last_error, delivered_at = v.b_delivered_at "
        "FROM (VALUES {rows}) AS v (b_id, b_status, b_next, b_last_status, b_last_error, "
        f"b_delivered_at) WHERE {_M.__tablename__}.id = v.b_id "
        f"AND {_M.__tablename__}.claimed_by = :worker_id",
        n,
        _FINISH_COLUMNS,
        "(" + casts + ")",
    )
    return stmt.bindparams(bindparam("worker_id", worker_id, type_=String()))


def _stop_endpoint(conn: Connection, msg: Claimed, at: dt.datetime) -> None:
    # 410 Gone: the receiver asked us to stop, so nothing else queued for the same
    # client and URL is retried either.
    conn.execute(
        update(_M)
        .where(
            _M.client_id == msg.client_id,
            _M.url == msg.url,
            _M.status == MessageStatus.PENDING.value,
        )
        .values(
            status=MessageStatus.STOPPED.value,
            last_error="endpoint answered 410 Gone",
            next_attempt_at=at,
        )
    )


def _wake_successors(conn: Connection, results: Sequence[Attempt]) -> None:
    # A final webhook parked behind its session's event is pulled forward once the
    # event has an outcome (claiming re-parks it if the event is still pending).
    sessions = {r.msg.session_id for r in results if r.msg.kind == MessageKind.EVENT}
    if sessions:
        at = min(r.at for r in results)
        conn.execute(
            update(_M)
            .where(
                _M.session_id.in_(sessions),
                _M.status == MessageStatus.PENDING.value,
                _M.next_attempt_at > at,
                _M.id.not_in([r.msg.id for r in results]),
            )
            .values(next_attempt_at=at)
        )


def view(res: Attempt, status: MessageStatus, next_at: dt.datetime | None) -> MessageView:
    """The message as callbacks see it after this attempt."""
    m = res.msg
    return MessageView(
        m.id,
        m.session_id,
        m.client_id,
        m.kind,
        m.event,
        m.url,
        status.value,
        m.attempt,
        m.created_at,
        next_at or res.at,
        res.status,
        res.error,
        res.at if status is MessageStatus.DELIVERED else None,
    )


__all__ = ["Attempt", "Fired", "record", "record_with", "view"]
