"""Frame-ancestor origins a client may register (CSP host-sources)."""

from __future__ import annotations

import pytest

from bioverify.accounts.framing import MAX_ANCESTORS, normalise_all, normalise_origin
from bioverify.api.page import CONTENT_SECURITY_POLICY, framing_headers
from bioverify.errors import BadRequest


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("https://app.example.com", "https://app.example.com"),
        ("HTTPS://App.Example.com/", "https://app.example.com"),
        ("https://*.example.com", "https://*.example.com"),
        ("https://app.example.com:8443", "https://app.example.com:8443"),
        ("https://app.example.com:*", "https://app.example.com:*"),
        ("http://127.0.0.2:5000", "http://127.0.0.2:5000"),
        ("http://localhost:3000", "http://localhost:3000"),
    ],
)
def test_origins_and_host_wildcards_are_accepted(raw: str, canonical: str) -> None:
    assert normalise_origin(raw) == canonical


@pytest.mark.parametrize(
    "raw",
    [
        "app.example.com",  # no scheme
        "https://app.example.com/path",
        "https://app.example.com?x=1",
        "'self'",
        "*",
        "https://*",
        "https://*.com",
        "https://a.*.example.com",
        "https://app.example.com:70000",
        "http://app.example.com",  # plain http off loopback
        "https://app.example.com; script-src *",  # no smuggling of directives
        "javascript:alert(1)",
    ],
)
def test_anything_else_is_refused(raw: str) -> None:
    with pytest.raises(BadRequest):
        normalise_origin(raw)


def test_duplicates_fold_and_the_list_is_bounded() -> None:
    assert normalise_all(["https://a.example", "HTTPS://a.example/"]) == ["https://a.example"]
    with pytest.raises(BadRequest):
        normalise_all([f"https://a{i}.example.com" for i in range(MAX_ANCESTORS + 1)])


def test_headers_name_exactly_the_registered_origins() -> None:
    assert framing_headers([]) == {}
    headers = framing_headers(["https://app.example.com", "https://*.example.org"])
    assert headers["content-security-policy"] == CONTENT_SECURITY_POLICY.removesuffix(
        "frame-ancestors 'none'"
    ) + ("frame-ancestors https://app.example.com https://*.example.org")
    assert headers["permissions-policy"].startswith(
        'camera=(self "https://app.example.com" "https://*.example.org")'
    )
