"""Every non-2xx answer is the error envelope, with a message a person can act on."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from fastapi import FastAPI

from support import Creds, assert_envelope, serve

CREATE = "/v2/verification-session"


def test_request_id_is_echoed_or_generated(app_client: httpx.Client) -> None:
    mine = app_client.get("/nope", headers={"X-Request-ID": "req-123"})
    assert mine.headers["x-request-id"] == "req-123"
    assert_envelope(mine, 404)
    generated = app_client.get("/nope")
    assert len(generated.headers["x-request-id"]) >= 16


def test_unknown_route_is_404_envelope(app_client: httpx.Client) -> None:
    body = assert_envelope(app_client.get("/v2/nothing-here"), 404, [])
    assert "route" in body["message"].lower()


def test_wrong_method_is_405_envelope(app_client: httpx.Client) -> None:
    response = app_client.delete("/healthz")
    assert_envelope(response, 405, [])
    assert "GET" in response.headers["allow"]


def test_malformed_json_is_400(app_client: httpx.Client, creds: Creds) -> None:
    response = app_client.post(CREATE, content=b'{"type": "ENROLL",', headers=creds.headers())
    body = assert_envelope(response, 400, [])
    assert "not valid JSON" in body["message"]


def test_body_that_is_not_an_object_is_400(app_client: httpx.Client, creds: Creds) -> None:
    body = assert_envelope(app_client.post(CREATE, json=[1, 2], headers=creds.headers()), 400)
    assert "JSON object" in body["message"]


def test_empty_body_is_400(app_client: httpx.Client, creds: Creds) -> None:
    body = assert_envelope(app_client.post(CREATE, headers=creds.headers()), 400)
    assert "empty" in body["message"]


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"type": "ENROLL", "sessionExpiry": "900"}, "sessionExpiry"),  # wrong type
        ({"customerId": "alice"}, "type"),  # missing
        ({"type": "ENROLL", "colour": "blue"}, "colour"),  # unknown field
        ({"type": "LOGIN"}, "type"),  # bad enum
        ({"type": "ENROLL", "sessionExpiry": 30}, "sessionExpiry"),  # out of range
        ({"type": "ENROLL", "customerId": "a\nb"}, "customerId"),  # control character
        ({"type": "ENROLL", "maxAttempts": 11}, "maxAttempts"),
        ({"type": "ENROLL", "enableDesktop": "true"}, "enableDesktop"),
        ({"type": "ENROLL", "callback": {"url": "https://x.test", "hdrs": {}}}, "callback.hdrs"),
    ],
)
def test_invalid_field_is_400_naming_the_field(
    app_client: httpx.Client, creds: Creds, payload: dict[str, object], field: str
) -> None:
    body = assert_envelope(app_client.post(CREATE, json=payload, headers=creds.headers()), 400, [])
    assert field in body["message"]


def test_oversized_body_is_413_before_it_is_read(app_client: httpx.Client, creds: Creds) -> None:
    big = b'{"type": "ENROLL", "deviceInfo": {"x": "' + b"a" * 2_200_000 + b'"}}'
    assert_envelope(app_client.post(CREATE, content=big, headers=creds.headers()), 413, [])


def test_oversized_streamed_body_is_413(app_client: httpx.Client, creds: Creds) -> None:
    def chunks():  # type: ignore[no-untyped-def]
        for _ in range(300):
            yield b"x" * 8192

    response = app_client.post(CREATE, content=chunks(), headers=creds.headers())
    assert_envelope(response, 413, [])


class ExplodingEffects:
    def session_created(self, db: object, row: object, *, insert: object) -> None:
        raise RuntimeError("secret internal detail /work/main/db.py line 3")

    def code_recorded(self, db: object, row: object, code: int) -> None:
        return None

    def session_ended(self, db: object, row: object) -> None:
        return None


def test_unexpected_failure_is_500_with_nothing_internal(
    make_app: Callable[..., FastAPI], creds: Creds
) -> None:
    app = make_app(effects=ExplodingEffects())
    with serve(app) as client:
        response = client.post(CREATE, json={"type": "ENROLL"}, headers=creds.headers())
        body = assert_envelope(response, 500, [])
        assert "secret internal detail" not in response.text
        assert body["message"] == "Internal server error"
        # Nothing was half-written: the failed create left no session behind.
        again = client.post(
            CREATE, json={"type": "ENROLL"}, headers={**creds.headers(), "Idempotency-Key": "k1"}
        )
        assert again.status_code == 500


def test_openapi_documents_routes_fields_and_the_envelope(app_client: httpx.Client) -> None:
    schema = app_client.get("/openapi.json").json()
    components = schema["components"]["schemas"]
    assert {"status", "message", "errorCodes", "requestId"} <= set(
        components["ErrorEnvelope"]["properties"]
    )
    assert "sessionExpiry" in components["CreateSessionRequest"]["properties"]
    post = schema["paths"]["/v2/verification-session"]["post"]
    assert "400" in post["responses"] and "401" in post["responses"]
    assert app_client.get("/docs").status_code == 200
