"""The one place that maps exceptions to HTTP answers (by exception class).

Domain errors carry their status and codes; framework errors (validation, 404,
405) are rewritten into the envelope; anything else is a 500 that is logged with
the request id and reported to the ``on_server_error`` hook (audit and alerts),
never shown to the client.
"""

from __future__ import annotations

from collections.abc import Callable

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bioverify.api.envelope import envelope_response
from bioverify.api.middleware import current_request_id, route_template
from bioverify.errors import (
    BadRequest,
    BioverifyError,
    InternalError,
    NotFound,
)
from bioverify.validation import describe_validation

log = structlog.get_logger("bioverify.api")

ServerErrorHook = Callable[[Request, BaseException], None]


_STATUS_MESSAGES = {404: "No such route", 405: "Method not allowed on this route"}


def install_error_handlers(app: FastAPI, *, on_server_error: ServerErrorHook | None = None) -> None:
    async def domain_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, BioverifyError)
        if isinstance(exc, InternalError):
            await run_in_threadpool(_report, request, exc)
        return envelope_response(exc, current_request_id())

    async def validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return envelope_response(
            BadRequest(describe_validation(exc.errors())), current_request_id()
        )

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        message = _STATUS_MESSAGES.get(exc.status_code, "Request failed")
        error = NotFound(message) if exc.status_code == 404 else BioverifyError(message)
        response = envelope_response(error, current_request_id(), status_code=exc.status_code)
        if exc.status_code == 405:
            fallback = (exc.headers or {}).get("Allow", "")
            response.headers["allow"] = allowed_methods(request, fallback)
        return response

    def _report(request: Request, exc: BaseException) -> None:
        report_server_error(request.scope, exc, on_server_error)

    app.add_exception_handler(BioverifyError, domain_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_middleware(ServerErrorEnvelopeMiddleware, on_server_error=on_server_error)


def allowed_methods(request: Request, fallback: str) -> str:
    """Every method the API offers on this path, from the OpenAPI document (Starlette's
    405 names only the first matching route's: ``GET`` for ``/v2/customers/{id}``,
    which also has ``DELETE``); ``fallback`` for paths the document does not list."""
    methods: set[str] = set()
    path = request.scope.get("path", "")
    for template, item in request.app.openapi().get("paths", {}).items():
        if compile_path(template)[0].match(path):
            methods |= {m.upper() for m in item if m.upper() in _HTTP_METHODS}
    if "GET" in methods:
        methods.add("HEAD")  # Starlette answers HEAD wherever it answers GET
    return ", ".join(sorted(methods)) if methods else fallback


_HTTP_METHODS = frozenset({"GET", "PUT", "POST", "DELETE", "OPTIONS", "HEAD", "PATCH", "TRACE"})


def report_server_error(scope: Scope, exc: BaseException, hook: ServerErrorHook | None) -> None:
    """Log a 500 with the request id, then tell the audit/alert hook."""
    log.error(
        "server_error",
        route=route_template(scope),
        method=scope.get("method"),
        error_type=type(exc).__name__,
        exc_info=exc,
    )
    if hook is not None:
        try:
            hook(Request(scope), exc)
        except Exception:
            log.exception("server_error_hook_failed")


class ServerErrorEnvelopeMiddleware:
    """Turns anything unexpected into the 500 envelope.

    Starlette's own ServerErrorMiddleware re-raises after answering, which makes
    the server drop the keep-alive connection; this one answers and stops there.
    """

    def __init__(self, app: ASGIApp, *, on_server_error: ServerErrorHook | None) -> None:
        self.app = app
        self.hook = on_server_error

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            # Off the loop: the hook writes an audit entry and evaluates alerts.
            await run_in_threadpool(report_server_error, scope, exc, self.hook)
            if started:
                raise
            response = envelope_response(InternalError(), current_request_id())
            await response(scope, receive, send)


__all__ = ["describe_validation", "install_error_handlers"]
