"""Hostile input to the public routes: bounded JSON, strict JSON, aggregated security
events, wrong token secrets, challenge budget, callback header injection, nonce pruning
(security review items 5, 9 and 15; see docs/security.md)."""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, MetaData, func, select, update

from bioverify.audit.events import AuditEvent
from bioverify.capture.envelope import fresh_nonce, seal, seal_bytes
from bioverify.sessions.capture import MAX_CHALLENGE_LOADS, WRONG_TOKEN_LIMIT
from bioverify.sessions.models import CaptureNonce, SessionRow
from support import Creds, FakeClock, assert_envelope

CREATE = "/v2/verification-session"
NESTED = b'{"a":' * 5000 + b"1" + b"}" * 5000


def audit_count(engine: Engine, event: AuditEvent) -> int:
    """Entries of ``event``, sequenced or still queued (whatever the audit internals)."""
    meta = MetaData()
    meta.reflect(engine, only=lambda name, _: name in {"audit_entries", "audit_queue"})
    total = 0
    with engine.connect() as conn:
        for table in meta.tables.values():
            total += (
                conn.scalar(
                    select(func.count()).select_from(table).where(table.c.event == event.value)
                )
                or 0
            )
    return total


def _session(http: httpx.Client, creds: Creds, **fields: Any) -> tuple[dict[str, Any], str]:
    made = http.post(CREATE, json={"type": "ENROLL", **fields}, headers=creds.headers())
    assert made.status_code == 201, made.text
    body = made.json()
    return body, body["launchUrl"].rsplit("/", 1)[1]


def _events(http: httpx.Client, made: dict[str, Any], token: str, **plain: Any) -> httpx.Response:
    key = http.get("/public-key").json()
    sealed = seal(
        {"nonce": fresh_nonce(), "timestamp": int(time.time()), "events": [{"code": -20}], **plain},
        public_key_pem=key["publicKey"],
        kid=key["kid"],
        session_id=made["sessionId"],
        route="events",
    )
    return http.post(f"{CREATE}/{token}/events", json=sealed)


# ----------------------------------------------------------------- item 5


def test_deeply_nested_json_is_a_400_and_writes_no_audit_entry(
    app_client: httpx.Client, creds: Creds, db_engine: Engine
) -> None:
    before = audit_count(db_engine, AuditEvent.SERVER_ERROR)
    for _ in range(21):
        answer = app_client.post(
            f"{CREATE}/anything/events",
            content=NESTED,
            headers={"content-type": "application/json"},
        )
        assert "nested deeper" in assert_envelope(answer, 400)["message"]
    created = app_client.post(CREATE, content=NESTED, headers=creds.headers())
    assert "nested deeper" in assert_envelope(created, 400)["message"]
    assert audit_count(db_engine, AuditEvent.SERVER_ERROR) == before


def test_nested_device_info_inside_an_envelope_is_refused(
    app_client: httpx.Client, creds: Creds
) -> None:
    made, token = _session(app_client, creds, liveness="passive")
    deep: dict[str, Any] = {}
    node = deep
    for _ in range(40):
        node["x"] = {}
        node = node["x"]
    assert_envelope(_events(app_client, made, token, deviceInfo=deep), 400)
    assert _events(app_client, made, token).status_code == 200


def test_repeated_bad_tokens_from_one_address_are_one_counted_entry(
    app_client: httpx.Client, db_engine: Engine
) -> None:
    before = audit_count(db_engine, AuditEvent.AUTH_REJECTED)
    for _ in range(21):
        answer = app_client.get(f"{CREATE}/cs_{secrets.token_urlsafe(40)}")
        assert answer.status_code in (401, 429)
    assert audit_count(db_engine, AuditEvent.AUTH_REJECTED) == before + 1


def test_tampered_envelopes_replayed_with_a_valid_token_are_one_counted_entry(
    app_client: httpx.Client, creds: Creds, db_engine: Engine
) -> None:
    made, token = _session(app_client, creds, liveness="passive")
    key = app_client.get("/public-key").json()
    before = audit_count(db_engine, AuditEvent.ENVELOPE_REJECTED)
    for _ in range(31):
        sealed = seal(
            {"nonce": fresh_nonce(), "timestamp": int(time.time()), "events": [{"code": -20}]},
            public_key_pem=key["publicKey"],
            kid=key["kid"],
            session_id=made["sessionId"],
            route="events",
        )
        tag = bytearray(base64.b64decode(sealed["gcmTag"]))
        tag[0] ^= 1
        sealed["gcmTag"] = base64.b64encode(bytes(tag)).decode()
        assert_envelope(app_client.post(f"{CREATE}/{token}/events", json=sealed), 400)
    assert audit_count(db_engine, AuditEvent.ENVELOPE_REJECTED) == before + 1


