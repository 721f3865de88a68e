"""PrivateID drop-in, round 2 (issue 14): what a PrivateID integration does, over HTTP.

Each test is one numbered item of the issue, played as the integration plays it,
with the real models on real face photos wherever a capture is involved. The two
security items this issue owns (the capture answer never identifies; client
``indicators``/``deviceInfo`` have a closed, bounded schema) are the tests named
``test_capture_answer_does_not_identify`` and ``test_indicators_*`` /
``test_device_info_*``.
"""

# The ``faces`` fixture is imported by name, so every test that asks for it shadows it.
# ruff: noqa: F811

from __future__ import annotations

import base64
import datetime as dt
import json
import sys
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from test_biometrics_e2e import Faces, enrol, faces, start, submit  # noqa: F401
from test_capture_protocol import Capture, no_face_jpeg
from typer.testing import CliRunner

from bioverify.accounts.models import Client
from bioverify.api.age import MESSAGE as AGE_MESSAGE
from bioverify.audit.receipt import verify_receipt
from bioverify.cli.main import app as cli
from bioverify.config import Settings
from bioverify.worker import Worker
from support import Creds, Receiver, assert_envelope, serve

CREATE = "/v2/verification-session"

#: What a headless, WebDriver-controlled browser with a virtual camera reports.
AUTOMATED = {
    "headless": {"webdriver": True, "headlessUserAgent": True},
    "virtualCamera": {"virtualCameraSoftware": True, "suspiciousLabels": True},
    "browserAnomalies": {"automationProperties": True},
}
#: What an ordinary phone browser reports.
ORDINARY = {
    "headless": {"webdriver": False},
    "virtualCamera": {
        "virtualCameraSoftware": False,
        "browserCompatibility": {"browser": "Chrome", "supportLevel": "full"},
    },
    "browserAnomalies": {"missingWebAPIs": False},
}
PHONE_INFO = {
    "browserType": "Chrome",
    "browserVersion": "131",
    "osName": "Android",
    "osVersion": "14",
    "deviceType": "mobile",
    "screenDimensions": {"width": 412, "height": 915},
    "orientation": "portrait",
}


def session_of(client: httpx.Client, creds: Creds, session_id: str) -> dict[str, Any]:
    response = client.get(f"{CREATE}/{session_id}", headers=creds.headers())
    assert response.status_code == 200, response.text
    return dict(response.json())


def create(client: httpx.Client, creds: Creds, **body: Any) -> httpx.Response:
    return client.post(CREATE, json={"liveness": "passive", **body}, headers=creds.headers())


@pytest.fixture
def live(settings: Settings, make_app: Callable[..., FastAPI]) -> Callable[..., Any]:
    """The real app with its worker delivering webhooks, on the real clock."""

    def start_live(*, test_schedule: bool = True) -> Any:
        cfg = settings.with_overrides(webhook_test_schedule=test_schedule)
        return serve(
            make_app(
                settings=cfg,
                run_worker=True,
                worker_factory=Worker,
                clock=lambda: dt.datetime.now(dt.UTC),
            )
        )

    return start_live


# ---------------------------------------------------------------- 2. VERIFY without customerId


@pytest.mark.models
def test_verify_without_customer_id_identifies_the_customer(
    app_client: httpx.Client, creds: Creds, faces: Faces
) -> None:
    enrolled = enrol(app_client, creds, faces.alice, "alice")
    made = create(app_client, creds, type="VERIFY")
    assert made.status_code == 201, made.text
    assert "customerId" not in made.json()
    capture = Capture(app_client, made.json()["launchUrl"])
    assert capture.load().status_code == 200
    assert submit(capture, faces.alice_again).json()["status"] == "SUCCESS"
    got = session_of(app_client, creds, made.json()["sessionId"])
    assert got["type"] == "VERIFY"
    assert got["status"] == "SUCCESS"
    assert got["customerId"] == "alice"
    assert got["puid"] == enrolled["puid"]
    assert got["guid"] == enrolled["guid"]
    assert got["result"]["identification"]["puid"] == enrolled["puid"]

    # A stranger is no one: -9, and the session names nobody.
    stranger, session_id = start(app_client, creds, "VERIFY")
    assert_envelope(submit(stranger, faces.stranger), 422, [-9])
    got = session_of(app_client, creds, session_id)
    assert got["status"] == "FAILED"
    assert got["customerId"] is None and got["puid"] is None and got["guid"] is None


