"""Fail closed: break each collaborator for real; /readyz fails, requests answer 503
with the error envelope and Retry-After, and nothing is written (no session, no audit
entry). Fixing the part (a restart with it repaired) brings 201 and its audit entry."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import Engine, func, select, text

from bioverify.audit.models import AuditEntry, AuditQueued
from bioverify.config import Secret, Settings
from bioverify.crypto.keyring import KeyRing
from bioverify.sessions.models import SessionRow
from support import Creds, assert_envelope, make_client, serve

pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)

CREATE = "/v2/verification-session"
UNKNOWN_SESSION = "00000000-0000-4000-8000-000000000000"


def _counts(engine: Engine) -> tuple[int, int]:
    with engine.connect() as conn:
        sessions = conn.scalar(select(func.count()).select_from(SessionRow)) or 0
        # Entries are queued first and sequenced later: both count as written.
        entries = conn.scalar(select(func.count()).select_from(AuditEntry)) or 0
        queued = conn.scalar(select(func.count()).select_from(AuditQueued)) or 0
    return int(sessions), int(entries) + int(queued)


def _assert_closed(client: httpx.Client, creds: Creds, engine: Engine, part: str) -> None:
    ready = client.get("/readyz")
    body = assert_envelope(ready, 503)
    assert body["checks"][part] is False, body["checks"]
    assert int(ready.headers["retry-after"]) > 0
    before = _counts(engine)
    for request in (
        lambda: client.post(CREATE, json={"type": "ENROLL"}, headers=creds.headers()),
        lambda: client.get(f"{CREATE}/{UNKNOWN_SESSION}", headers=creds.headers()),
        lambda: client.get("/v2/customers/alice", headers=creds.headers()),
        lambda: client.get("/public-key"),
        lambda: client.get(f"{CREATE}/not-a-real-capture-token"),
    ):
        response = request()
        assert_envelope(response, 503)
        assert int(response.headers["retry-after"]) > 0
    assert _counts(engine) == before, "a request wrote while the service was not ready"
    assert client.get("/healthz").status_code == 200  # the process itself is alive


def test_unusable_master_key_is_503_with_nothing_written_then_201_when_restored(
    settings: Settings,
    make_app: Callable[..., FastAPI],
    creds: Creds,
    db_engine: Engine,
) -> None:
    # A valid-looking master key that is not the one the stored secrets were sealed with.
    other = base64.b64encode(secrets.token_bytes(32)).decode()
    wrong = settings.with_overrides(master_key=Secret(other))
    with serve(make_app(settings=wrong, keyring=None)) as client:
        _assert_closed(client, creds, db_engine, "master key")
        assert "master key" in client.get("/readyz").json()["message"]
    # Restored (restarted with the right key ring): 201, and its audit entry is written.
    with serve(make_app()) as client:
        assert client.get("/readyz").status_code == 200
        made = client.post(CREATE, json={"type": "ENROLL"}, headers=creds.headers())
        assert made.status_code == 201, made.text
        session_id = made.json()["sessionId"]
    with db_engine.connect() as conn:
        events = list(
            conn.scalars(select(AuditEntry.event).where(AuditEntry.session_id == session_id))
        )
    assert events == ["session:state:created"]


def test_master_key_that_is_not_base64_is_503(
    settings: Settings, make_app: Callable[..., FastAPI], creds: Creds, db_engine: Engine
) -> None:
    # `serve` refuses this at start (exit 1); a process built without that check still
    # must not serve with it.
    broken = settings.with_overrides(master_key=Secret("not base64 at all!"))
    with serve(make_app(settings=broken, keyring=None)) as client:
        _assert_closed(client, creds, db_engine, "master key")


def test_unloadable_key_ring_is_503(
    settings: Settings, make_app: Callable[..., FastAPI], creds: Creds, db_engine: Engine
) -> None:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    (settings.data_dir / "keys").write_text("a file where the key folder should be")
    with serve(make_app(keyring=None)) as client:
        _assert_closed(client, creds, db_engine, "keys")


def test_broken_signing_key_is_503(
    settings: Settings, make_app: Callable[..., FastAPI], db_engine: Engine
) -> None:
    # A ring of this data dir, whose client is sealed under it; then its signing key rots.
    own = make_client(db_engine, keyring=KeyRing.load_or_create(settings.keys_dir))
    for pem in settings.keys_dir.glob("signing-*.pem"):
        pem.write_text("-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n")
    with serve(make_app(keyring=None)) as client:
        _assert_closed(client, own, db_engine, "signer")


def test_unreadable_audit_log_is_503(
    make_app: Callable[..., FastAPI], creds: Creds, db_engine: Engine
) -> None:
    with db_engine.begin() as conn:
        conn.execute(text("DROP TABLE audit_checkpoints"))
    with serve(make_app()) as client:
        _assert_closed(client, creds, db_engine, "audit log")


def test_models_that_do_not_load_are_503(
    settings: Settings,
    make_app: Callable[..., FastAPI],
    creds: Creds,
    db_engine: Engine,
    tmp_path: Path,
) -> None:
    empty = tmp_path / "no-models"
    empty.mkdir()
    broken = settings.with_overrides(models_dir=empty, engine_workers=0)
    with serve(make_app(settings=broken, bio_engine=None)) as client:
        _assert_closed(client, creds, db_engine, "models")
        assert client.get("/readyz").json()["errorCodes"] == [-20]
