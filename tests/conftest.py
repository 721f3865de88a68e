"""Fixtures shared by every test layer."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import HealthCheck
from hypothesis import core as hypothesis_core
from hypothesis import settings as hypothesis_settings
from sqlalchemy import Engine

import support
from bioverify.api.app import create_app
from bioverify.config import Settings
from bioverify.crypto.keyring import KeyRing
from bioverify.engine.interfaces import Engine as BioEngine
from bioverify.engine.pool import PoolEngine
from bioverify.observability import configure_logging
from support import (
    Creds,
    FakeClock,
    drop_schema_of,
    fresh_database_url,
    make_client,
    migrated,
    serve,
)

# Hypothesis profiles: "ci" (the default) keeps each property test's example count but
# drops the per-example deadline (a shared, loaded CI machine is not a benchmark);
# "thorough" runs thousands of examples per property, bounded by the run's timeout.
#   pytest --hypothesis-profile thorough
hypothesis_settings.register_profile(
    "ci", deadline=None, print_blob=True, suppress_health_check=[HealthCheck.too_slow]
)
hypothesis_settings.register_profile(
    "thorough",
    max_examples=5_000,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """One Hypothesis seed for the whole run, chosen here unless given, so that any
    failure replays with ``--hypothesis-seed=N`` (printed at the start and the end)."""
    seed = config.getoption("--hypothesis-seed", default=None)
    if seed is None:
        seed = str(secrets.randbelow(2**32))
        config.option.hypothesis_seed = seed
    hypothesis_core.global_force_seed = int(seed) if str(seed).isdigit() else seed
    config.stash[_SEED] = str(seed)


_SEED = pytest.StashKey[str]()


def _seed_line(config: pytest.Config) -> str:
    seed = config.stash.get(_SEED, "?")
    return (
        f"Hypothesis seed: {seed} (replay with: make test PYTEST_ARGS='--hypothesis-seed={seed}')"
    )


def pytest_report_header(config: pytest.Config) -> str:
    return _seed_line(config)


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    terminalreporter.write_line(_seed_line(config))


@pytest.fixture(scope="session", autouse=True)
def service_log(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Every log line the service writes during the run, kept for the privacy scan."""
    path = tmp_path_factory.getbasetemp() / "service.log"
    with path.open("a", encoding="utf-8") as stream:
        configure_logging("debug", stream=stream)
        handler = logging.StreamHandler(stream)
        logging.getLogger().addHandler(handler)
        try:
            yield path
        finally:
            logging.getLogger().removeHandler(handler)
            configure_logging("info")


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
    return Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        public_url="http://testserver",
        allow_private_callbacks=True,
        auth_failure_limit=5,
        auth_failure_window_s=60,
        max_body_bytes=2 * 1024 * 1024,
    )


@pytest.fixture(scope="session", autouse=True)
def keyring(tmp_path_factory: pytest.TempPathFactory) -> KeyRing:
    """One key ring for the run (RSA-3072 generation is slow); tests never rotate it."""
    ring = KeyRing.load_or_create(tmp_path_factory.mktemp("keys") / "keys")
    support.TEST_KEYRING[:] = [ring]
    return ring


@pytest.fixture(scope="session")
def bio_engine() -> Iterator[BioEngine]:
    """The real models (YuNet + SFace), loaded once, inference in a thread."""
    engine = PoolEngine(workers=0)
    yield engine
    asyncio.run(engine.close())


@pytest.fixture
def make_app(
    settings: Settings, db_engine: Engine, clock: FakeClock, keyring: KeyRing, bio_engine: BioEngine
) -> Callable[..., FastAPI]:
    """Build the real app with the test's store, clock, keys and engine (overridable)."""

    def build(**overrides: Any) -> FastAPI:
        options: dict[str, Any] = {
            "db_engine": db_engine,
            "clock": clock,
            "keyring": keyring,
            "bio_engine": bio_engine,
        }
        options.update(overrides)
        cfg = options.pop("settings", settings)
        return create_app(cfg, **options)

    return build


@pytest.fixture
def app_client(make_app: Callable[..., FastAPI]) -> Iterator[httpx.Client]:
    """The real app over real HTTP (uvicorn on loopback)."""
    app = make_app()
    with serve(app) as client:
        yield client


@pytest.fixture
def creds(db_engine: Engine, keyring: KeyRing) -> Creds:
    return make_client(db_engine)
