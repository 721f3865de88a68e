"""Fixtures of the reliability tests (fault injection, fuzzing, security)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import Processes, processes


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Processes]:
    """Service processes started by one test; every survivor is killed at teardown."""
    with processes(tmp_path) as registry:
        yield registry
