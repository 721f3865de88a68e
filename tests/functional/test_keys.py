"""Key rotation while serving: new captures use the new key, old envelopes still open."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

from fastapi import FastAPI
from sqlalchemy import Engine
from typer.testing import CliRunner

from bioverify.capture.envelope import fresh_nonce, seal
from bioverify.cli.main import app as cli
from bioverify.crypto.keyring import KeyRing
from support import make_client, serve

CREATE = "/v2/verification-session"


def test_rotated_capture_key_is_served_and_old_one_still_decrypts(
    tmp_path: Path, make_app: Callable[..., FastAPI], db_engine: Engine
) -> None:
    data_dir = tmp_path / "rotating"
    ring = KeyRing.load_or_create(data_dir / "keys")
    creds = make_client(db_engine, keyring=ring)  # sealed under this ring's master key
    with serve(make_app(keyring=ring)) as client:
        made = client.post(
            CREATE, json={"type": "ENROLL", "liveness": "passive"}, headers=creds.headers()
        ).json()
        token = made["launchUrl"].rsplit("/", 1)[1]
        assert (
            client.get(f"{CREATE}/{token}", headers={"user-agent": "x Mobile"}).status_code == 200
        )
        old = client.get("/public-key").json()
        sealed = seal(
            {"nonce": fresh_nonce(), "timestamp": int(time.time()), "events": [{"code": -20}]},
            public_key_pem=old["publicKey"],
            kid=old["kid"],
            session_id=made["sessionId"],
            route="events",
        )

        result = CliRunner().invoke(
            cli,
            ["keys", "rotate", "--which", "capture", "--json"],
            env={"BIOVERIFY_DATA_DIR": str(data_dir)},
        )
        assert result.exit_code == 0, result.output
        deadline = time.monotonic() + 15
        new = old
        while new["kid"] == old["kid"] and time.monotonic() < deadline:
            time.sleep(0.1)  # polling the server's key watcher, bounded
            new = client.get("/public-key").json()
        assert new["kid"] != old["kid"]

        response = client.post(
            f"{CREATE}/{token}/events", json=sealed, headers={"user-agent": "x Mobile"}
        )
        assert response.status_code == 200, response.text
        assert response.json()["errorCodes"] == [-20]


def test_rotate_without_a_key_ring_says_so(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["keys", "rotate"], env={"BIOVERIFY_DATA_DIR": str(tmp_path / "empty")}
    )
    assert result.exit_code != 0


def test_client_created_by_cli_prints_exactly_the_credentials(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli,
        ["clients", "create", "--name", "acme", "--json"],
        env={"BIOVERIFY_DATA_DIR": str(tmp_path / "d")},
    )
    assert result.exit_code == 0, result.output
    creds = json.loads(result.stdout)
    assert set(creds) == {"apiKey", "clientId", "clientSecret", "webhookSecret"}
    assert creds["webhookSecret"].startswith("whsec_")
