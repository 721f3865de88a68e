"""The capture protocol over HTTP: every code it raises, and what it does to the session."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from typing import Any

import cv2
import httpx
import numpy as np
import pytest
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from bioverify.capture.envelope import fresh_nonce, seal
from bioverify.capture.sdk import CaptureSession
from bioverify.sessions.capture import WRONG_TOKEN_LIMIT
from bioverify.sessions.models import Enrolment, SessionRow
from bioverify.storage.database import session_factory, transaction
from support import Creds, FakeClock, assert_envelope, serve

CREATE = "/v2/verification-session"
MOBILE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148"
DESKTOP = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120 Safari/537.36"


class Capture:
    """A capture client driving one session by hand (so tests can tamper with it)."""

    def __init__(
        self, http: httpx.Client, launch_url: str, *, ua: str = MOBILE, device: str = "device-A"
    ) -> None:
        self.http = http
        self.token = launch_url.rsplit("/", 1)[1]
        self.headers = {"user-agent": ua, "x-device-info": device}
        self.session_id = ""
        key = http.get("/public-key").json()
        self.pem, self.kid = key["publicKey"], key["kid"]

    def load(self, **headers: str) -> httpx.Response:
        response = self.http.get(f"{CREATE}/{self.token}", headers={**self.headers, **headers})
        if response.status_code == 200:
            self.session_id = response.json()["sessionId"]
        return response

    def envelope(self, route: str, plaintext: dict[str, Any]) -> dict[str, str]:
        return seal(
            plaintext,
            public_key_pem=self.pem,
            kid=self.kid,
            session_id=self.session_id,
            route=route,
        )

    def plaintext(self, **fields: Any) -> dict[str, Any]:
        return {"nonce": fresh_nonce(), "timestamp": int(time.time()), **fields}

    def post(self, route: str, body: Any, **headers: str) -> httpx.Response:
        return self.http.post(
            f"{CREATE}/{self.token}/{route}", json=body, headers={**self.headers, **headers}
        )

    def events(self, *codes: int) -> httpx.Response:
        body = self.envelope("events", self.plaintext(events=[{"code": c} for c in codes]))
        return self.post("events", body)


def open_session(client: httpx.Client, creds: Creds, **fields: Any) -> dict[str, Any]:
    response = client.post(
        CREATE, json={"type": "ENROLL", "liveness": "passive", **fields}, headers=creds.headers()
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def session_of(client: httpx.Client, creds: Creds, session_id: str) -> dict[str, Any]:
    return dict(client.get(f"{CREATE}/{session_id}", headers=creds.headers()).json())


@pytest.fixture
def made(app_client: httpx.Client, creds: Creds) -> dict[str, Any]:
    return open_session(app_client, creds)


@pytest.fixture
def cap(app_client: httpx.Client, made: dict[str, Any]) -> Capture:
    capture = Capture(app_client, str(made["launchUrl"]))
    assert capture.load().status_code == 200
    return capture


def no_face_jpeg() -> bytes:
    """A real 640x480 photo-like frame with no face in it (a lit gradient and noise)."""
    rng = np.random.default_rng(7)
    gradient = np.linspace(60, 200, 640, dtype=np.float32)[None, :, None]
    image = np.clip(gradient + rng.normal(0, 12, (480, 640, 3)), 0, 255).astype(np.uint8)
    ok, buffer = cv2.imencode(".jpg", image)
    assert ok
    return bytes(buffer.tobytes())


def test_public_key_and_jwks_are_served(app_client: httpx.Client) -> None:
    key = app_client.get("/public-key").json()
    assert key["alg"] == "RSA-OAEP-256+A256GCM"
    assert key["publicKey"].startswith("-----BEGIN PUBLIC KEY-----")
    jwks = app_client.get("/.well-known/jwks.json").json()
    assert jwks["keys"][0]["crv"] == "Ed25519"


def test_load_moves_to_in_progress_and_issues_a_fresh_challenge(
    app_client: httpx.Client, creds: Creds
) -> None:
    made = open_session(app_client, creds, liveness="active")
    capture = Capture(app_client, str(made["launchUrl"]))
    first = capture.load().json()
    assert first["status"] == "IN_PROGRESS"
    assert first["sessionId"] == made["sessionId"]
    steps = first["challenge"]["steps"]
    assert 3 <= len(steps) <= 4
    assert set(steps) <= {"TURN_LEFT", "TURN_RIGHT", "NOD", "MOVE_CLOSER", "BLINK", "SMILE"}
    second = capture.load().json()
    assert second["challenge"]["id"] != first["challenge"]["id"]
    assert session_of(app_client, creds, str(made["sessionId"]))["status"] == "IN_PROGRESS"


def test_desktop_refused_when_desktop_disabled(app_client: httpx.Client, creds: Creds) -> None:
    made = open_session(app_client, creds, enableDesktop=False)
    capture = Capture(app_client, str(made["launchUrl"]), ua=DESKTOP)
    assert_envelope(capture.load(), 403, [-5])
    got = session_of(app_client, creds, str(made["sessionId"]))
    assert got["status"] == "FAILED"
    assert got["errorCodes"] == [-5]


def test_desktop_reported_by_the_client_ends_the_session(
    cap: Capture, app_client: httpx.Client, creds: Creds
) -> None:
    assert cap.events(-5).json()["status"] == "FAILED"
    assert session_of(app_client, creds, cap.session_id)["errorCodes"] == [-5]


def test_camera_failure_reported_ends_the_session(
    cap: Capture, app_client: httpx.Client, creds: Creds
) -> None:
    response = cap.events(-7)
    assert response.status_code == 200
    assert response.json()["status"] == "FAILED"
    got = session_of(app_client, creds, cap.session_id)
    assert got["status"] == "FAILED"
    assert got["errorCodes"] == [-7]
    assert got["errors"][0]["kind"] == "fatal"


def test_any_capture_call_after_ttl_is_410_expired(
    app_client: httpx.Client, creds: Creds, clock: FakeClock
) -> None:
    made = open_session(app_client, creds, sessionExpiry=60)
    capture = Capture(app_client, str(made["launchUrl"]))
    assert capture.load().status_code == 200
    clock.advance(61)
    assert_envelope(capture.events(-20), 410, [-8])
    assert_envelope(capture.load(), 410, [-8])
    got = session_of(app_client, creds, str(made["sessionId"]))
    assert got["status"] == "FAILED"
    assert got["errorCodes"] == [-8]


def test_repeated_wrong_token_secrets_end_a_live_session_with_401(
    app_client: httpx.Client, creds: Creds, made: dict[str, Any]
) -> None:
    token = str(made["launchUrl"]).rsplit("/", 1)[1]
    forged = token.rsplit(".", 1)[0] + ".A" + "b" * 42
    for _ in range(WRONG_TOKEN_LIMIT):  # one wrong secret alone does not end it
        response = app_client.get(f"{CREATE}/{forged}", headers={"user-agent": MOBILE})
        assert_envelope(response, 401, [-14])
    got = session_of(app_client, creds, str(made["sessionId"]))
    assert got["status"] == "FAILED"
    assert got["errorCodes"] == [-14]


def test_garbage_token_is_401_without_touching_any_session(app_client: httpx.Client) -> None:
    assert_envelope(app_client.get(f"{CREATE}/not-a-token"), 401, [-14])
    assert_envelope(app_client.post(f"{CREATE}/not-a-token/events", json={}), 401, [-14])


def test_same_encrypted_body_twice_is_replay(
    cap: Capture, app_client: httpx.Client, creds: Creds
) -> None:
    body = cap.envelope("events", cap.plaintext(events=[{"code": -20}]))
    assert cap.post("events", body).status_code == 200
    assert_envelope(cap.post("events", body), 409, [-15])
    got = session_of(app_client, creds, cap.session_id)
    assert got["status"] == "FAILED"
    assert got["errorCodes"] == [-20, -15]


def test_consumed_token_is_409_token_already_used(app_client: httpx.Client, creds: Creds) -> None:
    made = open_session(app_client, creds, maxAttempts=1)
    capture = Capture(app_client, str(made["launchUrl"]))
    capture.load()
    frame = base64.b64encode(no_face_jpeg()).decode()
    ended = capture.post("capture", capture.envelope("capture", capture.plaintext(frames=[frame])))
    assert_envelope(ended, 422, [-22])
    assert_envelope(capture.events(-20), 409, [-15])
    assert_envelope(capture.load(), 409, [-15])


def test_without_bind_device_the_link_opens_on_a_second_device(
    cap: Capture, app_client: httpx.Client, creds: Creds
) -> None:
    second = Capture(app_client, f"x/{cap.token}", device="device-B")
    assert second.load().status_code == 200
    response = second.post(
        "events", second.envelope("events", second.plaintext(events=[{"code": -24}]))
    )
    assert response.status_code == 200, response.text
    got = session_of(app_client, creds, cap.session_id)
    assert got["status"] == "IN_PROGRESS"
    assert got["errorCodes"] == [-24]


def test_with_bind_device_another_device_is_device_mismatch(
    app_client: httpx.Client, creds: Creds
) -> None:
    made = app_client.post(
        CREATE, json={"type": "SIGN-IN", "bindDevice": True}, headers=creds.headers()
    )
    assert made.status_code == 201, made.text
    first = Capture(app_client, made.json()["launchUrl"], device="device-A")
    assert first.load().status_code == 200
    second = Capture(app_client, made.json()["launchUrl"], device="device-B")
    assert_envelope(second.load(), 403, [-16])
    got = session_of(app_client, creds, made.json()["sessionId"])
    assert got["status"] == "FAILED"
    assert got["errorCodes"] == [-16]


def test_bind_device_refuses_a_device_other_than_the_enrolments(
    app_client: httpx.Client, creds: Creds, db_engine: Engine, make_app: Callable[..., FastAPI]
) -> None:
    enrol = open_session(app_client, creds, customerId="bob")
    enrol_cap = Capture(app_client, str(enrol["launchUrl"]), device="phone-1")
    enrol_cap.load()
    # The enrolment's device hash must be the server's keyed hash of that device.
    with transaction(session_factory(db_engine)) as db:
        row = db.get(SessionRow, enrol["sessionId"])
        assert row is not None and row.device_hash
        db.add(
            Enrolment(
                client_id=creds.client_id,
                customer_id="bob",
                puid="puid_bob",
                template=b"\x01",
                model_version="m",
                device_hash=row.device_hash,
            )
        )
    verify = app_client.post(
        CREATE,
        json={"type": "VERIFY", "customerId": "bob", "bindDevice": True},
        headers=creds.headers(),
    )
    assert verify.status_code == 201
    same = Capture(app_client, verify.json()["launchUrl"], device="phone-1")
    assert same.load().status_code == 200
    verify2 = app_client.post(
        CREATE,
        json={"type": "VERIFY", "customerId": "bob", "bindDevice": True},
        headers=creds.headers(),
    )
    other = Capture(app_client, verify2.json()["launchUrl"], device="phone-2")
    assert_envelope(other.load(), 403, [-16])
    assert session_of(app_client, creds, verify2.json()["sessionId"])["errorCodes"] == [-16]


@pytest.mark.parametrize("code", [-20, -22, -23, -24])
def test_diagnostics_are_recorded_once_and_never_end_the_session(
    cap: Capture, app_client: httpx.Client, creds: Creds, code: int
) -> None:
    for _ in range(3):
        response = cap.events(code)
        assert response.status_code == 200
        assert response.json()["status"] == "IN_PROGRESS"
    got = session_of(app_client, creds, cap.session_id)
    assert got["status"] == "IN_PROGRESS"
    assert got["errorCodes"] == [code]
    assert got["errors"][0]["kind"] == "diagnostic"


def test_legacy_minus_13_is_recorded_as_minus_8(
    cap: Capture, app_client: httpx.Client, creds: Creds
) -> None:
    response = cap.events(-13)
    assert response.status_code == 400  # -8 is server-raised, not client-reportable


@pytest.mark.parametrize("code", [-9, -11, -14, 99])
def test_codes_a_client_may_not_report_are_400(
    cap: Capture, app_client: httpx.Client, creds: Creds, code: int
) -> None:
    body = assert_envelope(cap.events(code), 400, [])
    assert str(code) in body["message"]
    assert session_of(app_client, creds, cap.session_id)["status"] == "IN_PROGRESS"


def test_plain_json_body_is_400(cap: Capture) -> None:
    plain = cap.plaintext(events=[{"code": -7}])
    body = assert_envelope(cap.post("events", plain), 400, [])
    assert "encrypted" in body["message"]


def _b64_flip(value: str, index: int) -> str:
    raw = bytearray(base64.b64decode(value))
    raw[index % len(raw)] ^= 0x01
    return base64.b64encode(bytes(raw)).decode()


def test_bad_gcm_tag_is_400(cap: Capture) -> None:
    body = cap.envelope("events", cap.plaintext(events=[{"code": -20}]))
    body["gcmTag"] = _b64_flip(body["gcmTag"], 0)
    assert_envelope(cap.post("events", body), 400, [])


def test_wrong_aad_is_400(cap: Capture) -> None:
    body = cap.envelope("capture", cap.plaintext(events=[{"code": -20}]))
    assert "gcmAad" in assert_envelope(cap.post("events", body), 400, [])["message"]


def test_unknown_kid_is_400(cap: Capture) -> None:
    body = cap.envelope("events", cap.plaintext(events=[{"code": -20}]))
    body["kid"] = "no-such-kid"
    assert "kid" in assert_envelope(cap.post("events", body), 400, [])["message"]


@pytest.mark.parametrize("skew", [-301, 301])
def test_timestamp_outside_window_is_400(cap: Capture, skew: int) -> None:
    plaintext = cap.plaintext(events=[{"code": -20}])
    plaintext["timestamp"] = int(time.time()) + skew
    body = assert_envelope(cap.post("events", cap.envelope("events", plaintext)), 400, [])
    assert "timestamp" in body["message"]


FIELDS = ["encryptedKey", "encryptedMessage", "iv", "gcmTag", "gcmAad"]


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(field=st.sampled_from(FIELDS), index=st.integers(0, 600), bit=st.integers(0, 7))
def test_any_flipped_byte_is_400_and_changes_nothing(  # noqa: PLR0917 - fixtures plus Hypothesis arguments
    cap: Capture,
    app_client: httpx.Client,
    creds: Creds,
    field: str,
    index: int,
    bit: int,
) -> None:
    body = cap.envelope("events", cap.plaintext(events=[{"code": -7}]))
    raw = bytearray(base64.b64decode(body[field]))
    raw[index % len(raw)] ^= 1 << bit
    body[field] = base64.b64encode(bytes(raw)).decode()
    assert_envelope(cap.post("events", body), 400, [])
    got = session_of(app_client, creds, cap.session_id)
    assert got["status"] == "IN_PROGRESS"
    assert got["errorCodes"] == []


def test_no_face_attempts_count_down_then_fail(app_client: httpx.Client, creds: Creds) -> None:
    made = open_session(app_client, creds, maxAttempts=2)
    capture = Capture(app_client, str(made["launchUrl"]))
    capture.load()
    frame = base64.b64encode(no_face_jpeg()).decode()
    first = capture.post("capture", capture.envelope("capture", capture.plaintext(frames=[frame])))
    assert first.status_code == 200
    assert first.json()["status"] == "IN_PROGRESS"
    assert first.json()["attemptsLeft"] == 1
    assert first.json()["errorCodes"] == [-22]
    last = capture.post("capture", capture.envelope("capture", capture.plaintext(frames=[frame])))
    assert_envelope(last, 422, [-22])
    got = session_of(app_client, creds, str(made["sessionId"]))
    assert got["status"] == "FAILED"
    assert got["errorCodes"] == [-22]


def test_active_liveness_needs_the_current_challenge(
    app_client: httpx.Client, creds: Creds
) -> None:
    made = open_session(app_client, creds, liveness="active")
    capture = Capture(app_client, str(made["launchUrl"]))
    capture.load()
    frame = base64.b64encode(no_face_jpeg()).decode()
    missing = capture.post(
        "capture", capture.envelope("capture", capture.plaintext(frames=[frame]))
    )
    assert "challengeId" in assert_envelope(missing, 400, [])["message"]
    stale = capture.post(
        "capture",
        capture.envelope(
            "capture",
            capture.plaintext(frames=[frame], challengeId="00000000-0000-4000-8000-000000000000"),
        ),
    )
    assert "challenge" in assert_envelope(stale, 400, [])["message"]


def test_frames_that_are_not_images_are_400(cap: Capture) -> None:
    junk = base64.b64encode(b"definitely not a jpeg").decode()
    response = cap.post("capture", cap.envelope("capture", cap.plaintext(frames=[junk])))
    assert "Frame 0" in assert_envelope(response, 400, [])["message"]


# ----------------------------------------------------------------------------- SDK


class CountingTransport(httpx.HTTPTransport):
    def __init__(self) -> None:
        super().__init__()
        self.paths: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.paths.append(f"{request.method} {request.url.path}")
        return super().handle_request(request)


def test_sdk_reports_minus_22_once_for_three_faceless_attempts(
    app_client: httpx.Client, creds: Creds
) -> None:
    made = open_session(app_client, creds, maxAttempts=4)
    transport = CountingTransport()
    launch = str(made["launchUrl"]).replace("http://testserver", str(app_client.base_url))
    with CaptureSession.from_launch_url(launch, transport=transport) as sdk:
        outcomes = [sdk.submit([no_face_jpeg()]) for _ in range(3)]
    assert [o.status for o in outcomes] == ["IN_PROGRESS"] * 3
    assert [o.attempts_left for o in outcomes] == [3, 2, 1]
    assert sum(p.endswith("/events") for p in transport.paths) == 1
    got = session_of(app_client, creds, str(made["sessionId"]))
    assert got["errorCodes"] == [-22]
    assert got["status"] == "IN_PROGRESS"


def test_sdk_retries_load_and_then_reports_minus_24_once(
    make_app: Callable[..., FastAPI], creds: Creds
) -> None:
    with serve(make_app()) as client:
        made = open_session(client, creds)
        flaky = FlakyTransport(failures=2)
        launch = str(made["launchUrl"]).replace("http://testserver", str(client.base_url))
        with CaptureSession.from_launch_url(launch, transport=flaky, sleep=lambda _s: None) as sdk:
            assert sdk.session["status"] == "IN_PROGRESS"
            assert sdk.report(-24) is None  # already sent once after the recovered load
        assert sum(p.endswith("/events") for p in flaky.paths) == 1
        assert session_of(client, creds, str(made["sessionId"]))["errorCodes"] == [-24]


def test_server_records_minus_20_once_when_posted_twice(
    cap: Capture, app_client: httpx.Client, creds: Creds
) -> None:
    assert cap.events(-20).status_code == 200
    assert cap.events(-20).status_code == 200
    assert session_of(app_client, creds, cap.session_id)["errorCodes"] == [-20]


class FlakyTransport(CountingTransport):
    """Refuses the first ``failures`` session loads as a network error would."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if (
            request.method == "GET"
            and "/verification-session/" in request.url.path
            and self.failures > 0
        ):
            self.failures -= 1
            self.paths.append("GET (refused)")
            raise httpx.ConnectError("connection refused", request=request)
        return super().handle_request(request)
