"""The log's tiles over HTTP, read as an independent tlog-tiles client would; receipts.

The reader below implements c2sp.org/tlog-tiles, c2sp.org/tlog-checkpoint and
c2sp.org/signed-note from the specifications, with hashlib and cryptography
only: it imports nothing of bioverify's audit code, so a shared mistake cannot
hide. The server side is written with the service's own code.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from fastapi import FastAPI
from sqlalchemy import Engine
from sqlalchemy.orm import Session
from test_webhooks_e2e import fail_session

from bioverify.audit.events import AuditEvent, build_entry
from bioverify.audit.receipt import verify_receipt
from bioverify.audit.service import AuditLog
from bioverify.config import Settings
from bioverify.worker import Worker
from support import Creds, Receiver, serve

TLOG = "/v2/audit/tlog"


# ---------------------------------------------------------------- the independent reader


def spec_index_path(n: int) -> str:
    """tlog-tiles: N as zero-padded 3-digit elements, all but the last prefixed with x."""
    text = str(n)
    text = "0" * (-len(text) % 3) + text
    groups = [text[i : i + 3] for i in range(0, len(text), 3)]
    return "/".join([*("x" + g for g in groups[:-1]), groups[-1]])


def spec_tile(client: httpx.Client, level: int, n: int, width: int) -> list[bytes]:
    suffix = "" if width == 256 else f".p/{width}"
    got = client.get(f"{TLOG}/tile/{level}/{spec_index_path(n)}{suffix}")
    assert got.status_code == 200, got.text
    assert got.headers["content-type"] == "application/octet-stream"
    assert len(got.content) == 32 * width
    return [got.content[i : i + 32] for i in range(0, len(got.content), 32)]


def spec_mth(hashes: list[bytes]) -> bytes:
    """RFC 6962 section 2.1 MTH over leaf *hashes* (the split is the largest power of 2 < n)."""
    if len(hashes) == 1:
        return hashes[0]
    k = 1
    while k * 2 < len(hashes):
        k *= 2
    return hashlib.sha256(b"\x01" + spec_mth(hashes[:k]) + spec_mth(hashes[k:])).digest()


def spec_checkpoint(note: str, jwks: dict[str, Any]) -> tuple[str, str, int, bytes]:
    """Verify a signed note with any Ed25519 key of the JWKS; (key name, origin, size, root)."""
    body, _, signatures = note.partition("\n\n")
    body += "\n"
    origin, size, root = body.splitlines()[:3]
    keys = [
        Ed25519PublicKey.from_public_bytes(base64.urlsafe_b64decode(k["x"] + "=="))
        for k in jwks["keys"]
        if k.get("crv") == "Ed25519"
    ]
    for line in signatures.splitlines():
        assert line.startswith("\u2014 ")
        name, blob64 = line[2:].split(" ")
        blob = base64.b64decode(blob64)
        for key in keys:
            raw = key.public_bytes_raw()
            key_id = hashlib.sha256(name.encode() + b"\n\x01" + raw).digest()[:4]
            if blob[:4] != key_id:
                continue
            try:
                key.verify(blob[4:], body.encode())
            except InvalidSignature:
                continue
            return name, origin, int(size), base64.b64decode(root)
    raise AssertionError("no signature of the checkpoint verifies with the JWKS")


def spec_leaves(client: httpx.Client, size: int) -> list[bytes]:
    """All leaf hashes of a tree of ``size``: full level-0 tiles, then the partial one."""
    leaves: list[bytes] = []
    for n in range(size // 256):
        leaves += spec_tile(client, 0, n, 256)
    if size % 256:
        leaves += spec_tile(client, 0, size // 256, size % 256)
    return leaves


# ---------------------------------------------------------------- tests


@pytest.fixture
def live(settings: Settings, make_app: Callable[..., FastAPI]) -> Callable[..., Any]:
    def start() -> Any:
        fast = settings.with_overrides(webhook_test_schedule=True, sweep_interval_s=0.1)
        return serve(
            make_app(
                settings=fast,
                run_worker=True,
                worker_factory=Worker,
                clock=lambda: dt.datetime.now(dt.UTC),
            )
        )

    return start


def queue_entries(engine: Engine, count: int, client_id: str) -> None:
    log = AuditLog()
    now = dt.datetime.now(dt.UTC)
    with Session(engine) as db, db.begin():
        log.append_many(
            db,
            [
                build_entry(
                    AuditEvent.SESSION_CREATED,
                    client_id=client_id,
                    session_id=f"s-{i}",
                    details={"n": i},
                    at=now,
                )
                for i in range(count)
            ],
        )


def signed_size_reaches(client: httpx.Client, size: int, jwks: dict[str, Any]) -> int:
    """Poll the public checkpoint until the sequencer has signed ``size`` entries (bounded)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        got = client.get(f"{TLOG}/checkpoint")
        if got.status_code == 200:
            signed = spec_checkpoint(got.text, jwks)[2]
            if signed >= size:
                return signed
        time.sleep(0.05)
    raise AssertionError(f"the log did not reach {size} entries within 60 s")


