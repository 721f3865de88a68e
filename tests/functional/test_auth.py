"""Integrator credentials: clientSecret, SLC, key-only, throttling (API.md section 3)."""

from __future__ import annotations

import base64
import hashlib
import time
import uuid

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlalchemy import Engine

from bioverify.accounts import service as accounts
from bioverify.storage.database import session_factory, transaction
from support import Creds, FakeClock, assert_envelope, make_client

CREATE = "/v2/verification-session"
BODY = b'{"type": "ENROLL"}'


def test_valid_secret_creates(app_client: httpx.Client, creds: Creds) -> None:
    assert app_client.post(CREATE, content=BODY, headers=creds.headers()).status_code == 201


def test_dash_spelling_of_the_api_key_header_works(app_client: httpx.Client, creds: Creds) -> None:
    headers = {
        "x-api-key": creds.api_key,
        "clientID": creds.client_id,
        "clientSecret": creds.client_secret or "",
    }
    assert app_client.post(CREATE, content=BODY, headers=headers).status_code == 201


@pytest.mark.parametrize(
    "case", ["missing", "wrong_secret", "wrong_key", "wrong_client", "key_alone", "no_secret"]
)
def test_every_credential_failure_is_one_401(
    app_client: httpx.Client, creds: Creds, case: str
) -> None:
    headers = creds.headers()
    if case == "missing":
        headers = {}
    elif case == "wrong_secret":
        headers["clientSecret"] = "bvs_" + "A" * 43
    elif case == "wrong_key":
        headers["x_api_key"] = "bvk_" + "B" * 43
    elif case == "wrong_client":
        headers["clientID"] = str(uuid.uuid4())
    elif case == "key_alone":
        headers = {"x_api_key": creds.api_key}
    elif case == "no_secret":
        del headers["clientSecret"]
    body = assert_envelope(app_client.post(CREATE, content=BODY, headers=headers), 401, [])
    assert body["message"] == "Invalid credentials"


def test_key_only_client_authenticates_with_the_key_alone(
    app_client: httpx.Client, db_engine: Engine
) -> None:
    key_only = make_client(db_engine, key_only=True)
    response = app_client.post(CREATE, content=BODY, headers={"x_api_key": key_only.api_key})
    assert response.status_code == 201


def _slc_client(db_engine: Engine) -> tuple[Creds, Ed25519PrivateKey]:
    private = Ed25519PrivateKey.generate()
    pem = private.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    return make_client(db_engine, public_key_pem=pem.decode()), private


def _signed(
    creds: Creds,
    key: Ed25519PrivateKey,
    body: bytes,
    *,
    request_id: str,
    timestamp: int | None = None,
    path: str = CREATE,
) -> dict[str, str]:
    ts = str(int(time.time()) if timestamp is None else timestamp)
    message = f"POST\n{path}\n{ts}\n{request_id}\n{hashlib.sha256(body).hexdigest()}".encode()
    signature = base64.urlsafe_b64encode(key.sign(message)).rstrip(b"=").decode()
    return {
        "x_api_key": creds.api_key,
        "clientID": creds.client_id,
        "SLC": signature,
        "X-Timestamp": ts,
        "X-Request-ID": request_id,
    }


def test_slc_signed_request_is_accepted(app_client: httpx.Client, db_engine: Engine) -> None:
    creds, key = _slc_client(db_engine)
    headers = _signed(creds, key, BODY, request_id=str(uuid.uuid4()))
    assert app_client.post(CREATE, content=BODY, headers=headers).status_code == 201


def test_slc_replayed_request_id_is_401(app_client: httpx.Client, db_engine: Engine) -> None:
    creds, key = _slc_client(db_engine)
    headers = _signed(creds, key, BODY, request_id="req-replay-1")
    assert app_client.post(CREATE, content=BODY, headers=headers).status_code == 201
    assert_envelope(app_client.post(CREATE, content=BODY, headers=headers), 401, [])


def test_slc_bad_signature_is_401(app_client: httpx.Client, db_engine: Engine) -> None:
    creds, key = _slc_client(db_engine)
    headers = _signed(creds, key, BODY, request_id=str(uuid.uuid4()))
    tampered = b'{"type": "VERIFY"}'
    assert_envelope(app_client.post(CREATE, content=tampered, headers=headers), 401, [])


def test_slc_signed_by_another_key_is_401(app_client: httpx.Client, db_engine: Engine) -> None:
    creds, _ = _slc_client(db_engine)
    headers = _signed(creds, Ed25519PrivateKey.generate(), BODY, request_id=str(uuid.uuid4()))
    assert_envelope(app_client.post(CREATE, content=BODY, headers=headers), 401, [])


def test_slc_stale_timestamp_is_401(
    app_client: httpx.Client, db_engine: Engine, clock: FakeClock
) -> None:
    creds, key = _slc_client(db_engine)
    headers = _signed(
        creds, key, BODY, request_id=str(uuid.uuid4()), timestamp=int(clock().timestamp()) - 301
    )
    assert_envelope(app_client.post(CREATE, content=BODY, headers=headers), 401, [])


def test_repeated_failures_are_throttled_with_retry_after(
    app_client: httpx.Client, creds: Creds
) -> None:
    wrong = {**creds.headers(), "clientSecret": "bvs_wrong"}
    statuses = [app_client.post(CREATE, content=BODY, headers=wrong).status_code for _ in range(5)]
    assert statuses == [401] * 5
    throttled = app_client.post(CREATE, content=BODY, headers=wrong)
    assert_envelope(throttled, 429, [])
    assert int(throttled.headers["retry-after"]) >= 1
    # Only failing attempts are refused: the right secret is still served.
    assert app_client.post(CREATE, content=BODY, headers=creds.headers()).status_code == 201


def test_rotated_secret_and_revoked_client(
    app_client: httpx.Client, db_engine: Engine, clock: FakeClock
) -> None:
    creds = make_client(db_engine)
    with transaction(session_factory(db_engine)) as db:
        new_secret = accounts.rotate_secret(db, creds.client_id, clock())
    new_headers = {**creds.headers(), "clientSecret": new_secret}
    assert app_client.post(CREATE, content=BODY, headers=new_headers).status_code == 201
    # The old secret keeps working through the grace period, then stops.
    assert app_client.post(CREATE, content=BODY, headers=creds.headers()).status_code == 201
    clock.advance(25 * 3600)
    assert_envelope(app_client.post(CREATE, content=BODY, headers=creds.headers()), 401, [])
    with transaction(session_factory(db_engine)) as db:
        accounts.revoke_client(db, creds.client_id, clock())
    assert_envelope(app_client.post(CREATE, content=BODY, headers=new_headers), 401, [])


@pytest.mark.parametrize("body", [b"{not json", b'{"type":"NOPE"}', b'{"type":"VERIFY_ULTRA"}'])
def test_a_bad_body_without_good_credentials_is_a_401_not_a_400(
    app_client: httpx.Client, creds: Creds, body: bytes
) -> None:
    # The create route checks credentials and validates in one transaction: an unknown
    # caller must still learn nothing about what its body would have been told.
    wrong = {**creds.headers(), "clientSecret": "not-the-secret"}
    assert_envelope(app_client.post(CREATE, content=body, headers=wrong), 401, [])
    assert_envelope(app_client.post(CREATE, content=body, headers=creds.headers()), 400)
