"""Final webhooks from real sessions: signed, receipted, retried, redelivered, polled."""

from __future__ import annotations

import base64
import datetime as dt
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from standardwebhooks.webhooks import Webhook
from test_capture_protocol import Capture

from bioverify.audit.receipt import verify_receipt
from bioverify.config import Settings
from bioverify.worker import Worker
from support import Creds, Receiver, assert_envelope, serve

CREATE = "/v2/verification-session"


@pytest.fixture
def live(settings: Settings, make_app: Callable[..., FastAPI]) -> Callable[..., Any]:
    def start() -> Any:
        fast = settings.with_overrides(webhook_test_schedule=True, sweep_interval_s=0.1)
        # A real clock: the dispatcher's (test-mode) retry schedule must actually elapse.
        return serve(
            make_app(
                settings=fast,
                run_worker=True,
                worker_factory=Worker,
                clock=lambda: dt.datetime.now(dt.UTC),
            )
        )

    return start


def fail_session(client: httpx.Client, creds: Creds, url: str, **fields: Any) -> str:
    made = client.post(
        CREATE,
        json={
            "type": "ENROLL",
            "liveness": "passive",
            "callback": {"url": url, "headers": {"X-Tenant": "t1"}},
            "transactionID": "tx-9",
            **fields,
        },
        headers=creds.headers(),
    ).json()
    capture = Capture(client, made["launchUrl"])
    assert capture.load().status_code == 200
    assert capture.events(-7).json()["status"] == "FAILED"
    return str(made["sessionId"])


def test_final_webhook_is_signed_and_carries_a_verifiable_receipt(
    live: Callable[..., Any], creds: Creds
) -> None:
    with Receiver() as receiver, live() as client:
        session_id = fail_session(client, creds, receiver.url)
        [hook] = receiver.wait_for(1)
        # The Standard Webhooks reference implementation accepts our signature.
        Webhook(creds.webhook_secret).verify(hook.body, hook.headers)
        assert hook.headers["x-tenant"] == "t1"
        assert hook.headers["webhook-attempt"] == "1"
        payload = hook.json()
        assert payload["sessionId"] == session_id
        assert payload["status"] == "FAILED"
        assert payload["errorCodes"] == [-7]
        assert payload["errors"][0]["name"] == "CAMERA_FAIL"
        assert payload["transactionID"] == "tx-9"
        # RFC 3339 UTC, what JavaScript's new Date() parses.
        assert dt.datetime.fromisoformat(payload["timestamp"]).tzinfo == dt.UTC
        jwks = client.get("/.well-known/jwks.json").json()
        checkpoint = client.get("/v2/audit/checkpoint", headers=creds.headers()).json()
        leaf = next(
            e
            for e in client.get("/v2/audit/entries", headers=creds.headers()).json()["entries"]
            if e["index"] == payload["audit"]["index"]
        )
        assert leaf["entry"]["event"] == "session:state:ended"
        assert verify_receipt(
            base64.b64decode(leaf["leafHash"]),
            payload["audit"],
            jwks,
            checkpoint["keyName"],
            checkpoint["origin"],
        )
        # Polling fallback returns the same payload.
        polled = client.get(f"{CREATE}/{session_id}/webhook", headers=creds.headers()).json()
        assert polled["sessionId"] == session_id
        assert polled["audit"] == payload["audit"]


def test_failing_receiver_gets_retries_with_one_webhook_id(
    live: Callable[..., Any], creds: Creds
) -> None:
    with Receiver(statuses=[500, 500]) as receiver, live() as client:
        session_id = fail_session(client, creds, receiver.url)
        hooks = receiver.wait_for(3)
        assert len({h.headers["webhook-id"] for h in hooks}) == 1
        assert [h.headers["webhook-attempt"] for h in hooks] == ["1", "2", "3"]
        for hook in hooks:
            Webhook(creds.webhook_secret).verify(hook.body, hook.headers)
        deliveries = _wait_deliveries(client, creds, session_id, 3)
        assert [d["httpStatus"] for d in deliveries] == [500, 500, 200]


def test_redelivery_keeps_the_webhook_id(live: Callable[..., Any], creds: Creds) -> None:
    with Receiver() as receiver, live() as client:
        session_id = fail_session(client, creds, receiver.url)
        [first] = receiver.wait_for(1)
        _wait_deliveries(client, creds, session_id, 1)
        response = client.post(f"{CREATE}/{session_id}/webhook/redeliver", headers=creds.headers())
        assert response.status_code == 202
        second = receiver.wait_for(2)[1]
        assert second.headers["webhook-id"] == first.headers["webhook-id"]


def test_webhook_of_an_open_session_is_409(app_client: httpx.Client, creds: Creds) -> None:
    made = app_client.post(CREATE, json={"type": "ENROLL"}, headers=creds.headers()).json()
    response = app_client.get(f"{CREATE}/{made['sessionId']}/webhook", headers=creds.headers())
    assert_envelope(response, 409, [])


def _wait_deliveries(
    client: httpx.Client, creds: Creds, session_id: str, count: int
) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 20
    while True:
        found = client.get(f"{CREATE}/{session_id}/deliveries", headers=creds.headers()).json()[
            "deliveries"
        ]
        if len(found) >= count or time.monotonic() > deadline:
            return list(found)
        time.sleep(0.05)  # bounded poll for the recorded attempts


def test_spoof_alert_reaches_the_operator_webhook_signed(
    settings: Settings, make_app: Callable[..., FastAPI], creds: Creds
) -> None:
    with Receiver() as operator:
        fast = settings.with_overrides(webhook_test_schedule=True, alert_webhook_url=operator.url)
        app = make_app(
            settings=fast,
            run_worker=True,
            worker_factory=Worker,
            clock=lambda: dt.datetime.now(dt.UTC),
        )
        with serve(app) as client:
            made = client.post(
                CREATE, json={"type": "ENROLL", "liveness": "passive"}, headers=creds.headers()
            ).json()
            capture = Capture(client, made["launchUrl"])
            capture.load()
            assert capture.events(1).json()["status"] == "FAILED"
            [hook] = operator.wait_for(1)
            secret = (settings.keys_dir / "alert-webhook.secret").read_text().strip()
            Webhook(secret).verify(hook.body, hook.headers)
            alert = hook.json()
            assert alert["rule"] == "spoof_attempt"
            assert alert["severity"] == "critical"
            assert alert["details"]["sessionId"] == made["sessionId"]
            assert creds.api_key not in hook.body.decode()
