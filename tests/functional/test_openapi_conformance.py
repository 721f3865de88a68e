"""The OpenAPI document describes the API: schemathesis with every check, zero failures.

Schemathesis (its own CLI, as an integrator would run it) generates requests from
``/openapi.json`` against the real app on loopback, authenticated as a real client,
and runs ``--checks all``: server errors, status codes, content types, headers and
bodies against their schemas, negative data rejected, positive data accepted,
required headers, ``Allow`` on 405, ignored auth, and the rest. The run must make at
least 5,000 test cases and report no failure at all (not only no 5xx).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi import FastAPI

from bioverify.config import Settings
from support import Creds, serve

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(1800),  # 5,000+ cases: minutes on a shared, loaded 2-core machine
    pytest.mark.parametrize("backend", ["sqlite"], indirect=True),
]

SCHEMATHESIS = str(Path(sys.executable).with_name("schemathesis"))
CONFIG = Path(__file__).resolve().parent.parent / "schemathesis.toml"
MIN_CASES = 5_000
#: Cases per operation; with the document's operations this makes more than MIN_CASES.
PER_OPERATION = int(os.environ.get("BIOVERIFY_SCHEMATHESIS_EXAMPLES", "260"))


def test_schemathesis_all_checks_find_no_failure(
    settings: Settings, make_app: Callable[..., FastAPI], creds: Creds, tmp_path: Path
) -> None:
    # Thousands of requests carry generated (wrong) credentials on purpose; the failure
    # throttle must not turn the run into 429s for the real client.
    cfg = settings.with_overrides(auth_failure_limit=10**9)
    report = tmp_path / "report.json"
    headers = [f"{name}: {value}" for name, value in creds.headers().items()]
    with serve(make_app(settings=cfg)) as client:
        result = subprocess.run(
            [
                SCHEMATHESIS,
                "--config-file",
                str(CONFIG),
                "run",
                f"{client.base_url}/openapi.json",
                "--checks",
                "all",
                "--max-examples",
                str(PER_OPERATION),
                "--workers",
                "2",
                "--seed",
                "13",
                "--generation-database",
                "none",
                "--no-color",
                "--suppress-health-check",
                "all",
                "--report",
                "json",
                "--report-json-path",
                str(report),
                *(arg for header in headers for arg in ("-H", header)),
            ],
            capture_output=True,
            text=True,
            timeout=1750,
            check=False,
            cwd=tmp_path,
        )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-8000:]
    generated = _generated_cases(output, report)
    assert generated >= MIN_CASES, output[-3000:]


def _generated_cases(output: str, report: Path) -> int:
    """The number of test cases schemathesis generated (from its summary line)."""
    found = re.search(r"Test cases:\s*\n?\s*([\d,]+) generated", output)
    if found:
        return int(found.group(1).replace(",", ""))
    data = json.loads(report.read_text())
    raise AssertionError(f"no test case count in the output; report keys: {sorted(data)}")
