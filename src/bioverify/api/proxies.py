"""The real client address behind trusted reverse proxies (``BIOVERIFY_TRUSTED_PROXIES``).

``X-Forwarded-For`` and ``X-Forwarded-Proto`` are believed only when the connecting
peer is one of the configured proxies; otherwise (and when the setting is unset)
they are ignored, so a client cannot pick the address its failures are counted
against. The middleware rewrites the ASGI scope once, so every consumer (throttles,
logs, audit entries) reads the same address through :func:`client_address`.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Receive, Scope, Send

from bioverify.addresses import Network, in_networks, parse_ip, real_client


class ForwardedMiddleware:
    """Sets the scope's client (and scheme) from forwarding headers of trusted proxies."""

    def __init__(self, app: ASGIApp, *, trusted: Sequence[Network]) -> None:
        self.app = app
        self.trusted = tuple(trusted)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.trusted and scope["type"] in ("http", "websocket") and scope.get("client"):
            peer, port = scope["client"]
            forwarded_for = proto = None
            for name, value in scope["headers"]:
                if name == b"x-forwarded-for":
                    # Several headers are one list (RFC 9110 section 5.3).
                    text = value.decode("latin-1")
                    forwarded_for = f"{forwarded_for},{text}" if forwarded_for else text
                elif name == b"x-forwarded-proto":
                    proto = value.decode("latin-1").split(",")[-1].strip().lower()
            peer_ip = parse_ip(str(peer))
            if peer_ip is not None and in_networks(peer_ip, self.trusted):
                scope = dict(scope)
                scope["client"] = (real_client(str(peer), forwarded_for, self.trusted), port)
                if proto in ("http", "https"):
                    scope["scheme"] = (
                        proto if scope["type"] == "http" else proto.replace("http", "ws")
                    )
        await self.app(scope, receive, send)


def client_address(conn: HTTPConnection) -> str:
    """The one place any part of the service learns who is calling."""
    return conn.client.host if conn.client else "unknown"


__all__ = ["ForwardedMiddleware", "client_address"]
