"""Fixtures for the webhook tests: a real loopback receiver, a SQLite file, a clock."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from webhook_helpers import FakeClock, Receiver

from bioverify.storage.base import Base
from bioverify.storage.database import make_engine
from bioverify.webhooks.models import TABLES


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.stop()


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    eng = make_engine(f"sqlite:///{tmp_path / 'outbox.db'}")
    Base.metadata.create_all(eng, tables=list(TABLES))
    yield eng
    eng.dispose()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
