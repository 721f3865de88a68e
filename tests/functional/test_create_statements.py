"""What a create-session writes, and how: the session row and its audit entry (one
statement on PostgreSQL: one round trip); with an Idempotency-Key, the key's row too."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, event, func, select

from bioverify.audit.models import AuditEntry, AuditQueued
from bioverify.sessions.models import IdempotencyKey, SessionRow
from bioverify.storage.database import session_factory
from support import Creds

CREATE = "/v2/verification-session"
#: The create's own writes (the embedded sequencer writes audit tables meanwhile).
_WRITES = (
    "INSERT INTO sessions",
    "INSERT INTO audit_queue",
    "INSERT INTO idempotency_keys",
    "DELETE FROM idempotency_keys",
    "WITH first_insert",
)


def _writes_of(engine: Engine, send: Any) -> list[str]:
    """The create's writing statements during ``send()``."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().startswith(_WRITES):
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        send()
    finally:
        event.remove(engine, "before_cursor_execute", record)
    return seen


def _count(table: Any) -> Any:
    return select(func.count()).select_from(table).scalar_subquery()


def _counts(engine: Engine) -> tuple[int, int, int]:
    """Sessions, audit entries (queued or sequenced: the embedded sequencer moves them
    meanwhile), idempotency keys; one statement, so one snapshot."""
    with session_factory(engine)() as db:
        row = db.execute(
            select(
                _count(SessionRow),
                _count(AuditQueued) + _count(AuditEntry),
                _count(IdempotencyKey),
            )
        ).one()
    return int(row[0]), int(row[1]), int(row[2])


def test_a_create_writes_its_row_and_audit_entry_in_one_statement_on_postgresql(
    app_client: httpx.Client, creds: Creds, db_engine: Engine
) -> None:
    before = _counts(db_engine)

    def send() -> None:
        response = app_client.post(CREATE, json={"type": "ENROLL"}, headers=creds.headers())
        assert response.status_code == 201, response.text

    writes = _writes_of(db_engine, send)
    after = _counts(db_engine)
    assert (after[0] - before[0], after[1] - before[1]) == (1, 1)
    # PostgreSQL: one statement (a data-modifying CTE); SQLite: two INSERTs.
    assert len(writes) == (1 if db_engine.dialect.name == "postgresql" else 2)


def test_a_create_with_an_idempotency_key_writes_the_key_too(
    app_client: httpx.Client, creds: Creds, db_engine: Engine
) -> None:
    headers = {**creds.headers(), "Idempotency-Key": "key-1"}
    before = _counts(db_engine)
    first = app_client.post(CREATE, json={"type": "ENROLL"}, headers=headers)
    again = app_client.post(CREATE, json={"type": "ENROLL"}, headers=headers)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json()
    assert [after - was for after, was in zip(_counts(db_engine), before, strict=True)] == [1, 1, 1]


@pytest.mark.parametrize("body", [{"type": "NOPE"}, {"type": "VERIFY_ULTRA"}])
def test_a_refused_create_writes_nothing(
    app_client: httpx.Client, creds: Creds, db_engine: Engine, body: dict[str, str]
) -> None:
    before = _counts(db_engine)
    response = app_client.post(CREATE, json=body, headers=creds.headers())
    assert response.status_code == 400
    assert _counts(db_engine)[:2] == before[:2]
