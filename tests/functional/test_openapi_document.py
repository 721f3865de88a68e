"""The OpenAPI document says what the API does: credential alternatives, public routes,
and ``Allow`` naming every method a path has."""

from __future__ import annotations

import httpx
import pytest

from support import assert_envelope

pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)

KEY_SECRET = {"apiKey": [], "clientId": [], "clientSecret": []}
KEY_SLC = {"apiKey": [], "clientId": [], "slc": []}
KEY_ONLY = {"apiKey": []}


def test_credentials_are_alternatives_and_public_routes_are_public(
    app_client: httpx.Client,
) -> None:
    schema = app_client.get("/openapi.json").json()
    schemes = schema["components"]["securitySchemes"]
    assert {name: scheme["name"] for name, scheme in schemes.items()} == {
        "apiKey": "x_api_key",
        "clientId": "clientID",
        "clientSecret": "clientSecret",
        "slc": "SLC",
    }
    paths = schema["paths"]
    for path, method in [
        ("/v2/verification-session", "post"),
        ("/v2/customers/{customerId}", "delete"),
        ("/v2/audit/checkpoint", "get"),
    ]:
        assert paths[path][method]["security"] == [KEY_SECRET, KEY_SLC, KEY_ONLY], path
    for path in ("/healthz", "/readyz", "/public-key", "/.well-known/jwks.json"):
        assert paths[path]["get"]["security"] == [], path
    capture = "/v2/verification-session/{sessionId}/capture"
    assert paths.get(capture, {}).get("post", {"security": []})["security"] == []
    # One path serves the integrator (a session id) and the capture client (a token).
    either = paths["/v2/verification-session/{sessionId}"]["get"]["security"]
    assert either == [{}, KEY_SECRET, KEY_SLC, KEY_ONLY]
    # No header parameter marks SLC (or any credential) as required on its own.
    for item in paths.values():
        for operation in item.values():
            for parameter in operation.get("parameters", []):
                assert parameter["name"].lower() not in {"slc", "clientsecret", "x_api_key"}


@pytest.mark.parametrize("method", ["OPTIONS", "PUT", "PATCH"])
def test_allow_names_every_method_of_the_path(app_client: httpx.Client, method: str) -> None:
    response = app_client.request(method, "/v2/customers/alice")
    assert_envelope(response, 405)
    assert set(response.headers["allow"].split(", ")) == {"GET", "HEAD", "DELETE"}


def test_the_security_answers_are_documented(app_client: httpx.Client) -> None:
    """Issue 20's new answers: 403 from /metrics outside the allow-list, and 431 for a
    request head over the server's limit (any route)."""
    paths = app_client.get("/openapi.json").json()["paths"]
    assert "403" in paths["/metrics"]["get"]["responses"]
    assert "431" in paths["/v2/verification-session"]["post"]["responses"]