# ---------------------------------------------------------------- 3. VERIFY_ULTRA


@pytest.mark.models
def test_verify_ultra_is_one_to_one_against_a_required_customer(
    app_client: httpx.Client, creds: Creds, faces: Faces
) -> None:
    body = assert_envelope(create(app_client, creds, type="VERIFY_ULTRA"), 400, [])
    assert "customerId is required for VERIFY_ULTRA" in body["message"]
    enrolled = enrol(app_client, creds, faces.alice, "alice")
    capture, session_id = start(app_client, creds, "VERIFY_ULTRA", customerId="alice")
    assert submit(capture, faces.alice_again).json()["status"] == "SUCCESS"
    got = session_of(app_client, creds, session_id)
    assert got["type"] == "VERIFY_ULTRA"
    assert got["customerId"] == "alice" and got["puid"] == enrolled["puid"]
    assert got["result"]["matchScore"] >= got["result"]["threshold"]

    capture, session_id = start(app_client, creds, "VERIFY_ULTRA", customerId="alice")
    assert_envelope(submit(capture, faces.stranger), 422, [-9])
    assert session_of(app_client, creds, session_id)["errorCodes"] == [-9]


# ---------------------------------------------------------------- 4. requirements


def test_requirements_accept_verification_and_explain_the_rest(
    app_client: httpx.Client, creds: Creds
) -> None:
    three = create(
        app_client, creds, type="ENROLL", requirements=["face", "identity_document", "verification"]
    )
    message = assert_envelope(three, 400, [])["message"]
    assert "identity documents are not available on this server yet" in message
    assert "List should" not in message and "items" not in message

    unknown = assert_envelope(
        create(app_client, creds, type="ENROLL", requirements=["selfie"]), 400
    )
    assert "'selfie'" in unknown["message"]
    for accepted in ("face", "identity_document", "verification"):
        assert accepted in unknown["message"]

    made = create(app_client, creds, type="ENROLL", requirements=["verification"])
    assert made.status_code == 201, made.text
    capture = Capture(app_client, made.json()["launchUrl"])
    assert capture.load().json()["requirements"] == ["face"]

    bad_type = assert_envelope(create(app_client, creds, type="LOGIN"), 400)
    assert "'LOGIN'" in bad_type["message"] and "VERIFY_ULTRA" in bad_type["message"]


# ---------------------------------------------------------------- 5. timestamp and 6. fields


@pytest.mark.models
def test_webhook_carries_rfc3339_timestamp_guid_device_info_and_indicators(
    live: Callable[..., Any], creds: Creds, faces: Faces
) -> None:
    with Receiver() as receiver, live() as client:
        made = create(
            client,
            creds,
            type="ENROLL",
            customerId="dana",
            callback={"url": receiver.url},
            deviceInfo={"appVersion": "3.2.1", "osName": "Android (integrator)"},
            sendEventWebhooks=True,
        ).json()
        capture = Capture(client, made["launchUrl"])
        assert capture.load().status_code == 200
        answer = submit(capture, faces.alice, deviceInfo=PHONE_INFO, indicators=ORDINARY)
        assert answer.json()["status"] == "SUCCESS", answer.text
        hooks = receiver.wait_for(2)
        event, final = hooks[0].json(), hooks[1].json()
        got = session_of(client, creds, made["sessionId"])
    assert event["event"] == "session.loaded"
    for payload in (event, final):
        # What the integration does: new Date(payload.timestamp).
        stamp = payload["timestamp"]
        assert stamp.endswith("Z")
        parsed = dt.datetime.fromisoformat(stamp)
        assert parsed.tzinfo == dt.UTC
        assert abs(parsed - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=5)
    assert final["status"] == "SUCCESS"
    assert final["guid"] and final["guid"] != final["puid"]
    assert final["deviceInfo"] == {
        **PHONE_INFO,
        "appVersion": "3.2.1",
        "osName": "Android (integrator)",  # the integrator's own value wins
    }
    indicators = final["indicators"]
    assert indicators["headless"]["webdriver"] is False
    assert indicators["headless"]["headlessUserAgent"] is False  # every flag explicit
    assert indicators["virtualCamera"]["riskLevel"] == "LOW"
    assert 0 <= indicators["virtualCamera"]["overallConfidence"] <= 100
    assert indicators["virtualCamera"]["browserCompatibility"] == {
        "browser": "Chrome",
        "supportLevel": "full",
    }
    assert indicators["browserAnomalies"]["automationProperties"] is False
    assert final["riskEvaluation"]["recommendation"] == "ALLOW"
    # The integrator's read of the session shows the same.
    assert got["guid"] == final["guid"]
    assert got["deviceInfo"] == final["deviceInfo"]
    assert got["indicators"] == final["indicators"]


