"""PostgreSQL: a pooled connection that died while idle is replaced before use, so the
request it was handed to is served (no 503), while one in constant use is not pinged."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy import Engine, text

from bioverify.storage.database import make_engine, session_factory, transaction
from support import PG_ADMIN_URL

pytestmark = [pytest.mark.postgres, pytest.mark.parametrize("backend", ["postgres"], indirect=True)]


@pytest.fixture
def pinging(database_url: str) -> Iterator[Engine]:
    """An engine whose every reused connection counts as idle (no waiting in tests)."""
    engine = make_engine(database_url, pool_size=1, ping_idle_s=0.0)
    yield engine
    engine.dispose()


def _backend_pid(engine: Engine) -> int:
    with transaction(session_factory(engine)) as db:
        return int(db.scalar(text("SELECT pg_backend_pid()")) or 0)


def test_a_connection_killed_while_idle_is_replaced_before_use(pinging: Engine) -> None:
    first = _backend_pid(pinging)
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (first,))
    second = _backend_pid(pinging)  # would be a 503 without the ping
    assert second != first


def test_a_connection_just_used_is_not_pinged(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = make_engine(database_url, pool_size=1, ping_idle_s=3600.0)
    pings: list[object] = []
    monkeypatch.setattr(engine.dialect, "do_ping", lambda conn: pings.append(conn) or True)
    try:
        before = _backend_pid(engine)
        assert _backend_pid(engine) == before  # the same connection, reused as is
    finally:
        engine.dispose()
    assert pings == []
