"""Fixtures for the crypto tests: one generated key ring, copied per test (RSA keygen is slow)."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest

from bioverify.crypto import KeyRing

T0 = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)


class FakeClock:
    """A settable clock for key grace periods."""

    def __init__(self, now: dt.datetime = T0) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, delta: dt.timedelta) -> None:
        self.now += delta


@pytest.fixture(scope="session")
def template_keys_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    keys = tmp_path_factory.mktemp("template") / "keys"
    KeyRing.load_or_create(keys, clock=FakeClock())
    return keys


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def keys_dir(tmp_path: Path, template_keys_dir: Path) -> Path:
    """A fresh copy of the template ring (modes preserved)."""
    dest = tmp_path / "keys"
    shutil.copytree(template_keys_dir, dest)
    return dest


@pytest.fixture
def ring(keys_dir: Path, clock: FakeClock) -> KeyRing:
    return KeyRing.load_or_create(keys_dir, clock=clock)


@pytest.fixture(scope="module")
def shared_ring(template_keys_dir: Path) -> KeyRing:
    """A read-only ring for Hypothesis tests (which cannot use per-test fixtures)."""
    return KeyRing.load_or_create(template_keys_dir, clock=FakeClock())
