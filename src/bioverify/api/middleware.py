"""Pure ASGI middleware: request ids and the body-size limit.

Pure ASGI (not ``BaseHTTPMiddleware``) so the body limit acts while the body
streams in, before anything buffers it.
"""

from __future__ import annotations

import re
import uuid
from contextvars import ContextVar

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bioverify.api.envelope import envelope_response
from bioverify.errors import PayloadTooLarge
from bioverify.routing import route_template

request_id_var: ContextVar[str] = ContextVar("request_id", default="-")

_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:@/+=-]{1,128}$")


def current_request_id() -> str:
    return request_id_var.get()


class RequestIdMiddleware:
    """Echo a sane ``X-Request-ID`` or make one; expose it to logs and handlers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = ""
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                incoming = value.decode("latin-1")
                break
        request_id = incoming if _VALID_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        token = request_id_var.set(request_id)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (k, v) for k, v in message.get("headers", []) if k.lower() != b"x-request-id"
                ]
                headers.append((b"x-request-id", request_id.encode("latin-1")))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            request_id_var.reset(token)


class BodyLimitMiddleware:
    """Refuse bodies over ``limit`` bytes with 413, counting while they stream."""

    def __init__(self, app: ASGIApp, *, limit: int) -> None:
        self.app = app
        self.limit = limit
        self.message = f"Request body is larger than the {limit} byte limit"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > self.limit:
                    # Answer before reading a byte of the body.
                    error = PayloadTooLarge(self.message)
                    response = envelope_response(error, current_request_id())
                    await response(scope, receive, send)
                    return
        received = 0
        limit = self.limit

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # Propagates out of the route's body read to the error handlers.
                    raise PayloadTooLarge(self.message)
            return message

        await self.app(scope, counting_receive, send)


class V2PrefixMiddleware:
    """Accept PrivateID-style base URLs: with or without ``/v2``, or with it twice.

    Integrations written for PrivateID join a base URL that may already end in
    ``/v2`` with paths that may start with ``/v2``. ``/verification-session/...`` and
    ``/v2/v2/verification-session/...`` both route to ``/v2/verification-session/...``
    (likewise ``/customers``, ``/audit`` and the Age API's ``/session``). Only ``path``
    changes: ``raw_path``, which an SLC signature covers, stays as sent.
    """

    _BARE = ("/verification-session", "/customers", "/audit", "/session")

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            # In place, not a copy: the router records the matched route in this scope,
            # and the metrics and logs outside this middleware read it from there.
            path: str = scope["path"]
            if path.startswith("/v2/v2/"):
                scope["path"] = path[3:]
            elif path.startswith(self._BARE):
                scope["path"] = "/v2" + path
        await self.app(scope, receive, send)


__all__ = [
    "BodyLimitMiddleware",
    "RequestIdMiddleware",
    "V2PrefixMiddleware",
    "current_request_id",
    "request_id_var",
    "route_template",
]