@pytest.mark.models
def test_guid_is_stable_for_the_customer_and_readable_everywhere(
    app_client: httpx.Client, creds: Creds, faces: Faces
) -> None:
    enrolled = enrol(app_client, creds, faces.alice, "erin")
    customer = app_client.get("/v2/customers/erin", headers=creds.headers()).json()
    assert customer["guid"] == enrolled["guid"] != enrolled["puid"]
    again = enrol(app_client, creds, faces.alice_again, "erin")  # re-enrolment keeps it
    assert again["guid"] == enrolled["guid"]
    capture, session_id = start(app_client, creds, "VERIFY", customerId="erin")
    assert submit(capture, faces.alice_again).json()["status"] == "SUCCESS"
    assert session_of(app_client, creds, session_id)["guid"] == enrolled["guid"]
    other = enrol(app_client, creds, faces.stranger, "frank")
    assert other["guid"] != enrolled["guid"]


# ---------------------------------------------------------------- 7. redirect signal


@pytest.mark.models
def test_redirect_url_gets_session_status_and_reason_keeping_its_parameters(
    app_client: httpx.Client, creds: Creds, faces: Faces
) -> None:
    capture, session_id = start(
        app_client,
        creds,
        "ENROLL",
        redirectURL="https://app.example.com/done?from=pid&status=stale",
    )
    loaded = capture.load().json()
    assert loaded["redirectURL"] == "https://app.example.com/done?from=pid&status=stale"
    answer = submit(capture, faces.alice).json()
    target = urlsplit(answer["redirectURL"])
    assert (target.scheme, target.netloc, target.path) == ("https", "app.example.com", "/done")
    assert parse_qs(target.query) == {
        "from": ["pid"],
        "sessionId": [session_id],
        "status": ["SUCCESS"],
        "reason": ["success"],
    }

    # A session that fails says why, in the answer a capture client gets for /events.
    made = create(app_client, creds, type="ENROLL", redirectURL="https://app.example.com/done")
    failing = Capture(app_client, made.json()["launchUrl"])
    failing.load()
    ended = failing.events(-7).json()
    assert ended["status"] == "FAILED"
    query = parse_qs(urlsplit(ended["redirectURL"]).query)
    assert query["status"] == ["FAILED"] and query["reason"] == ["CAMERA_FAIL"]


# ---------------------------------------------------------------- 8. customer ids

ODD_IDS = [
    "jane doe+1@example.com",
    "team/alpha/42",
    "Zoë Ångström-Łukasiewicz",
    "用户-七",
    "🙂 smile",
]


