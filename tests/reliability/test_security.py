"""Security properties seen from outside: brute force is throttled, replays are
refused, callbacks cannot reach inside the network, and after a full run with real
faces no secret, token, template or image byte is in the logs, the store or the
data directory.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import logging
import secrets
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI
from sqlalchemy import Engine

from bioverify.api.app import create_app
from bioverify.capture.envelope import fresh_nonce, seal
from bioverify.capture.sdk import CaptureSession
from bioverify.client._core import Credentials
from bioverify.config import Settings
from bioverify.crypto.keyring import KeyRing
from bioverify.engine import LivenessMode
from bioverify.engine.interfaces import Engine as BioEngine
from bioverify.engine.pipeline import LocalEngine
from bioverify.observability import configure_logging
from bioverify.webhooks.egress import EgressGuard
from bioverify.worker import Worker
from fixtures_faces import FACES, file_bytes
from support import Creds, Receiver, assert_envelope, make_client, migrated
from support import LiveServer as _LiveServer

CREATE = "/v2/verification-session"
LIMIT = 5  # the test settings' auth_failure_limit


@contextlib.contextmanager
def live(app: FastAPI) -> Iterator[str]:
    with _LiveServer(app) as server:
        yield server.url


def client_from(url: str, address: str) -> httpx.Client:
    """An HTTP client whose connections come from ``address`` (any 127.0.0.0/8 source)."""
    transport = httpx.HTTPTransport(local_address=address)
    return httpx.Client(base_url=url, transport=transport, timeout=30)


# ----------------------------------------------------------------- brute force


def _wrong(creds: Creds, **change: str) -> dict[str, str]:
    return {**creds.headers(), "clientSecret": "bvs_" + secrets.token_urlsafe(24), **change}


def test_credential_brute_force_blocks_failing_attempts_but_serves_valid_clients(
    make_app: Callable[..., FastAPI], creds: Creds, db_engine: Engine
) -> None:
    other = make_client(db_engine, name="bystander")
    with (
        live(make_app()) as url,
        client_from(url, "127.0.0.2") as attacker,
        client_from(url, "127.0.0.3") as elsewhere,
    ):
        for _ in range(LIMIT):
            assert_envelope(attacker.get(f"{CREATE}/{uuid.uuid4()}", headers=_wrong(creds)), 401)
        # Further failing attempts are refused, from that address and for that client id.
        blocked = attacker.get(f"{CREATE}/{uuid.uuid4()}", headers=_wrong(creds))
        assert_envelope(blocked, 429)
        assert int(blocked.headers["retry-after"]) > 0
        assert_envelope(elsewhere.post(CREATE, json={"type": "ENROLL"}, headers=_wrong(creds)), 429)
        # Valid credentials are served: the attacked client from the attacker's own
        # address (a shared NAT or proxy) and from elsewhere, and a bystander too.
        for http, who in ((attacker, creds), (elsewhere, creds), (attacker, other)):
            made = http.post(CREATE, json={"type": "ENROLL"}, headers=who.headers())
            assert made.status_code == 201, made.text


def test_credential_spraying_blocks_the_address_failing_attempts_only(
    make_app: Callable[..., FastAPI], creds: Creds
) -> None:
    with (
        live(make_app()) as url,
        client_from(url, "127.0.0.4") as attacker,
        client_from(url, "127.0.0.5") as elsewhere,
    ):

        def spray() -> httpx.Response:
            # A different (unknown) client id every time: no client key reaches the limit.
            return attacker.post(
                CREATE,
                json={"type": "ENROLL"},
                headers=_wrong(creds, clientID=secrets.token_hex(8)),
            )

        for _ in range(LIMIT):
            assert_envelope(spray(), 401)
        blocked = spray()
        assert_envelope(blocked, 429)
        assert int(blocked.headers["retry-after"]) > 0
        # A valid client behind the same address is still served.
        made = attacker.post(CREATE, json={"type": "ENROLL"}, headers=creds.headers())
        assert made.status_code == 201, made.text
        assert_envelope(
            elsewhere.post(
                CREATE,
                json={"type": "ENROLL"},
                headers=_wrong(creds, clientID=secrets.token_hex(8)),
            ),
            401,
        )


def test_bogus_capture_tokens_never_lock_a_valid_token_out(
    make_app: Callable[..., FastAPI], creds: Creds
) -> None:
    with live(make_app()) as url, client_from(url, "127.0.0.6") as shared:
        made = shared.post(
            CREATE, json={"type": "ENROLL", "liveness": "passive"}, headers=creds.headers()
        )
        token = made.json()["launchUrl"].rsplit("/", 1)[1]
        for _ in range(LIMIT):
            assert_envelope(shared.get(f"{CREATE}/cs_{secrets.token_urlsafe(40)}"), 401, [-14])
        assert_envelope(shared.get(f"{CREATE}/cs_{secrets.token_urlsafe(40)}"), 429)
        loaded = shared.get(f"{CREATE}/{token}")
        assert loaded.status_code == 200, loaded.text
        assert loaded.json()["sessionId"] == made.json()["sessionId"]


# ----------------------------------------------------------------- replays


def test_replayed_slc_request_is_refused(
    make_app: Callable[..., FastAPI], db_engine: Engine
) -> None:
    key = Ed25519PrivateKey.generate()
    pem = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    signer = make_client(db_engine, name="signer", public_key_pem=pem)
    creds = Credentials(api_key=signer.api_key, client_id=signer.client_id, signing_key=key)
    body = json.dumps({"type": "ENROLL"}).encode()
    headers = {**creds.headers("POST", CREATE, body), "content-type": "application/json"}
    with live(make_app()) as url, httpx.Client(base_url=url) as http:
        assert http.post(CREATE, content=body, headers=headers).status_code == 201
        assert_envelope(http.post(CREATE, content=body, headers=headers), 401)
        fresh = {**creds.headers("POST", CREATE, body), "content-type": "application/json"}
        assert http.post(CREATE, content=body, headers=fresh).status_code == 201


def test_replayed_capture_nonce_is_refused(app_client: httpx.Client, creds: Creds) -> None:
    made = app_client.post(
        CREATE, json={"type": "ENROLL", "liveness": "passive"}, headers=creds.headers()
    ).json()
    token = made["launchUrl"].rsplit("/", 1)[1]
    assert app_client.get(f"{CREATE}/{token}").status_code == 200
    key = app_client.get("/public-key").json()
    nonce = fresh_nonce()

    def events(code: int) -> httpx.Response:
        # A new envelope each time (fresh AES key and iv), carrying the same nonce.
        sealed = seal(
            {"nonce": nonce, "timestamp": int(time.time()), "events": [{"code": code}]},
            public_key_pem=key["publicKey"],
            kid=key["kid"],
            session_id=made["sessionId"],
            route="events",
        )
        return app_client.post(f"{CREATE}/{token}/events", json=sealed)

    assert events(-20).status_code == 200
    assert_envelope(events(-24), 409, [-15])


# ----------------------------------------------------------------- SSRF


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/hook",
        "https://10.0.0.1/hook",
        "https://169.254.169.254/latest",
        "https://[::1]/hook",
        "https://localhost/hook",
        "https://[::ffff:127.0.0.1]/hook",
        "https://internal.example/hook",
        "http://public.example/hook",
    ],
)
def test_callbacks_into_the_operator_network_are_refused(
    make_app: Callable[..., FastAPI], settings: Settings, creds: Creds, url: str
) -> None:
    # internal.example resolves to loopback; public.example to a public address (but http).
    names = {"internal.example": ["127.0.0.1"], "public.example": ["93.184.215.14"]}
    guard = EgressGuard(resolver=lambda host, _port: names[host])
    app = make_app(settings=settings.with_overrides(allow_private_callbacks=False), egress=guard)
    with live(app) as base, httpx.Client(base_url=base) as http:
        response = http.post(
            CREATE, headers=creds.headers(), json={"type": "ENROLL", "callback": {"url": url}}
        )
        body = assert_envelope(response, 400)
        assert "callback.url" in body["message"]
        allowed = http.post(
            CREATE,
            headers=creds.headers(),
            json={"type": "ENROLL", "callback": {"url": "https://public.example/hook"}},
        )
        assert allowed.status_code == 201, allowed.text


# ----------------------------------------------------------------- nothing leaks


class _NotTheTestsOwnRequests(logging.Filter):
    """Drops the log lines of the test's own HTTP client (httpx logs every request it
    makes, tokens in paths included); the service's own lines all stay."""

    def __init__(self, server_url: str) -> None:
        super().__init__()
        self._url = server_url

    def filter(self, record: logging.LogRecord) -> bool:
        return not (
            record.name.startswith(("httpx", "httpcore")) and self._url in record.getMessage()
        )


