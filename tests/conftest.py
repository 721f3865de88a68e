"""Fixtures shared by every test layer."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine

from bioverify.api.app import create_app
from bioverify.config import Settings
from support import (
    Creds,
    FakeClock,
    drop_schema_of,
    fresh_database_url,
    make_client,
    migrated,
    serve,
)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str:
    """Each test using it runs once on SQLite and once on the real PostgreSQL."""
    return str(request.param)


@pytest.fixture
def database_url(backend: str, tmp_path: Path) -> Iterator[str]:
    url = fresh_database_url(backend, tmp_path)
    yield url
    drop_schema_of(url)


@pytest.fixture
def db_engine(database_url: str) -> Iterator[Engine]:
    engine = migrated(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(data_dir=tmp_path / "data", database_url=database_url,
                    public_url="http://testserver", allow_private_callbacks=True,
                    auth_failure_limit=5, auth_failure_window_s=60, max_body_bytes=64 * 1024)


@pytest.fixture
def app_client(settings: Settings, db_engine: Engine, clock: FakeClock) -> Iterator[httpx.Client]:
    """The real app over real HTTP (uvicorn on loopback)."""
    app = create_app(settings, db_engine=db_engine, clock=clock)
    with serve(app) as client:
        yield client


@pytest.fixture
def creds(db_engine: Engine) -> Creds:
    return make_client(db_engine)