@pytest.mark.models
def test_customer_ids_with_spaces_plus_slash_non_ascii_and_emoji(
    app_client: httpx.Client, creds: Creds, faces: Faces
) -> None:
    photos = [faces.alice, faces.stranger]
    for index, customer_id in enumerate(ODD_IDS):
        made = create(app_client, creds, type="ENROLL", customerId=customer_id)
        assert made.status_code == 201, made.text
        assert made.json()["customerId"] == customer_id
        capture = Capture(app_client, made.json()["launchUrl"])
        capture.load()
        assert submit(capture, photos[index % 2]).json()["status"] == "SUCCESS"
        path = f"/v2/customers/{quote(customer_id, safe='')}"
        customer = app_client.get(path, headers=creds.headers())
        assert customer.status_code == 200, customer.text
        assert customer.json()["customerId"] == customer_id
        assert customer.json()["enrolled"] is True
    # VERIFY 1:1 against an id with a space and a plus.
    capture, session_id = start(app_client, creds, "VERIFY", customerId=ODD_IDS[0])
    assert submit(capture, faces.alice_again).json()["status"] == "SUCCESS"
    assert session_of(app_client, creds, session_id)["customerId"] == ODD_IDS[0]
    # An id with slashes is erased through its URL-encoded path, and only that one.
    path = f"/v2/customers/{quote(ODD_IDS[1], safe='')}"
    assert app_client.delete(path, headers=creds.headers()).status_code == 204
    assert_envelope(app_client.get(path, headers=creds.headers()), 404)
    still = app_client.get(f"/v2/customers/{quote(ODD_IDS[4], safe='')}", headers=creds.headers())
    assert still.status_code == 200


@pytest.mark.parametrize(
    "customer_id",
    ["", "   ", "a" * 129, "tab\there", "new\nline", "bell\x07", "nel\x85"],
)
def test_customer_ids_that_are_refused_say_why(
    app_client: httpx.Client, creds: Creds, customer_id: str
) -> None:
    body = assert_envelope(create(app_client, creds, type="ENROLL", customerId=customer_id), 400)
    assert body["message"].startswith("customerId")
    assert create(app_client, creds, type="ENROLL", customerId="a" * 128).status_code == 201


# ---------------------------------------------------------------- 9. Age API


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v2/session"),
        ("GET", "/v2/session/0b6c8bd6-6c6a-4d0f-a2e6-3a0f3e0e6c11/result"),
        ("POST", "/session"),  # a base URL without /v2, as for the other routes
    ],
)
def test_age_api_answers_501_saying_it_is_not_offered(
    app_client: httpx.Client, creds: Creds, method: str, path: str
) -> None:
    response = app_client.request(method, path, json={"age": True}, headers=creds.headers())
    body = assert_envelope(response, 501, [])
    assert body["message"] == AGE_MESSAGE
    assert "not available" in body["message"]


# ---------------------------------------------------------------- 10. polling receipt


def test_polling_fallback_returns_a_complete_receipt(
    app_client: httpx.Client, creds: Creds
) -> None:
    made = create(app_client, creds, type="ENROLL").json()  # no callback: polling only
    capture = Capture(app_client, made["launchUrl"])
    capture.load()
    open_answer = app_client.get(f"{CREATE}/{made['sessionId']}/webhook", headers=creds.headers())
    assert_envelope(open_answer, 409, [])
    capture.events(-7)  # ends the session
    polled = app_client.get(f"{CREATE}/{made['sessionId']}/webhook", headers=creds.headers())
    assert polled.status_code == 200, polled.text
    receipt = polled.json()["audit"]
    assert set(receipt) == {"index", "checkpoint", "inclusionProof"}
    jwks = app_client.get("/.well-known/jwks.json").json()
    checkpoint = app_client.get("/v2/audit/checkpoint", headers=creds.headers()).json()
    entries = app_client.get("/v2/audit/entries", headers=creds.headers()).json()["entries"]
    leaf = next(e for e in entries if e["index"] == receipt["index"])
    assert leaf["entry"]["event"] == "session:state:ended"
    assert verify_receipt(
        base64.b64decode(leaf["leafHash"]),
        receipt,
        jwks,
        checkpoint["keyName"],
        checkpoint["origin"],
    )
    # Polling again shows the same receipt.
    again = app_client.get(f"{CREATE}/{made['sessionId']}/webhook", headers=creds.headers())
    assert again.json()["audit"]["index"] == receipt["index"]


def test_polling_completes_the_receipt_of_a_webhook_not_yet_sent(
    make_app: Callable[..., FastAPI], creds: Creds
) -> None:
    # No worker runs: the final webhook sits in the outbox with its index only.
    with Receiver() as receiver, serve(make_app()) as client:
        made = create(client, creds, type="ENROLL", callback={"url": receiver.url}).json()
        capture = Capture(client, made["launchUrl"])
        capture.load()
        capture.events(-7)
        polled = client.get(f"{CREATE}/{made['sessionId']}/webhook", headers=creds.headers())
        assert polled.status_code == 200, polled.text
        assert {"index", "checkpoint", "inclusionProof"} <= set(polled.json()["audit"])
        assert receiver.received == []


