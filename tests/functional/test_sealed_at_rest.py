"""Callback headers are sealed at rest, and the data directory is private (review
item 13): the store never holds an integrator's Authorization header in plain text,
yet the webhook still carries it; `bioverify migrate` tightens a loose data dir."""

from __future__ import annotations

import datetime as dt
import os
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from sqlalchemy import Engine, text
from test_webhooks_e2e import fail_session

from bioverify.config import Settings
from bioverify.worker import Worker
from support import Creds, Receiver, migrated, serve

SECRET = "Bearer integrator-credential-0123456789"


def test_callback_headers_are_sealed_in_the_store_and_sent_in_the_webhook(
    settings: Settings, make_app: Callable[..., FastAPI], creds: Creds, db_engine: Engine
) -> None:
    fast = settings.with_overrides(webhook_test_schedule=True, sweep_interval_s=0.1)
    app = make_app(
        settings=fast,
        run_worker=True,
        worker_factory=Worker,
        clock=lambda: dt.datetime.now(dt.UTC),
    )
    with Receiver() as receiver, serve(app) as client:
        fail_session(
            client,
            creds,
            receiver.url,
            callback={"url": receiver.url, "headers": {"Authorization": SECRET}},
        )
        hook = receiver.wait_for(1)[0]
    assert hook.headers["authorization"] == SECRET
    with db_engine.connect() as conn:
        stored: list[Any] = [
            *conn.execute(text("SELECT callback_headers FROM sessions")).scalars(),
            *conn.execute(text("SELECT headers FROM webhook_outbox")).scalars(),
        ]
    assert stored and all("integrator-credential" not in str(value) for value in stored)
    assert all("sealed" in str(value) for value in stored)


def test_migrate_tightens_an_existing_data_directory(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    data.chmod(0o755)
    database = data / "bioverify.sqlite3"
    migrated(f"sqlite:///{database}").dispose()
    database.chmod(0o644)
    env = {k: v for k, v in os.environ.items() if not k.startswith("BIOVERIFY_")}
    env["BIOVERIFY_DATA_DIR"] = str(data)
    done = subprocess.run(
        [str(Path(sys.executable).parent / "bioverify"), "migrate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    for path in data.glob("bioverify.sqlite3*"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
