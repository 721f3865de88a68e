"""Behind a trusted proxy, throttles use the real client address; otherwise
forwarding headers are ignored (a client cannot choose the address it is counted as)."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable

import httpx
from fastapi import FastAPI

from bioverify.addresses import parse_networks
from bioverify.config import Settings
from support import Creds, LiveServer, assert_envelope

LIMIT = 5
CREATE = "/v2/verification-session"


def _bad(creds: Creds, forwarded_for: str) -> dict[str, str]:
    return {
        "x_api_key": "bvk_" + secrets.token_urlsafe(16),
        "clientID": creds.client_id,
        "x-forwarded-for": forwarded_for,
    }


def test_real_client_address_comes_from_a_trusted_proxy(
    make_app: Callable[..., FastAPI], settings: Settings, creds: Creds
) -> None:
    app = make_app(settings=settings.with_overrides(trusted_proxies=parse_networks("127.0.0.1")))
    with LiveServer(app) as server, httpx.Client(base_url=server.url) as proxy:
        for _ in range(LIMIT):
            assert_envelope(
                proxy.get(f"{CREATE}/{uuid.uuid4()}", headers=_bad(creds, "203.0.113.7")), 401
            )
        assert_envelope(
            proxy.get(f"{CREATE}/{uuid.uuid4()}", headers=_bad(creds, "203.0.113.7")), 429
        )
        # Another user behind the same proxy is a different address.
        assert_envelope(
            proxy.get(f"{CREATE}/{uuid.uuid4()}", headers=_bad(creds, "203.0.113.8")), 401
        )


def test_forwarding_headers_from_an_untrusted_peer_are_ignored(
    make_app: Callable[..., FastAPI], creds: Creds
) -> None:
    with LiveServer(make_app()) as server, httpx.Client(base_url=server.url) as direct:
        for index in range(LIMIT):
            headers = _bad(creds, f"203.0.113.{index}")
            assert_envelope(direct.get(f"{CREATE}/{uuid.uuid4()}", headers=headers), 401)
        # Rotating X-Forwarded-For does not escape the peer address's count.
        headers = _bad(creds, "203.0.113.99")
        assert_envelope(direct.get(f"{CREATE}/{uuid.uuid4()}", headers=headers), 429)
