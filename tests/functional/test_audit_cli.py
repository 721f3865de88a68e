"""``bioverify audit verify|prove|export`` on a log written by real sessions."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import httpx
from fastapi import FastAPI
from sqlalchemy import Engine, select, update
from test_capture_protocol import Capture
from typer.testing import CliRunner

from bioverify.audit.models import AuditEntry
from bioverify.cli.main import app as cli
from bioverify.config import Settings
from bioverify.crypto.keyring import KeyRing
from bioverify.worker import Worker
from support import Creds, make_client, serve

CREATE = "/v2/verification-session"


def _env(settings: Settings) -> dict[str, str]:
    return {
        "BIOVERIFY_DATA_DIR": str(settings.data_dir),
        "BIOVERIFY_DATABASE_URL": settings.resolved_database_url,
    }


def _some_sessions(client: httpx.Client, creds: Creds) -> None:
    for _ in range(3):
        made = client.post(
            CREATE, json={"type": "ENROLL", "liveness": "passive"}, headers=creds.headers()
        ).json()
        capture = Capture(client, made["launchUrl"])
        capture.load()
        capture.events(-20)
        capture.events(-7)


def test_verify_passes_then_names_the_tampered_entry(
    settings: Settings, make_app: Callable[..., FastAPI], db_engine: Engine
) -> None:
    ring = KeyRing.load_or_create(settings.keys_dir)
    # The client's secrets are sealed under this ring's master key, as `clients create`
    # would seal them (a client sealed under another master key makes the app not ready).
    creds = make_client(db_engine, keyring=ring)
    # A worker sequences the log (on SQLite the server alone would too).
    with serve(make_app(keyring=ring, run_worker=True, worker_factory=Worker)) as client:
        _some_sessions(client, creds)
    runner = CliRunner()
    proved = runner.invoke(cli, ["audit", "prove", "2"], env=_env(settings))
    assert proved.exit_code == 0, proved.output
    proof = json.loads(proved.stdout)
    assert proof["receipt"]["index"] == 2
    ok = runner.invoke(cli, ["audit", "verify", "--quiet"], env=_env(settings))
    assert ok.exit_code == 0, ok.output
    assert "entries" in ok.output

    with db_engine.begin() as conn:
        body = conn.scalar(select(AuditEntry.body).where(AuditEntry.idx == 5))
        assert body is not None
        tampered = bytes(body).replace(b"session:", b"sessiOn:", 1)
        conn.execute(update(AuditEntry).where(AuditEntry.idx == 5).values(body=tampered))
    bad = runner.invoke(cli, ["audit", "verify", "--quiet"], env=_env(settings))
    assert bad.exit_code == 1
    assert "entry 5" in bad.output


def test_export_writes_entries_and_checkpoints(
    settings: Settings, make_app: Callable[..., FastAPI], db_engine: Engine, tmp_path: Path
) -> None:
    ring = KeyRing.load_or_create(settings.keys_dir)
    creds = make_client(db_engine, keyring=ring)
    with serve(make_app(keyring=ring, run_worker=True, worker_factory=Worker)) as client:
        _some_sessions(client, creds)
    runner = CliRunner()
    assert runner.invoke(cli, ["audit", "prove", "0"], env=_env(settings)).exit_code == 0
    out = tmp_path / "audit.jsonl"
    result = runner.invoke(cli, ["audit", "export", "--out", str(out)], env=_env(settings))
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    kinds = {line["type"] for line in lines}
    assert kinds == {"entry", "checkpoint"}
    entries = [line for line in lines if line["type"] == "entry"]
    assert [e["index"] for e in entries] == list(range(len(entries)))
    # No secrets or raw identifiers in any entry.
    text = out.read_text()
    assert creds.api_key not in text and (creds.client_secret or "x") not in text
