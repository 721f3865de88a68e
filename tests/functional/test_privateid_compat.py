"""A PrivateID-style integration, exactly as its public sample code talks, works unchanged.

Key-only auth (``x_api_key`` alone), the sample's body (empty ``redirectURL``,
``sendImages``, ``sendEventWebhooks``, ``requirements``), a base URL that already
ends in ``/v2``, the polling fallback, and a receiver that answers 404 to a webhook
for a session it does not know yet.
"""

from __future__ import annotations

import base64
import datetime as dt
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import Engine
from test_biometrics_e2e import Faces, faces  # noqa: F401 - the faces fixture
from test_capture_protocol import Capture, no_face_jpeg

from bioverify.config import Settings
from bioverify.worker import Worker
from support import Receiver, assert_envelope, make_client, serve


def sample_body(kind: str, receiver_url: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": kind,
        "callback": {"url": receiver_url, "headers": {"Content-Type": "application/json"}},
        "redirectURL": "",
        "locale": "en-US",
        "enableDesktop": True,
        "sendImages": True,
        "sendEventWebhooks": True,
        "requirements": ["face"],
        **extra,
    }


def capture_frames(client: httpx.Client, launch_url: str, *frames: bytes) -> list[httpx.Response]:
    capture = Capture(client, launch_url)
    assert capture.load().status_code == 200
    out = []
    for frame in frames:
        payload = capture.plaintext(
            frames=[base64.b64encode(frame).decode()],
            indicators={"headless": {"webdriver": False, "headlessUserAgent": False}},
        )
        out.append(capture.post("capture", capture.envelope("capture", payload)))
    return out


def distinct(receiver: Receiver, session_id: str) -> list[dict[str, Any]]:
    """The session's webhooks in arrival order, one per webhook-id (retries folded)."""
    seen: dict[str, dict[str, Any]] = {}
    for hook in receiver.received:
        body = hook.json()
        if body.get("sessionId") == session_id:
            seen.setdefault(hook.headers["webhook-id"], body)
    return list(seen.values())


def wait_final(receiver: Receiver, session_id: str, timeout: float = 30) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        hooks = distinct(receiver, session_id)
        if hooks and hooks[-1].get("status") in {"SUCCESS", "FAILED"}:
            return hooks
        receiver.wait_for(len(receiver.received) + 1, timeout=max(0.1, deadline - time.monotonic()))
    raise AssertionError(f"no final webhook for {session_id}")


@pytest.mark.models
def test_privateid_sample_integration_enrols_and_verifies(
    settings: Settings,
    make_app: Callable[..., FastAPI],
    db_engine: Engine,
    faces: Faces,  # noqa: F811 - pytest fixture
) -> None:
    key_only = make_client(db_engine, name="privateid-style", key_only=True)
    headers = {"x_api_key": key_only.api_key}
    # The sample sends no liveness: this deployment's default is passive (the capture
    # here replays photos, which active liveness rightly refuses).
    fast = settings.with_overrides(webhook_test_schedule=True, default_liveness="passive")
    # The sample's receiver answers 404 to the first webhook it sees (it does not know
    # the session yet), then 200: the retry policy must deliver it again later.
    with (
        Receiver(statuses=[404]) as receiver,
        serve(
            make_app(
                settings=fast,
                run_worker=True,
                worker_factory=Worker,
                clock=lambda: dt.datetime.now(dt.UTC),
            )
        ) as client,
    ):
        base = f"{client.base_url}/v2"  # a base URL that already holds /v2
        made = client.post(
            f"{base}/verification-session",
            json=sample_body("ENROLL", receiver.url, customerId="pid-alice"),
            headers=headers,
        )
        assert made.status_code == 201, made.text
        enrol_id = made.json()["sessionId"]
        first, second = capture_frames(
            client, made.json()["launchUrl"], no_face_jpeg(), faces.alice
        )
        assert first.json()["status"] == "IN_PROGRESS"
        assert second.json()["status"] == "SUCCESS"

        hooks = wait_final(receiver, enrol_id)
        assert [h.get("event") for h in hooks] == ["session.loaded", "attempt.failed", None]
        assert hooks[1]["errorCodes"] == [-22]
        final = hooks[-1]
        assert final["status"] == "SUCCESS"
        # What the integration does with it: JavaScript's new Date(payload.timestamp).
        assert final["timestamp"].endswith("Z")
        assert dt.datetime.fromisoformat(final["timestamp"]).year >= 2026
        assert final["puid"]
        assert final["images"][0]["type"] == "portrait"
        assert base64.b64decode(final["images"][0]["data"])[:2] == b"\xff\xd8"  # a JPEG
        assert final["riskEvaluation"]["recommendation"] == "ALLOW"
        assert final["indicators"]["headless"]["webdriver"] is False
        assert final["indicators"]["virtualCamera"]["riskLevel"] == "LOW"
        assert [e["code"] for e in final["errors"]] == [-22]
        # The receiver's first answer was 404: that webhook was delivered again.
        ids = [h.headers["webhook-id"] for h in receiver.received]
        assert ids[0] == ids[1]

        # Polling fallback with the same key, through the /v2 base.
        polled = client.get(f"{base}/verification-session/{enrol_id}/webhook", headers=headers)
        assert polled.status_code == 200
        assert polled.json()["status"] == "SUCCESS"

        # VERIFY through a base URL without /v2 (bare paths route the same).
        made = client.post(
            f"{client.base_url}/verification-session",
            json=sample_body("VERIFY", receiver.url, customerId="pid-alice"),
            headers=headers,
        )
        assert made.status_code == 201, made.text
        verify_id = made.json()["sessionId"]
        [response] = capture_frames(client, made.json()["launchUrl"], faces.alice_again)
        assert response.json()["status"] == "SUCCESS", response.text
        hooks = wait_final(receiver, verify_id)
        assert hooks[0]["event"] == "session.loaded"
        assert hooks[-1]["status"] == "SUCCESS"
        assert hooks[-1]["customerId"] == "pid-alice"


def test_only_key_only_clients_may_send_the_key_alone(
    app_client: httpx.Client, db_engine: Engine
) -> None:
    key_only = make_client(db_engine, name="k", key_only=True)
    normal = make_client(db_engine, name="n")
    body = {"type": "ENROLL"}
    ok = app_client.post(
        "/v2/verification-session", json=body, headers={"x-api-key": key_only.api_key}
    )
    assert ok.status_code == 201
    refused = app_client.post(
        "/v2/verification-session", json=body, headers={"x_api_key": normal.api_key}
    )
    assert_envelope(refused, 401, [])


def test_doubled_v2_prefix_routes_too(app_client: httpx.Client, db_engine: Engine) -> None:
    key_only = make_client(db_engine, name="k", key_only=True)
    made = app_client.post(
        "/v2/v2/verification-session",
        json={"type": "ENROLL"},
        headers={"x_api_key": key_only.api_key},
    )
    assert made.status_code == 201
