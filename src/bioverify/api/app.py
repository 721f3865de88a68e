"""``create_app(settings)``: the one factory that wires the service.

It picks the backends, fixes the middleware order (request id outermost, then the
body limit), installs the error mapping, and starts the embedded worker in the
lifespan when asked to (``bioverify serve`` on SQLite).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from sqlalchemy import Engine

from bioverify.accounts.throttle import FailureThrottle, MemoryFailureThrottle, RedisFailureThrottle
from bioverify.api import health, sessions
from bioverify.api.deps import Services
from bioverify.api.errors import ServerErrorHook, install_error_handlers
from bioverify.api.middleware import BodyLimitMiddleware, RequestIdMiddleware
from bioverify.api.schemas import CreateSessionRequest, ErrorEnvelope
from bioverify.config import Settings
from bioverify.sessions.service import SessionEffects, SessionService
from bioverify.storage.database import make_engine, session_factory
from bioverify.webhooks.egress import EgressGuard

Clock = Callable[[], dt.datetime]

DESCRIPTION = """\
Self-hosted biometric verification Session API (ENROLL, VERIFY 1:1, SIGN-IN 1:N).

Every non-2xx answer is the error envelope
`{"status": "error", "message", "errorCodes", "requestId"}`; the codes are listed
in the error catalogue (docs/errors.md).
"""


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def build_throttle(settings: Settings) -> FailureThrottle:
    if settings.redis_url:
        return RedisFailureThrottle(settings.redis_url, limit=settings.auth_failure_limit,
                                    window_s=settings.auth_failure_window_s)
    return MemoryFailureThrottle(limit=settings.auth_failure_limit,
                                 window_s=settings.auth_failure_window_s)


def create_app(
    settings: Settings,
    *,
    db_engine: Engine | None = None,
    clock: Clock | None = None,
    throttle: FailureThrottle | None = None,
    effects: SessionEffects | None = None,
    egress: EgressGuard | None = None,
    on_server_error: ServerErrorHook | None = None,
    run_worker: bool = False,
    worker_factory: Callable[[Services], Any] | None = None,
) -> FastAPI:
    """The ASGI app, with collaborators overridable for tests."""
    clock = clock or _utcnow
    engine = db_engine or make_engine(settings.resolved_database_url)
    factory = session_factory(engine)
    guard = egress or EgressGuard(allow_private=settings.allow_private_callbacks)
    svc = Services(
        settings=settings,
        db_engine=engine,
        factory=factory,
        sessions=SessionService(factory, public_url=settings.public_url, effects=effects,
                                clock=clock, idempotency_ttl_s=settings.idempotency_ttl_s),
        throttle=throttle or build_throttle(settings),
        clock=clock,
    )
    svc.extras["check_callback"] = guard.check_url
    svc.extras["egress"] = guard

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        stop = asyncio.Event()
        task: asyncio.Task[None] | None = None
        if run_worker and worker_factory is not None:
            task = asyncio.create_task(worker_factory(svc).run(stop))
        try:
            yield
        finally:
            stop.set()
            if task is not None:
                await task
            if db_engine is None:
                engine.dispose()

    app = FastAPI(title="bioverify Session API", version="2", description=DESCRIPTION,
                  lifespan=lifespan, docs_url="/docs", redoc_url=None)
    app.state.services = svc
    app.include_router(health.router)
    app.include_router(sessions.router)
    # add_middleware prepends: the request id is outermost, then the body limit, then
    # the 500 net (installed with the handlers), then the routes.
    install_error_handlers(app, on_server_error=on_server_error)
    app.add_middleware(BodyLimitMiddleware, limit=settings.max_body_bytes)
    app.add_middleware(RequestIdMiddleware)
    _document_bodies(app, [CreateSessionRequest, ErrorEnvelope])
    return app


def _document_bodies(app: FastAPI, models: list[type[Any]]) -> None:
    """Add the self-parsed request bodies' schemas to the OpenAPI components."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = get_openapi(title=app.title, version=app.version,
                             description=app.description, routes=app.routes)
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for model in models:
            model_schema = model.model_json_schema(
                ref_template="#/components/schemas/{model}")
            for name, sub in model_schema.pop("$defs", {}).items():
                components.setdefault(name, sub)
            components[model.__name__] = model_schema
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


__all__ = ["create_app"]
