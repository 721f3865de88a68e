"""Enrol, verify and sign in over HTTP with the real models (YuNet + SFace).

Faces come from the labelled photos in tests/data/faces; attacks and low light are
derived from them in code.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from test_capture_protocol import Capture, no_face_jpeg

from fixtures_faces import (
    FACES,
    darken,
    encode,
    file_bytes,
    load,
)
from support import Creds, assert_envelope

CREATE = "/v2/verification-session"


@dataclass(frozen=True)
class Faces:
    alice: bytes  # one person's photo
    alice_again: bytes  # the same person, another photo (or a re-framed one)
    stranger: bytes  # another person
    group: bytes  # several faces
    alice_path: Path | None = None


@pytest.fixture(scope="module")
def faces() -> Faces:
    return Faces(
        alice=file_bytes(FACES / "img29.jpg"),
        alice_again=file_bytes(FACES / "img30.jpg"),
        stranger=file_bytes(FACES / "img34.jpg"),
        group=file_bytes(FACES / "couple.jpg"),
        alice_path=FACES / "img29.jpg",
    )


def start(client: httpx.Client, creds: Creds, kind: str, **fields: Any) -> tuple[Capture, str]:
    made = client.post(
        CREATE, json={"type": kind, "liveness": "passive", **fields}, headers=creds.headers()
    )
    assert made.status_code == 201, made.text
    capture = Capture(client, made.json()["launchUrl"])
    assert capture.load().status_code == 200
    return capture, str(made.json()["sessionId"])


def submit(capture: Capture, *frames: bytes, **fields: Any) -> httpx.Response:
    encoded = [base64.b64encode(f).decode() for f in frames]
    return capture.post(
        "capture", capture.envelope("capture", capture.plaintext(frames=encoded, **fields))
    )


def enrol(client: httpx.Client, creds: Creds, photo: bytes, customer: str) -> dict[str, Any]:
    """Enrol ``customer`` from ``photo``; the session as the integrator reads it."""
    capture, session_id = start(client, creds, "ENROLL", customerId=customer)
    response = submit(capture, photo)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "SUCCESS"
    return dict(client.get(f"{CREATE}/{session_id}", headers=creds.headers()).json())


def session_of(client: httpx.Client, creds: Creds, session_id: str) -> dict[str, Any]:
    return dict(client.get(f"{CREATE}/{session_id}", headers=creds.headers()).json())


@pytest.mark.models
def test_enrol_then_verify_the_same_person_succeeds(
    app_client: httpx.Client, creds: Creds, faces: Faces
) -> None:
    enrolled = enrol(app_client, creds, faces.alice, "alice")
    assert enrolled["puid"].startswith("puid_")
    customer = app_client.get("/v2/customers/alice", headers=creds.headers()).json()
    assert customer["enrolled"] is True
    assert customer["puid"] == enrolled["puid"]
    assert "template" not in str(customer).lower()

    capture, session_id = start(app_client, creds, "VERIFY", customerId="alice")
    response = submit(capture, faces.alice_again)
    assert response.json()["status"] == "SUCCESS", response.text
    got = session_of(app_client, creds, session_id)
    assert got["status"] == "SUCCESS"
    assert got["result"]["matchScore"] >= got["result"]["threshold"]
    assert got["result"]["liveness"] == {
        "method": "passive-signals",
        "score": got["result"]["liveness"]["score"],
        "certifiedPad": False,
    }


@pytest.mark.models
def test_verify_of_another_person_is_face_not_match(
    app_client: httpx.Client, creds: Creds, faces: Faces
) -> None:
    enrol(app_client, creds, faces.alice, "alice")
    capture, session_id = start(app_client, creds, "VERIFY", customerId="alice")
    assert_envelope(submit(capture, faces.stranger), 422, [-9])
    got = session_of(app_client, creds, session_id)
    assert got["status"] == "FAILED"
    assert got["errorCodes"] == [-9]
    assert got["result"]["matchScore"] < got["result"]["threshold"]


@pytest.mark.models
def test_group_photo_is_multiple_faces(
    app_client: httpx.Client, creds: Creds, faces: Faces
) -> None:
    capture, session_id = start(app_client, creds, "ENROLL")
    assert_envelope(submit(capture, faces.group), 422, [-11])
    assert session_of(app_client, creds, session_id)["errorCodes"] == [-11]


@pytest.mark.models
def test_dark_frame_is_low_light(app_client: httpx.Client, creds: Creds, faces: Faces) -> None:
    assert faces.alice_path is not None
    dark = encode(darken(load(faces.alice_path), 0.03))
    capture, session_id = start(app_client, creds, "ENROLL")
    assert_envelope(submit(capture, dark), 422, [-10])
    assert session_of(app_client, creds, session_id)["errorCodes"] == [-10]


@pytest.mark.models
def test_no_face_then_a_good_frame_succeeds(
    app_client: httpx.Client, creds: Creds, faces: Faces
) -> None:
    capture, session_id = start(app_client, creds, "ENROLL", customerId="bob")
    first = submit(capture, no_face_jpeg())
    assert first.status_code == 200
    assert first.json()["status"] == "IN_PROGRESS"
    assert first.json()["errorCodes"] == [-22]
    second = submit(capture, faces.alice)
    assert second.json()["status"] == "SUCCESS", second.text
    got = session_of(app_client, creds, session_id)
    assert got["status"] == "SUCCESS"
    assert got["errorCodes"] == [-22]


@pytest.mark.models
def test_sign_in_identifies_the_enrolled_customer_and_refuses_a_stranger(
    app_client: httpx.Client, creds: Creds, faces: Faces
) -> None:
    enrolled = enrol(app_client, creds, faces.alice, "alice")
    capture, session_id = start(app_client, creds, "SIGN-IN")
    response = submit(capture, faces.alice_again)
    assert response.json()["status"] == "SUCCESS", response.text
    got = session_of(app_client, creds, session_id)
    assert got["customerId"] == "alice"
    assert got["puid"] == enrolled["puid"]

    capture, session_id = start(app_client, creds, "SIGN-IN")
    assert_envelope(submit(capture, faces.stranger), 422, [-9])
    assert session_of(app_client, creds, session_id)["customerId"] is None


@pytest.mark.models
def test_erased_customer_cannot_be_verified_or_found(
    app_client: httpx.Client, creds: Creds, faces: Faces
) -> None:
    enrol(app_client, creds, faces.alice, "alice")
    assert app_client.delete("/v2/customers/alice", headers=creds.headers()).status_code == 204
    assert_envelope(app_client.get("/v2/customers/alice", headers=creds.headers()), 404)
    response = app_client.post(
        CREATE, json={"type": "VERIFY", "customerId": "alice"}, headers=creds.headers()
    )
    assert_envelope(response, 404)
    capture, _ = start(app_client, creds, "SIGN-IN")
    assert_envelope(submit(capture, faces.alice_again), 422, [-9])


@pytest.mark.models
def test_enrolling_the_same_face_twice_is_flagged(
    app_client: httpx.Client, creds: Creds, faces: Faces
) -> None:
    enrol(app_client, creds, faces.alice, "alice")
    capture, session_id = start(app_client, creds, "ENROLL", customerId="alice-2")
    assert submit(capture, faces.alice_again).json()["status"] == "SUCCESS"
    got = session_of(app_client, creds, session_id)
    webhook = app_client.get(f"{CREATE}/{session_id}/webhook", headers=creds.headers()).json()
    assert "DUPLICATE_ENROLMENT" in webhook["riskEvaluation"]["flags"]
    assert got["status"] == "SUCCESS"


# ------------------------------------------------------------------ active liveness


def active(client: httpx.Client, creds: Creds) -> tuple[Capture, str, dict[str, Any]]:
    made = client.post(
        CREATE, json={"type": "ENROLL", "liveness": "active"}, headers=creds.headers()
    ).json()
    capture = Capture(client, made["launchUrl"])
    loaded = capture.load().json()
    return capture, str(made["sessionId"]), loaded["challenge"]


@pytest.mark.models
def test_repeated_still_photo_under_active_liveness_is_spoof(
    app_client: httpx.Client, creds: Creds, faces: Faces
) -> None:
    capture, session_id, challenge = active(app_client, creds)
    frames = [faces.alice] * 8
    response = submit(
        capture, *frames, challengeId=challenge["id"], frameTimes=[i * 120.0 for i in range(8)]
    )
    assert_envelope(response, 422, [1])
    got = session_of(app_client, creds, session_id)
    assert got["status"] == "FAILED"
    assert got["errorCodes"] == [1]
    assert got["result"]["liveness"]["certifiedPad"] is False


@pytest.mark.models
def test_burst_whose_identity_changes_midway_is_spoof(
    app_client: httpx.Client, creds: Creds, faces: Faces
) -> None:
    capture, session_id, challenge = active(app_client, creds)
    frames = [faces.alice, faces.alice_again, faces.stranger, faces.stranger]
    response = submit(
        capture, *frames, challengeId=challenge["id"], frameTimes=[0.0, 400.0, 800.0, 1200.0]
    )
    assert_envelope(response, 422, [1])
    assert session_of(app_client, creds, session_id)["errorCodes"] == [1]