def test_tiles_served_without_credentials_recompute_the_signed_root(
    live: Callable[..., Any], db_engine: Engine, creds: Creds
) -> None:
    with live() as client:
        assert client.get(f"{TLOG}/checkpoint").status_code == 404  # nothing signed yet
        queue_entries(db_engine, 700, creds.client_id)
        jwks = client.get("/.well-known/jwks.json").json()
        signed_size_reaches(client, 700, jwks)
        got = client.get(f"{TLOG}/checkpoint")
        assert got.headers["content-type"] == "text/plain; charset=utf-8"
        name, origin, size, root = spec_checkpoint(got.text, jwks)
        leaves = spec_leaves(client, size)
        assert spec_mth(leaves) == root
        # Level 1: each hash is the MTH of a full level-0 tile; partial width per the spec.
        width1 = (size // 256) % 256
        level1 = spec_tile(client, 1, 0, width1)
        assert level1 == [spec_mth(leaves[i * 256 : (i + 1) * 256]) for i in range(width1)]
        # A client's own entries hash to the leaves at their indexes.
        api = client.get("/v2/audit/checkpoint", headers=creds.headers()).json()
        assert (api["keyName"], api["origin"]) == (name, origin)
        mine = client.get("/v2/audit/entries", params={"start": 0}, headers=creds.headers()).json()[
            "entries"
        ]
        assert mine
        for item in mine:
            assert base64.b64decode(item["leafHash"]) == leaves[item["index"]]


def test_tile_paths_follow_the_spec_and_errors_are_clear(
    live: Callable[..., Any], db_engine: Engine, creds: Creds
) -> None:
    with live() as client:
        queue_entries(db_engine, 300, creds.client_id)
        jwks = client.get("/.well-known/jwks.json").json()
        size = signed_size_reaches(client, 300, jwks)
        width = size % 256
        assert client.get(f"{TLOG}/tile/0/000").status_code == 200
        full = client.get(f"{TLOG}/tile/0/000")
        assert "immutable" in full.headers["cache-control"]
        # A partial tile narrower than the tree's is its prefix (hashes never change).
        assert (
            client.get(f"{TLOG}/tile/0/001.p/1").content
            == (client.get(f"{TLOG}/tile/0/001.p/{width}").content[:32])
        )
        missing = [f"tile/0/001.p/{width + 1}", "tile/0/001", "tile/0/002.p/1", "tile/2/000.p/1"]
        for path in missing:
            answer = client.get(f"{TLOG}/{path}")
            assert answer.status_code == 404, path
            assert answer.json()["message"]
        for path in ["tile/0/1", "tile/00/000", "tile/64/000", "tile/0/000.p/256", "tile/0/x1/000"]:
            answer = client.get(f"{TLOG}/{path}")
            assert answer.status_code == 400, path
            assert "tile" in answer.json()["message"].lower()
        bundles = client.get(f"{TLOG}/tile/entries/000")
        assert bundles.status_code == 404
        assert "/v2/audit/entries" in bundles.json()["message"]


def test_every_final_webhook_carries_a_receipt_that_verifies_offline(
    live: Callable[..., Any], creds: Creds
) -> None:
    sessions = 8
    with Receiver() as receiver, live() as client:
        ended: list[str] = []
        # Sessions end concurrently, so their entries share sequencer batches.
        threads = [
            threading.Thread(target=lambda: ended.append(fail_session(client, creds, receiver.url)))
            for _ in range(sessions)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        hooks = receiver.wait_for(sessions)
        jwks = client.get("/.well-known/jwks.json").json()
        api = client.get("/v2/audit/checkpoint", headers=creds.headers()).json()
        indexes = set()
        for hook in hooks:
            payload = hook.json()
            receipt = payload["audit"]
            assert set(receipt) == {"index", "checkpoint", "inclusionProof"}
            entry = client.get(
                "/v2/audit/entries",
                params={"start": receipt["index"], "end": receipt["index"] + 1},
                headers=creds.headers(),
            ).json()["entries"][0]
            assert entry["entry"]["sessionId"] == payload["sessionId"]
            assert entry["entry"]["event"] == "session:state:ended"
            leaf = base64.b64decode(entry["leafHash"])
            assert verify_receipt(leaf, receipt, jwks, api["keyName"], api["origin"])
            indexes.add(receipt["index"])
            polled = client.get(
                f"/v2/verification-session/{payload['sessionId']}/webhook",
                headers=creds.headers(),
            ).json()
            assert polled["audit"] == receipt
        assert len(indexes) == sessions
        assert sorted(p.json()["sessionId"] for p in hooks) == sorted(ended)
