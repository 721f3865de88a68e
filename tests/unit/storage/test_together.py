"""Two INSERTs of one transaction: one statement on PostgreSQL, two on SQLite, the same
rows either way (column defaults included), and a duplicate key in either fails both."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    event,
    func,
    select,
)
from sqlalchemy.exc import IntegrityError

from bioverify.storage.database import session_factory, transaction
from bioverify.storage.together import insert_both

_META = MetaData()
_THINGS = Table(
    "together_things",
    _META,
    Column("id", String(36), primary_key=True),
    Column("name", String(32)),
    Column("flag", Boolean, default=True),
)
_LOG = Table(
    "together_log",
    _META,
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True),
    Column("thing", String(36), unique=True),
    Column("note", String(32), default="none"),
)


@pytest.fixture
def tables(db_engine: Engine) -> Engine:
    _META.create_all(db_engine)
    return db_engine


def _both(engine: Engine, thing: str, *, log_thing: str | None = None) -> int:
    with transaction(session_factory(engine)) as db:
        return int(
            insert_both(
                db,
                (_THINGS, {"id": thing, "name": "a name"}),
                (_LOG, {"thing": log_thing or thing}),
                returning=_LOG.c.id,
            )
        )


def _count(engine: Engine, table: Table) -> int:
    with transaction(session_factory(engine)) as db:
        return int(db.scalar(select(func.count()).select_from(table)) or 0)


def test_both_rows_land_with_their_defaults_and_the_returned_id(tables: Engine) -> None:
    first = _both(tables, "t1")
    second = _both(tables, "t2")
    assert second > first
    with transaction(session_factory(tables)) as db:
        things = db.execute(select(_THINGS).order_by(_THINGS.c.id)).all()
        log = db.execute(select(_LOG).order_by(_LOG.c.id)).all()
    assert [tuple(row) for row in things] == [("t1", "a name", True), ("t2", "a name", True)]
    assert [tuple(row) for row in log] == [(first, "t1", "none"), (second, "t2", "none")]


@pytest.mark.parametrize(
    ("thing", "log_thing"),
    [("t1", "other"), ("t2", "t1")],
    ids=["in the leading row", "in the following row"],
)
def test_a_duplicate_key_in_either_row_inserts_neither(
    tables: Engine, thing: str, log_thing: str
) -> None:
    _both(tables, "t1")
    with pytest.raises(IntegrityError):
        _both(tables, thing, log_thing=log_thing)
    assert (_count(tables, _THINGS), _count(tables, _LOG)) == (1, 1)


def test_one_statement_on_postgresql_two_on_sqlite(tables: Engine) -> None:
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(str(args[2]))

    event.listen(tables, "before_cursor_execute", count)
    try:
        _both(tables, "t1")
    finally:
        event.remove(tables, "before_cursor_execute", count)
    inserts = [s for s in statements if "INSERT" in s.upper()]
    assert len(inserts) == (1 if tables.dialect.name == "postgresql" else 2)
