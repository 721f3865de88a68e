"""Fixtures for the engine tests: one real engine per test session."""

from __future__ import annotations

import pytest

from bioverify.engine import LocalEngine


@pytest.fixture(scope="session")
def engine() -> LocalEngine:
    """The real models and the shipped thresholds (loading takes ~0.3 s)."""
    return LocalEngine()