# ---------------------------------------------------------------- 11. event webhooks


def _refuse_events(body: bytes) -> tuple[int, dict[str, str]]:
    """A receiver whose event handling is down for an hour; final webhooks work."""
    if "event" in json.loads(body):
        return 503, {"Retry-After": "3600"}
    return 200, {}


def test_an_undeliverable_event_webhook_does_not_hold_the_final_one(
    live: Callable[..., Any], creds: Creds
) -> None:
    # The production retry schedule: the refused event is due again only in an hour.
    with Receiver(answer=_refuse_events) as receiver, live(test_schedule=False) as client:
        made = create(
            client, creds, type="ENROLL", callback={"url": receiver.url}, sendEventWebhooks=True
        ).json()
        capture = Capture(client, made["launchUrl"])
        capture.load()  # session.loaded: refused
        receiver.wait_for(1)
        capture.events(-7)  # ends the session: the final webhook
        hooks = receiver.wait_for(2, timeout=30)
        deliveries = client.get(
            f"{CREATE}/{made['sessionId']}/deliveries", headers=creds.headers()
        ).json()["deliveries"]
    assert hooks[0].json()["event"] == "session.loaded"  # ordered while it could be
    final = hooks[1].json()
    assert "event" not in final and final["status"] == "FAILED"
    refused = next(d for d in deliveries if d["event"] == "session.loaded")
    assert refused["httpStatus"] == 503 and refused["nextRetryAt"]  # the event follows later


# ---------------------------------------------------------------- 12. risk


@pytest.mark.models
def test_automation_and_a_virtual_camera_are_never_low_risk(
    app_client: httpx.Client, creds: Creds, faces: Faces
) -> None:
    capture, session_id = start(app_client, creds, "ENROLL")
    answer = submit(capture, faces.alice, indicators=AUTOMATED)
    assert answer.json()["status"] == "SUCCESS"  # the face check itself passed
    risk = session_of(app_client, creds, session_id)["riskEvaluation"]
    assert risk["level"] in {"MEDIUM", "HIGH"}
    assert risk["recommendation"] in {"REVIEW", "DENY"}
    assert {"AUTOMATION", "VIRTUAL_CAMERA"} <= set(risk["flags"])
    polled = app_client.get(f"{CREATE}/{session_id}/webhook", headers=creds.headers()).json()
    assert polled["riskEvaluation"] == risk
    assert polled["indicators"]["virtualCamera"]["riskLevel"] == "HIGH"

    # Automation only (no camera signal), another person (no duplicate): MEDIUM / REVIEW.
    capture, session_id = start(app_client, creds, "ENROLL")
    submit(capture, faces.stranger, indicators={"headless": {"webdriver": True}})
    risk = session_of(app_client, creds, session_id)["riskEvaluation"]
    assert (risk["level"], risk["recommendation"]) == ("MEDIUM", "REVIEW")


def test_a_spoof_signal_with_automation_is_high_deny(
    app_client: httpx.Client, creds: Creds
) -> None:
    made = create(app_client, creds, type="ENROLL").json()
    capture = Capture(app_client, made["launchUrl"])
    capture.load()
    body = capture.envelope("events", capture.plaintext(events=[{"code": 1}], indicators=AUTOMATED))
    assert capture.post("events", body).json()["status"] == "FAILED"
    risk = session_of(app_client, creds, made["sessionId"])["riskEvaluation"]
    assert (risk["level"], risk["recommendation"]) == ("HIGH", "DENY")
    assert "SPOOF" in risk["flags"] and "AUTOMATION" in risk["flags"]