# ----------------------------------------------------------------- item 8


@pytest.mark.parametrize(
    "legacy",
    [
        {"webdriver": True, "note": "x" * 100_000},  # the old open, flat shape
        {"headless": {"webdriver": "yes"}},  # not the schema's types
        {"headless": [1, 2, 3]},
    ],
)
def test_indicators_stored_in_another_shape_never_fail_the_webhook_route(
    app_client: httpx.Client, creds: Creds, db_engine: Engine, legacy: dict[str, Any]
) -> None:
    """A row written before the closed schema (or by any other path) is read as "no
    indicators": ``GET …/webhook`` and the session view answer 200 without them."""
    made, token = _session(app_client, creds, liveness="passive")
    assert _events(app_client, made, token, events=[{"code": -7}]).status_code == 200
    with db_engine.begin() as conn:
        conn.execute(
            update(SessionRow).where(SessionRow.id == made["sessionId"]).values(indicators=legacy)
        )
    for path in (f"{CREATE}/{made['sessionId']}/webhook", f"{CREATE}/{made['sessionId']}"):
        answer = app_client.get(path, headers=creds.headers())
        assert answer.status_code == 200, answer.text
        assert answer.json()["status"] == "FAILED"
        assert answer.json().get("indicators") is None  # absent, or null in the schema
        assert "note" not in answer.text


# ----------------------------------------------------------------- item 9


def test_one_wrong_token_secret_does_not_end_the_session(
    app_client: httpx.Client, creds: Creds
) -> None:
    made, token = _session(app_client, creds, liveness="passive")
    wrong = token.split(".", 1)[0] + "." + secrets.token_urlsafe(32)
    for _ in range(WRONG_TOKEN_LIMIT - 1):
        assert_envelope(app_client.get(f"{CREATE}/{wrong}"), 401, [-14])
    assert app_client.get(f"{CREATE}/{token}").status_code == 200
    state = app_client.get(f"{CREATE}/{made['sessionId']}", headers=creds.headers()).json()
    assert state["status"] == "IN_PROGRESS"
    # The attempt reaching the limit ends it.
    assert_envelope(app_client.get(f"{CREATE}/{wrong}"), 401, [-14])
    state = app_client.get(f"{CREATE}/{made['sessionId']}", headers=creds.headers()).json()
    assert state["status"] == "FAILED"
    assert -14 in state["errorCodes"]


# ----------------------------------------------------------------- item 15


@pytest.mark.parametrize(
    "body",
    [
        b'{"type": "ENROLL", "transactionID": "a", "transactionID": "b"}',
        b'{"type": "ENROLL", "deviceInfo": {"x": NaN}}',
        b'{"type": "ENROLL", "deviceInfo": {"x": Infinity}}',
        b'{"type": "ENROLL", "deviceInfo": {"x": -Infinity}}',
    ],
)
def test_duplicate_keys_nan_and_infinity_are_refused(
    app_client: httpx.Client, creds: Creds, body: bytes
) -> None:
    answer = app_client.post(
        CREATE, content=body, headers={**creds.headers(), "content-type": "application/json"}
    )
    assert_envelope(answer, 400)


def test_duplicate_keys_in_the_outer_envelope_are_refused(
    app_client: httpx.Client, creds: Creds
) -> None:
    made, token = _session(app_client, creds, liveness="passive")
    key = app_client.get("/public-key").json()
    sealed = seal(
        {"nonce": fresh_nonce(), "timestamp": int(time.time()), "events": [{"code": -20}]},
        public_key_pem=key["publicKey"],
        kid=key["kid"],
        session_id=made["sessionId"],
        route="events",
    )
    raw = json.dumps(sealed)[:-1] + f', "kid": {json.dumps(sealed["kid"])}}}'
    answer = app_client.post(
        f"{CREATE}/{token}/events", content=raw, headers={"content-type": "application/json"}
    )
    assert "repeats the key" in assert_envelope(answer, 400)["message"]