@dataclass
class Run:
    """What a full run left behind, and the values that must not be in it."""

    logs: str
    data_dir: Path
    secrets: dict[str, str]
    frames: list[bytes]
    embeddings: list[bytes]


def _chunks(blob: bytes, size: int = 24, count: int = 6) -> list[bytes]:
    """Distinctive slices from the middle of ``blob`` (past any common header)."""
    start = len(blob) // 3
    step = max(size, (len(blob) - start - size) // count)
    return [
        blob[start + i * step : start + i * step + size]
        for i in range(count)
        if start + i * step + size <= len(blob)
    ]


def _embedding(frame: bytes) -> bytes:
    """The raw float32 template the engine computes for a frame."""
    embedding = LocalEngine().analyze_sync([frame], liveness=LivenessMode.PASSIVE).embedding
    assert embedding is not None
    return bytes(embedding.tobytes())


def _face_frames() -> list[bytes]:
    return [file_bytes(FACES / name) for name in ("img17.jpg", "img59.jpg")]


@pytest.fixture(scope="module")
def full_run(tmp_path_factory: pytest.TempPathFactory, bio_engine: BioEngine) -> Iterator[Run]:
    """Clients, sessions, captures with real faces, webhooks: a whole run, logged."""
    frames = _face_frames()
    data = tmp_path_factory.mktemp("run") / "data"
    data.mkdir(mode=0o700)
    engine = migrated(f"sqlite:///{data / 'bioverify.sqlite3'}")
    ring = KeyRing.load_or_create(data / "keys")
    creds = make_client(engine, keyring=ring)
    cfg = Settings(
        data_dir=data,
        public_url="http://testserver",
        allow_private_callbacks=True,
        webhook_test_schedule=True,
        sweep_interval_s=0.2,
    )
    saved = structlog.get_config()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    root = logging.getLogger()
    root.addHandler(handler)
    previous_level = root.level
    root.setLevel(logging.DEBUG)
    configure_logging("debug", stream=stream)
    tokens: list[str] = []
    try:
        app = create_app(
            cfg,
            db_engine=engine,
            keyring=ring,
            bio_engine=bio_engine,
            run_worker=True,
            worker_factory=Worker,
        )
        with Receiver() as receiver, live(app) as url, httpx.Client(base_url=url) as http:
            handler.addFilter(_NotTheTestsOwnRequests(url))

            def session(**fields: Any) -> CaptureSession:
                made = http.post(
                    CREATE,
                    headers=creds.headers(),
                    json={"liveness": "passive", "callback": {"url": receiver.url}, **fields},
                )
                assert made.status_code == 201, made.text
                token = made.json()["launchUrl"].rsplit("/", 1)[1]
                tokens.append(token)
                capture = CaptureSession(
                    base_url=url, token=token, http=httpx.Client(base_url=url, timeout=30)
                )
                capture.load()
                return capture

            with session(type="ENROLL", customerId="alice", sendImages=True) as enrol:
                assert enrol.submit([frames[0]]).status == "SUCCESS"
            with session(type="VERIFY", customerId="alice") as verify:
                verify.submit([frames[1]])
            with session(type="ENROLL", customerId="bob") as failing:
                failing.report(-7)
            assert_envelope(http.get(f"{CREATE}/{tokens[0]}x"), 401)
            assert_envelope(
                http.post(
                    CREATE,
                    json={"type": "ENROLL"},
                    headers={**creds.headers(), "clientSecret": "bvs_x"},
                ),
                401,
            )
            receiver.wait_for(3, timeout=30)
        embeddings = [_embedding(f) for f in frames]
        yield Run(
            logs=stream.getvalue(),
            data_dir=data,
            frames=frames,
            embeddings=embeddings,
            secrets={
                "api key": creds.api_key,
                "client secret": creds.client_secret or "",
                "webhook secret": creds.webhook_secret,
                **{f"capture token {i}": t for i, t in enumerate(tokens)},
            },
        )
    finally:
        structlog.configure(**saved)
        root.removeHandler(handler)
        root.setLevel(previous_level)
        engine.dispose()


def _forbidden(run: Run) -> dict[str, list[bytes]]:
    out: dict[str, list[bytes]] = {name: [value.encode()] for name, value in run.secrets.items()}
    for i, frame in enumerate(run.frames):
        chunks = _chunks(frame)
        out[f"frame {i} bytes"] = chunks
        out[f"frame {i} base64"] = [base64.b64encode(frame)[len(frame) // 2 :][:32]]
    for i, embedding in enumerate(run.embeddings):
        out[f"template {i} bytes"] = _chunks(embedding, size=32, count=4)
    return out


def _found_in(blob: bytes, run: Run) -> list[str]:
    return [
        name
        for name, needles in _forbidden(run).items()
        if any(needle and needle in blob for needle in needles)
    ]


def test_the_run_really_logged_and_stored_something(full_run: Run) -> None:
    """Guards the scans below: empty logs or an empty store would prove nothing."""
    assert full_run.logs.count("\n") >= 5
    store = list(full_run.data_dir.glob("bioverify.sqlite3*"))  # the file and its WAL
    assert sum(path.stat().st_size for path in store) > 100_000
    assert all(len(e) == 128 * 4 for e in full_run.embeddings)


def test_no_secret_token_template_or_image_in_any_log_line(full_run: Run) -> None:
    assert _found_in(full_run.logs.encode(), full_run) == []


def test_no_frame_template_or_secret_bytes_anywhere_in_the_data_directory(full_run: Run) -> None:
    leaks = {
        str(path.relative_to(full_run.data_dir)): found
        for path in sorted(full_run.data_dir.rglob("*"))
        if path.is_file()
        if (found := _found_in(path.read_bytes(), full_run))
    }
    assert leaks == {}