@pytest.mark.models
@pytest.mark.parametrize("kind", ["face-not-match", "multiple-faces", "camera-fail"])
def test_failed_sessions_are_never_allow(
    app_client: httpx.Client, creds: Creds, faces: Faces, kind: str
) -> None:
    enrol(app_client, creds, faces.alice, "alice")
    capture, session_id = start(app_client, creds, "VERIFY", customerId="alice")
    if kind == "face-not-match":
        assert_envelope(submit(capture, faces.stranger), 422, [-9])
    elif kind == "multiple-faces":
        assert_envelope(submit(capture, faces.group), 422, [-11])
    else:
        capture.events(-7)
    got = session_of(app_client, creds, session_id)
    assert got["status"] == "FAILED"
    assert got["riskEvaluation"]["recommendation"] == "DENY"


def test_a_failed_enroll_names_no_puid_that_was_never_enrolled(
    app_client: httpx.Client, creds: Creds
) -> None:
    made = create(app_client, creds, type="ENROLL", customerId="gina", maxAttempts=1)
    assert "puid" not in made.json()
    capture = Capture(app_client, made.json()["launchUrl"])
    capture.load()
    assert_envelope(submit(capture, no_face_jpeg()), 422, [-22])
    got = session_of(app_client, creds, made.json()["sessionId"])
    assert got["status"] == "FAILED"
    assert got["puid"] is None and got["guid"] is None
    assert got["riskEvaluation"]["recommendation"] == "DENY"
    assert_envelope(app_client.get("/v2/customers/gina", headers=creds.headers()), 404)


# ---------------------------------------------------------------- security item 4


@pytest.mark.models
@pytest.mark.parametrize("kind", ["SIGN-IN", "VERIFY"])
def test_capture_answer_does_not_identify(
    app_client: httpx.Client, creds: Creds, faces: Faces, kind: str
) -> None:
    """Issue 20 item 4: with a capture link, the answer never says who matched."""
    enrolled = enrol(app_client, creds, faces.alice, "secret-customer-7")
    capture, session_id = start(app_client, creds, kind)
    answer = submit(capture, faces.alice_again)
    assert answer.status_code == 200, answer.text
    assert set(answer.json()) <= {"status", "sessionId", "redirectURL"}
    for secret in ("secret-customer-7", enrolled["puid"], enrolled["guid"]):
        assert secret not in answer.text
    # The integrator still learns who it was.
    assert session_of(app_client, creds, session_id)["customerId"] == "secret-customer-7"


# ---------------------------------------------------------------- security item 8


def _deep(levels: int) -> dict[str, Any]:
    node: dict[str, Any] = {"x": True}
    for _ in range(levels):
        node = {"x": node}
    return node


@pytest.fixture
def loaded(app_client: httpx.Client, creds: Creds) -> tuple[Capture, str]:
    made = create(app_client, creds, type="ENROLL").json()
    capture = Capture(app_client, made["launchUrl"])
    capture.load()
    return capture, made["sessionId"]


@pytest.mark.parametrize(
    ("indicators", "named"),
    [
        ({"headless": {"webdriver": True, "note": "hi"}}, "indicators.headless.note"),
        ({"somethingElse": {}}, "indicators.somethingElse"),
        ({"headless": {"webdriver": "yes"}}, "indicators.headless.webdriver"),
        ({"headless": {"webdriver": [True]}}, "indicators.headless.webdriver"),
        (
            {"virtualCamera": {"browserCompatibility": {"browser": "C" * 5000}}},
            "indicators.virtualCamera.browserCompatibility.browser",
        ),
        ({"webdriver": False}, "indicators.webdriver"),  # the old flat shape
    ],
)
def test_indicators_outside_the_schema_are_400_naming_the_key(
    app_client: httpx.Client,
    creds: Creds,
    loaded: tuple[Capture, str],
    indicators: dict[str, Any],
    named: str,
) -> None:
    capture, session_id = loaded
    body = capture.envelope(
        "events", capture.plaintext(events=[{"code": -20}], indicators=indicators)
    )
    error = assert_envelope(capture.post("events", body), 400, [])
    assert error["message"].startswith(named)
    assert session_of(app_client, creds, session_id)["errorCodes"] == []  # nothing recorded


@pytest.fixture
def deep_json() -> Iterator[None]:
    """Room on this test's own stack to encode 900 levels (the server decodes them)."""
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 4000))
    yield
    sys.setrecursionlimit(limit)


