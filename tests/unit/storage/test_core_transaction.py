"""``core_transaction``: a Core connection's unit of work commits or rolls back as a
whole, and its after-commit calls run only once it has committed."""

from __future__ import annotations

import pytest
from sqlalchemy import Column, Engine, MetaData, String, Table, func, insert, select

from bioverify.storage.database import after_commit, core_transaction

_META = MetaData()
_NOTES = Table("core_tx_notes", _META, Column("id", String(36), primary_key=True))


@pytest.fixture
def engine(db_engine: Engine) -> Engine:
    _META.create_all(db_engine)
    return db_engine


def _ids(engine: Engine) -> list[str]:
    with core_transaction(engine) as conn:
        return [str(i) for i in conn.scalars(select(_NOTES.c.id).order_by(_NOTES.c.id))]


def test_a_committed_transaction_calls_its_hooks_after_the_commit(engine: Engine) -> None:
    seen: list[list[str]] = []

    def hook() -> None:
        seen.append(_ids(engine))  # reads in a new transaction: the row is committed

    with core_transaction(engine) as conn:
        conn.execute(insert(_NOTES), {"id": "a"})
        after_commit(conn, hook)
        after_commit(conn, hook)  # the same hook twice: called once
        assert seen == []
    assert seen == [["a"]]


def test_a_failed_transaction_writes_nothing_and_never_calls_its_hooks(engine: Engine) -> None:
    called: list[str] = []

    def fail() -> None:
        with core_transaction(engine) as conn:
            conn.execute(insert(_NOTES), {"id": "b"})
            after_commit(conn, lambda: called.append("failed"))
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        fail()
    # The next transaction, likely on the same pooled connection, does not inherit them.
    with core_transaction(engine) as conn:
        conn.execute(insert(_NOTES), {"id": "c"})
    assert called == []
    assert _ids(engine) == ["c"]
    with core_transaction(engine) as conn:
        assert conn.scalar(select(func.count()).select_from(_NOTES)) == 1
