"""``mypy --strict`` accepts real SDK usage and rejects misuse (tests/typing/sdk_usage.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
ROOT = HERE.parent.parent


def run_mypy(target: Path, cache: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(cache), str(target)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def mypy_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("mypy-cache")


def test_sdk_usage_type_checks_strictly(mypy_cache: Path) -> None:
    result = run_mypy(HERE / "sdk_usage.py", mypy_cache)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_type_error_in_sdk_usage_is_reported(mypy_cache: Path, tmp_path: Path) -> None:
    # Guards the guard: the same run must fail when the usage gets the types wrong.
    broken = tmp_path / "sdk_broken.py"
    broken.write_text(
        "from bioverify.client import Client\n"
        "def f(c: Client) -> int:\n"
        "    return c.get_session('s').launch_url\n"
    )
    result = run_mypy(broken, mypy_cache)
    assert result.returncode == 1
    assert 'Incompatible return value type (got "str | None", expected "int")' in result.stdout