@pytest.mark.usefixtures("deep_json")
def test_indicators_nested_900_deep_are_400_and_the_webhook_is_still_served(
    app_client: httpx.Client, creds: Creds, loaded: tuple[Capture, str]
) -> None:
    capture, session_id = loaded
    for route, fields in (
        ("events", {"events": [{"code": -7}]}),
        ("capture", {"frames": [base64.b64encode(no_face_jpeg()).decode()]}),
    ):
        deep = capture.envelope(route, capture.plaintext(**fields, indicators=_deep(900)))
        assert_envelope(capture.post(route, deep), 400, [])
    assert capture.events(-7).json()["status"] == "FAILED"
    polled = app_client.get(f"{CREATE}/{session_id}/webhook", headers=creds.headers())
    assert polled.status_code == 200, polled.text
    assert polled.json()["status"] == "FAILED"
    assert "indicators" not in polled.json()
    assert len(polled.content) < 20_000


def test_device_info_from_the_capture_client_has_known_scalar_keys_only(
    loaded: tuple[Capture, str],
) -> None:
    capture, _ = loaded
    for device, named in (
        ({"browserType": "Chrome", "extra": 1}, "deviceInfo.extra"),
        ({"browserType": {"nested": True}}, "deviceInfo.browserType"),
        ({"osName": "x" * 65}, "deviceInfo.osName"),
        ({"screenDimensions": {"width": 1, "height": 2, "depth": _deep(50)}}, "deviceInfo.screen"),
    ):
        body = capture.envelope(
            "events", capture.plaintext(events=[{"code": -20}], deviceInfo=device)
        )
        error = assert_envelope(capture.post("events", body), 400, [])
        assert error["message"].startswith(named), error["message"]


def test_device_info_from_the_integrator_is_flat_and_bounded(
    app_client: httpx.Client, creds: Creds
) -> None:
    for device in ({"nested": {"a": 1}}, {"list": [1, 2]}, {f"k{i}": i for i in range(33)}):
        error = assert_envelope(create(app_client, creds, type="ENROLL", deviceInfo=device), 400)
        assert error["message"].startswith("deviceInfo")
    fine = create(app_client, creds, type="ENROLL", deviceInfo={"app": "x", **PHONE_INFO})
    assert fine.status_code == 201, fine.text


# ---------------------------------------------------------------- 1. the CLI side of framing


def test_clients_create_and_update_frame_ancestors_from_the_cli(
    settings: Settings, db_engine: Any
) -> None:
    env = {
        "BIOVERIFY_DATA_DIR": str(settings.data_dir),
        "BIOVERIFY_DATABASE_URL": settings.resolved_database_url,
    }
    runner = CliRunner()
    made = runner.invoke(
        cli,
        [
            "clients",
            "create",
            "--name",
            "web",
            "--frame-ancestor",
            "https://*.example.com",
            "--json",
        ],
        env=env,
    )
    assert made.exit_code == 0, made.output
    client_id = json.loads(made.stdout)["clientId"]
    with db_engine.connect() as conn:
        stored = conn.scalar(select(Client.frame_ancestors).where(Client.id == client_id))
    assert stored == ["https://*.example.com"]

    changed = runner.invoke(
        cli,
        ["clients", "update", client_id, "--frame-ancestor", "HTTPS://App.Example.net/", "--json"],
        env=env,
    )
    assert changed.exit_code == 0, changed.output
    assert json.loads(changed.stdout)["frameAncestors"] == ["https://app.example.net"]

    refused = runner.invoke(
        cli, ["clients", "update", client_id, "--frame-ancestor", "http://app.example.net"], env=env
    )
    assert refused.exit_code == 1  # main() prints the message as one line
    assert "plain http is allowed only for loopback hosts" in str(refused.exception)
    misuse = runner.invoke(cli, ["clients", "update", client_id], env=env)
    assert misuse.exit_code == 2
    cleared = runner.invoke(cli, ["clients", "update", client_id, "--no-frame-ancestors"], env=env)
    assert cleared.exit_code == 0, cleared.output
    with db_engine.connect() as conn:
        stored = conn.scalar(select(Client.frame_ancestors).where(Client.id == client_id))
    assert stored == []
