"""The CLI contract (API.md section 6), each command run as an operator runs it: a process.

0 success, 1 failure, 2 usage error; a failure prints one line on standard error and
no traceback (a traceback only with ``--verbose``).
"""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi import FastAPI
from sqlalchemy import Engine, select, update
from test_capture_protocol import Capture

from bioverify.audit.models import AuditEntry
from bioverify.config import Settings
from bioverify.crypto.keyring import KeyRing
from support import make_client, serve

pytestmark = [pytest.mark.slow, pytest.mark.parametrize("backend", ["sqlite"], indirect=True)]

BIOVERIFY = str(Path(sys.executable).with_name("bioverify"))
UNREACHABLE_DB = "postgresql+psycopg://nobody:hunter2@127.0.0.1:9/none"


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    # The child sees only the test's BIOVERIFY_* variables, never the developer's.
    base = {k: v for k, v in os.environ.items() if not k.startswith("BIOVERIFY_")}
    return subprocess.run(
        [BIOVERIFY, *args],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def assert_fails(result: subprocess.CompletedProcess[str], status: int, *needles: str) -> str:
    """Exit ``status``, exactly one line on standard error, no traceback; that line."""
    assert result.returncode == status, (result.returncode, result.stderr, result.stdout)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.stderr + result.stdout
    for needle in needles:
        assert needle in lines[0]
    return lines[0]


@pytest.fixture
def env(settings: Settings, db_engine: Engine) -> dict[str, str]:
    """A data dir and store of the test's own, with one client sealed under its keys."""
    return {
        "BIOVERIFY_DATA_DIR": str(settings.data_dir),
        "BIOVERIFY_DATABASE_URL": settings.resolved_database_url,
        "BIOVERIFY_DATABASE_WAIT": "0.2",
        # The test's store was made by the test (0644): the warnings of its tightening
        # to 0600 are log records, not the command's one line of message.
        "BIOVERIFY_LOG_LEVEL": "error",
    }


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["nosuch"], "No such command"),
        (["clients", "create"], "--name"),
        (["clients", "list", "--bogus"], "--bogus"),
        (["capture", "http://127.0.0.1:9/capture/x", "--image", "."], "--image"),
        (["capture", "http://127.0.0.1:9/capture/x"], "--image"),
        (["keys", "rotate", "--which", "nope"], "--which"),
        (["audit", "prove", "-1"], "-1"),
        (["webhooks", "list", "--limit", "0"], "--limit"),
        (["serve", "--port", "eighty"], "--port"),
        (["serve", "--workers", "0"], "--workers"),
        (["demo", "--port", "eighty"], "--port"),
        (["eval", "--faces", "/nonexistent-faces"], "identities.csv"),
    ],
)
def test_usage_errors_exit_2_with_one_line(
    env: dict[str, str], args: list[str], needle: str
) -> None:
    assert_fails(run(env, *args), 2, needle)


@pytest.mark.parametrize(
    ("variable", "value", "command"),
    [
        ("BIOVERIFY_MASTER_KEY", "not base64 at all!", "serve"),
        ("BIOVERIFY_MASTER_KEY", "c2hvcnQ=", "worker"),
        ("BIOVERIFY_MODELS_DIR", "/nonexistent/models", "serve"),
        ("BIOVERIFY_MODELS_DIR", "/nonexistent/models", "worker"),
        ("BIOVERIFY_DATABASE_URL", UNREACHABLE_DB, "serve"),
        ("BIOVERIFY_DATABASE_URL", UNREACHABLE_DB, "worker"),
        ("BIOVERIFY_DATABASE_URL", UNREACHABLE_DB, "migrate"),
        ("BIOVERIFY_DATABASE_URL", UNREACHABLE_DB, "demo"),
    ],
)
def test_invalid_configuration_stops_at_start_naming_the_variable(
    env: dict[str, str], variable: str, value: str, command: str
) -> None:
    line = assert_fails(run({**env, variable: value}, command), 1, variable)
    assert "hunter2" not in line  # the database password never prints
    if variable == "BIOVERIFY_MASTER_KEY":
        assert value not in line  # nor a (wrong) master key