def test_duplicate_keys_in_a_capture_plaintext_are_refused(
    app_client: httpx.Client, creds: Creds
) -> None:
    made, token = _session(app_client, creds, liveness="passive")
    key = app_client.get("/public-key").json()
    message = b'{"nonce":"%s","timestamp":%d,"events":[{"code":-20}],"events":[{"code":-7}]}' % (
        fresh_nonce().encode(),
        int(time.time()),
    )
    sealed = seal_bytes(
        message,
        public_key_pem=key["publicKey"],
        kid=key["kid"],
        session_id=made["sessionId"],
        route="events",
    )
    assert_envelope(app_client.post(f"{CREATE}/{token}/events", json=sealed), 400)


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Ok\r\nX-Injected": "1"},
        {"X-Ok\n": "1"},
        {"Bad Name": "1"},
        {"X-Ok": "value\r\nX-Injected: 1"},
    ],
)
def test_callback_headers_with_cr_lf_are_refused_at_create(
    app_client: httpx.Client, creds: Creds, headers: dict[str, str]
) -> None:
    answer = app_client.post(
        CREATE,
        json={"type": "ENROLL", "callback": {"url": "https://example.org/h", "headers": headers}},
        headers=creds.headers(),
    )
    assert "callback.headers" in assert_envelope(answer, 400)["message"]


def test_challenges_per_session_are_budgeted(app_client: httpx.Client, creds: Creds) -> None:
    _, token = _session(app_client, creds, liveness="active")
    steps = set()
    for _ in range(MAX_CHALLENGE_LOADS):
        loaded = app_client.get(f"{CREATE}/{token}")
        assert loaded.status_code == 200, loaded.text
        steps.add(tuple(loaded.json()["challenge"]["steps"]))
    refused = app_client.get(f"{CREATE}/{token}")
    assert "challenges" in assert_envelope(refused, 429)["message"]
    assert int(refused.headers["retry-after"]) > 0


def test_old_capture_nonces_are_pruned(
    app_client: httpx.Client, creds: Creds, clock: FakeClock, db_engine: Engine
) -> None:
    made, token = _session(app_client, creds, liveness="passive")
    assert _events(app_client, made, token).status_code == 200
    clock.advance(3600)
    other, other_token = _session(app_client, creds, liveness="passive")

    def count() -> int:
        with db_engine.connect() as conn:
            return conn.scalar(select(func.count()).select_from(CaptureNonce)) or 0

    assert count() == 1
    # Timestamps are checked against the (advanced) server clock.
    key = app_client.get("/public-key").json()
    sealed = seal(
        {
            "nonce": fresh_nonce(),
            "timestamp": int(time.time()) + 3600,
            "events": [{"code": -20}],
        },
        public_key_pem=key["publicKey"],
        kid=key["kid"],
        session_id=other["sessionId"],
        route="events",
    )
    answer = app_client.post(f"{CREATE}/{other_token}/events", json=sealed)
    assert answer.status_code == 200, answer.text
    assert count() == 1


def test_api_answers_are_not_cached_or_sniffed(app_client: httpx.Client, creds: Creds) -> None:
    for answer in (
        app_client.post(CREATE, json={"type": "ENROLL"}, headers=creds.headers()),
        app_client.get(f"{CREATE}/cs_{secrets.token_urlsafe(40)}"),
        app_client.get("/healthz"),
    ):
        assert answer.headers["cache-control"] == "no-store"
        assert answer.headers["x-content-type-options"] == "nosniff"


def test_metrics_only_from_allowed_addresses(make_app: Callable[..., Any], settings: Any) -> None:
    from bioverify.addresses import parse_networks  # noqa: PLC0415
    from support import serve  # noqa: PLC0415

    with serve(make_app()) as http:
        assert http.get("/metrics").status_code == 200  # loopback, the default
    closed = settings.with_overrides(metrics_allow=parse_networks("192.0.2.0/24"))
    with serve(make_app(settings=closed)) as http:
        answer = http.get("/metrics")
        assert "BIOVERIFY_METRICS_ALLOW" in assert_envelope(answer, 403)["message"]


def test_docs_load_no_script_from_another_origin(app_client: httpx.Client) -> None:
    page = app_client.get("/docs")
    assert page.status_code == 200
    assert "cdn." not in page.text and "https://" not in page.text.split("<body>")[0]
    for asset in ("/docs/assets/swagger-ui-bundle.js", "/docs/assets/swagger-ui.css"):
        assert asset in page.text
        loaded = app_client.get(asset)
        assert loaded.status_code == 200 and len(loaded.content) > 10_000
    assert app_client.get("/docs/assets/index.html").status_code == 404
