"""Behaviours found by review: replicas, lockouts, odd input, stored tokens."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import Engine, select
from test_biometrics_e2e import Faces, enrol, faces, start, submit  # noqa: F401
from test_capture_protocol import Capture, no_face_jpeg

from bioverify.sessions.models import IdempotencyKey
from support import Creds, assert_envelope, serve

CREATE = "/v2/verification-session"


@pytest.mark.models
def test_sign_in_finds_a_customer_enrolled_through_another_replica(
    make_app: Callable[..., FastAPI],
    creds: Creds,
    faces: Faces,  # noqa: F811
) -> None:
    with serve(make_app()) as replica_a, serve(make_app()) as replica_b:
        # B has built its gallery before A enrols anyone.
        assert replica_b.get("/readyz").status_code == 200
        enrolled = enrol(replica_a, creds, faces.alice, "alice")
        capture, session_id = start(replica_b, creds, "SIGN-IN")
        response = submit(capture, faces.alice_again)
        assert response.json()["status"] == "SUCCESS", response.text
        got = replica_b.get(f"{CREATE}/{session_id}", headers=creds.headers()).json()
        assert got["customerId"] == "alice"
        assert got["puid"] == enrolled["puid"]


@pytest.mark.models
def test_re_enrolling_keeps_the_customers_puid(
    app_client: httpx.Client,
    creds: Creds,
    faces: Faces,  # noqa: F811
) -> None:
    first = enrol(app_client, creds, faces.alice, "alice")
    made = app_client.post(
        CREATE, json={"type": "ENROLL", "customerId": "alice"}, headers=creds.headers()
    ).json()
    assert made["puid"] == first["puid"]
    second = enrol(app_client, creds, faces.alice_again, "alice")
    assert second["puid"] == first["puid"]
    customer = app_client.get("/v2/customers/alice", headers=creds.headers()).json()
    assert customer["puid"] == first["puid"]


def test_someone_elses_client_id_cannot_lock_a_client_out(
    app_client: httpx.Client, creds: Creds
) -> None:
    junk = {"x_api_key": "bvk_" + "x" * 43, "clientID": creds.client_id, "clientSecret": "bvs_nope"}
    # The attacker sprays from another loopback address with the victim's public clientID.
    transport = httpx.HTTPTransport(local_address="127.0.0.3")
    with httpx.Client(base_url=app_client.base_url, transport=transport) as attacker:
        statuses = [
            attacker.post(CREATE, json={"type": "ENROLL"}, headers=junk).status_code
            for _ in range(7)
        ]
    assert statuses[-1] == 429  # the spraying address is throttled ...
    ok = app_client.post(CREATE, json={"type": "ENROLL"}, headers=creds.headers())
    assert ok.status_code == 201  # ... the client whose id it used is not


def test_nul_characters_are_a_bad_request_on_every_store(
    app_client: httpx.Client, creds: Creds
) -> None:
    body = b'{"type": "ENROLL", "transactionID": "a\\u0000b"}'
    response = app_client.post(CREATE, content=body, headers=creds.headers())
    assert "NUL" in assert_envelope(response, 400, [])["message"]
    assert_envelope(app_client.get("/v2/customers/a%00b", headers=creds.headers()), 404, [])


def test_stored_idempotent_answers_do_not_hold_the_capture_token(
    app_client: httpx.Client, creds: Creds, db_engine: Engine
) -> None:
    headers = {**creds.headers(), "Idempotency-Key": "tok-1"}
    first = app_client.post(CREATE, json={"type": "ENROLL"}, headers=headers).json()
    token = first["launchUrl"].rsplit("/", 1)[1]
    with db_engine.connect() as conn:
        stored = conn.scalar(select(IdempotencyKey.response))
    assert token not in str(stored)
    replay = app_client.post(CREATE, json={"type": "ENROLL"}, headers=headers).json()
    assert replay == first


def test_redelivering_an_open_session_is_409(app_client: httpx.Client, creds: Creds) -> None:
    made = app_client.post(CREATE, json={"type": "ENROLL"}, headers=creds.headers()).json()
    response = app_client.post(
        f"{CREATE}/{made['sessionId']}/webhook/redeliver", headers=creds.headers()
    )
    assert_envelope(response, 409, [])


def test_guessing_capture_tokens_is_throttled(app_client: httpx.Client) -> None:
    statuses = [app_client.get(f"{CREATE}/cs_guess{i}.x").status_code for i in range(7)]
    assert statuses[:5] == [401] * 5
    assert statuses[-1] == 429


def test_non_ascii_challenge_and_frames_are_400(app_client: httpx.Client, creds: Creds) -> None:
    made = app_client.post(
        CREATE, json={"type": "ENROLL", "liveness": "active"}, headers=creds.headers()
    ).json()
    capture = Capture(app_client, made["launchUrl"])
    capture.load()
    frame = base64.b64encode(b"\xff\xd8").decode()
    odd: dict[str, Any] = capture.plaintext(frames=[frame], challengeId="é")
    assert_envelope(capture.post("capture", capture.envelope("capture", odd)), 400, [])
    fresh = capture.load().json()["challenge"]["id"]
    bad = capture.plaintext(frames=["é"], challengeId=fresh)
    assert (
        "frames[0]"
        in assert_envelope(capture.post("capture", capture.envelope("capture", bad)), 400, [])[
            "message"
        ]
    )


def test_passive_capture_without_a_load_is_under_way(
    app_client: httpx.Client, creds: Creds
) -> None:
    made = app_client.post(
        CREATE, json={"type": "ENROLL", "liveness": "passive"}, headers=creds.headers()
    ).json()
    capture = Capture(app_client, made["launchUrl"])
    capture.session_id = made["sessionId"]  # no load: straight to capture
    frame = base64.b64encode(no_face_jpeg()).decode()
    answer = capture.post(
        "capture", capture.envelope("capture", capture.plaintext(frames=[frame]))
    ).json()
    assert answer["status"] == "IN_PROGRESS"
    assert answer["errorCodes"] == [-22]