def test_failures_of_each_command_exit_1_with_one_line(env: dict[str, str], tmp_path: Path) -> None:
    bad_pem = tmp_path / "not-a-key.pem"
    bad_pem.write_text("not a PEM key\n")
    face = tmp_path / "face.jpg"
    face.write_bytes(b"\xff\xd8\xff not really a jpeg")
    cases: list[tuple[list[str], str]] = [
        (["clients", "revoke", "no-such-client"], "no-such-client"),
        (["clients", "rotate-secret", "no-such-client"], "no-such-client"),
        (["clients", "create", "--name", "x", "--public-key", str(bad_pem)], ""),
        (["webhooks", "redeliver", "no-such-session"], "no-such-session"),
        (["audit", "prove", "999999"], "999999"),
        (["audit", "export", "--out", str(tmp_path / "missing" / "x.jsonl")], ""),
        (["capture", "http://127.0.0.1:9/capture/tok", "--image", str(face)], ""),
    ]
    for args, needle in cases:
        assert_fails(run(env, *args), 1, needle)
    unreachable = {**env, "BIOVERIFY_DATABASE_URL": UNREACHABLE_DB}
    for args in (["clients", "list"], ["webhooks", "list"], ["audit", "verify", "-q"]):
        assert_fails(run(unreachable, *args), 1, "BIOVERIFY_DATABASE_URL")
    not_a_dir = tmp_path / "file-not-dir"
    not_a_dir.write_text("")
    assert_fails(run({**env, "BIOVERIFY_DATA_DIR": str(not_a_dir)}, "keys", "rotate"), 1)


def test_verbose_shows_the_traceback_and_keeps_the_status(env: dict[str, str]) -> None:
    result = run(env, "--verbose", "clients", "revoke", "no-such-client")
    assert result.returncode == 1
    assert "Traceback" in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: ")


def test_serve_on_a_taken_port_exits_1_naming_it(env: dict[str, str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        for workers in ("1", "2"):
            result = run(env, "serve", "--port", port, "--workers", workers)
            assert_fails(result, 1, f"cannot listen on 127.0.0.1:{port}")


def test_success_exits_0(env: dict[str, str]) -> None:
    assert run(env, "--help").returncode == 0
    made = run(env, "clients", "create", "--name", "ops", "--json")
    assert made.returncode == 0, made.stderr
    assert run(env, "clients", "list").returncode == 0


def test_audit_verify_exits_1_naming_the_tampered_entry(
    env: dict[str, str], settings: Settings, make_app: Callable[..., FastAPI], db_engine: Engine
) -> None:
    ring = KeyRing.load_or_create(settings.keys_dir)
    creds = make_client(db_engine, keyring=ring)
    with serve(make_app(keyring=ring)) as client:
        for _ in range(3):
            made = client.post(
                "/v2/verification-session",
                json={"type": "ENROLL", "liveness": "passive"},
                headers=creds.headers(),
            ).json()
            capture = Capture(client, made["launchUrl"])
            capture.load()
            capture.events(-7)
    # The serving process sequenced the entries and signed a checkpoint as it stopped.
    assert run(env, "audit", "prove", "0").returncode == 0
    ok = run(env, "audit", "verify", "--quiet")
    assert ok.returncode == 0, ok.stderr
    with db_engine.begin() as conn:
        body = conn.scalar(select(AuditEntry.body).where(AuditEntry.idx == 4))
        assert body is not None
        tampered = bytes(body).replace(b"session:", b"sessiOn:", 1)
        conn.execute(update(AuditEntry).where(AuditEntry.idx == 4).values(body=tampered))
    bad = run(env, "audit", "verify", "--quiet")
    assert bad.returncode == 1, bad.stderr
    assert "entry 4" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_logs_never_mix_with_a_commands_output(backend: str, tmp_path: Path) -> None:
    """Scripts parse `clients create --json`: log records (here the warnings of a data
    directory left world-readable) go to stderr, stdout holds the JSON alone; a data
    directory the command makes itself is private from the start, with no warning."""
    loose = tmp_path / "loose"
    loose.mkdir(mode=0o755)
    loose.chmod(0o755)
    made = run({"BIOVERIFY_DATA_DIR": str(loose)}, "clients", "create", "--name", "a", "--json")
    assert made.returncode == 0, made.stderr
    assert set(json.loads(made.stdout)) >= {"apiKey", "clientId"}
    assert "permissions_tightened" in made.stderr
    assert stat.S_IMODE(loose.stat().st_mode) == 0o700

    fresh = tmp_path / "fresh"
    made = run({"BIOVERIFY_DATA_DIR": str(fresh)}, "clients", "create", "--name", "b", "--json")
    assert made.returncode == 0, made.stderr
    assert set(json.loads(made.stdout)) >= {"apiKey", "clientId"}
    assert "permissions_tightened" not in made.stderr
    database = fresh / "bioverify.sqlite3"
    assert stat.S_IMODE(database.stat().st_mode) == 0o600
