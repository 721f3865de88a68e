"""``create_app(settings)``: the ASGI app over the services ``build_services`` makes.

It fixes the middleware order (request id outermost, then the body limit), installs
the error mapping, gates every stateful route on readiness (503 while a part is
missing), and starts the embedded worker in the lifespan when asked to (``bioverify
serve`` on SQLite).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import AsyncIterator, Callable
from typing import Any

import structlog
from fastapi import Depends, FastAPI, Request
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from bioverify.accounts.throttle import FailureThrottle
from bioverify.alerts.rules import Signal
from bioverify.api import age, capture, customers, docs, health, keys, page, sessions, webhooks
from bioverify.api import audit as audit_routes
from bioverify.api.deps import client_address, ready
from bioverify.api.errors import ServerErrorHook, install_error_handlers
from bioverify.api.middleware import (
    BodyLimitMiddleware,
    RequestIdMiddleware,
    V2PrefixMiddleware,
    route_template,
)
from bioverify.api.openapi import install_openapi
from bioverify.api.proxies import ForwardedMiddleware
from bioverify.api.response_headers import ResponseHeadersMiddleware
from bioverify.api.schemas import CreateSessionRequest, EnvelopeBody, ErrorEnvelope
from bioverify.audit.events import AuditEvent
from bioverify.audit.wiring import run_sequencer
from bioverify.config import Settings
from bioverify.crypto.keyring import KeyRing
from bioverify.documents.scanner import DocumentScanner
from bioverify.engine.interfaces import Engine as BioEngine
from bioverify.errors import BioverifyError
from bioverify.metrics import MetricsMiddleware
from bioverify.sessions.service import SessionEffects
from bioverify.storage.database import is_sqlite, transaction
from bioverify.webhooks.egress import EgressGuard
from bioverify.wiring import Services, build_services

Clock = Callable[[], dt.datetime]
log = structlog.get_logger("bioverify.app")

DESCRIPTION = """\
Self-hosted biometric verification Session API (ENROLL, VERIFY 1:1, SIGN-IN 1:N).

Every non-2xx answer is the error envelope
`{"status": "error", "message", "errorCodes", "requestId"}`; the codes are listed
in the error catalogue (docs/errors.md).
"""


def create_app(
    settings: Settings,
    *,
    db_engine: Engine | None = None,
    clock: Clock | None = None,
    throttle: FailureThrottle | None = None,
    effects: SessionEffects | None = None,
    egress: EgressGuard | None = None,
    keyring: KeyRing | None = None,
    bio_engine: BioEngine | None = None,
    document_scanner: DocumentScanner | None = None,
    on_server_error: ServerErrorHook | None = None,
    run_worker: bool = False,
    worker_factory: Callable[[Services], Any] | None = None,
    services: Services | None = None,
    warm_engine: bool = False,
    lead_sequencer: bool = True,
) -> FastAPI:
    """The ASGI app over ``services`` (built here by ``build_services`` when not given;
    the other collaborators are overridable for tests)."""
    svc = services or build_services(
        settings,
        db_engine=db_engine,
        clock=clock,
        throttle=throttle,
        egress=egress,
        keyring=keyring,
        bio_engine=bio_engine,
        session_effects=effects,
        document_scanner=document_scanner,
    )
    _install_hooks(svc)
    engine = svc.db_engine

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if warm_engine and svc.engine is not None:
            # Load the models in every engine process before the first request (and so
            # before /readyz answers ready): the first capture must not pay for it.
            await svc.engine.warm_up()
        stop = asyncio.Event()
        tasks = [asyncio.create_task(_watch_keys(svc, stop))]
        if svc.gallery_sync is not None:  # other replicas' enrolments and erasures
            tasks.append(asyncio.create_task(svc.gallery_sync.run(stop)))
        if run_worker and worker_factory is not None:
            tasks.append(asyncio.create_task(worker_factory(svc).run(stop)))
        elif (
            lead_sequencer and is_sqlite(engine) and svc.sequencer is not None and not svc.problems
        ):
            # On SQLite the serving process is the audit sequencer, worker or not (and,
            # like the worker, it writes nothing while a part is broken); with several
            # API processes only the first one leads (bioverify.serving).
            tasks.append(asyncio.create_task(run_sequencer(svc.sequencer, engine, stop)))
        try:
            yield
        finally:
            stop.set()
            await asyncio.gather(*tasks)
            await _flush_security_events(svc)
            if bio_engine is None and services is None and svc.engine is not None:
                # The pool this app made: its processes must not outlive the server.
                await svc.engine.close()
            if db_engine is None and services is None:
                engine.dispose()

    app = FastAPI(
        title="bioverify Session API",
        version="2",
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # served by api/docs.py, without a CDN
        redoc_url=None,
    )
    app.state.services = svc
    # Every route that reads or writes the service's state answers 503 while a part is
    # missing or broken; health, metrics and the static page stay up.
    gate = [Depends(ready)]
    app.include_router(health.router)
    app.include_router(sessions.router, dependencies=gate)
    app.include_router(capture.router, dependencies=gate)
    app.include_router(keys.router, dependencies=gate)
    app.include_router(customers.router, dependencies=gate)
    app.include_router(audit_routes.router, dependencies=gate)
    app.include_router(webhooks.router, dependencies=gate)
    app.include_router(page.router)
    app.include_router(docs.router)
    app.include_router(age.router)
    # add_middleware prepends: the request id is outermost, then the body limit, then
    # the 500 net (installed with the handlers), then the routes.
    install_error_handlers(app, on_server_error=on_server_error or svc.on_server_error)
    app.add_middleware(BodyLimitMiddleware, limit=settings.max_body_bytes)
    app.add_middleware(V2PrefixMiddleware)
    app.add_middleware(MetricsMiddleware)
    app.add_middleware(ResponseHeadersMiddleware)
    app.add_middleware(RequestIdMiddleware)
    app.add_middleware(ForwardedMiddleware, trusted=settings.trusted_proxies)
    install_openapi(app, [CreateSessionRequest, ErrorEnvelope, EnvelopeBody])
    return app


async def _flush_security_events(svc: Services) -> None:
    """Write the counted entries of security events still pending in their window."""
    if svc.security_events is None:
        return
    try:
        await run_in_threadpool(svc.security_events.flush, svc.factory)
    except BioverifyError:
        log.exception("security_events_flush_failed")


async def _watch_keys(svc: Services, stop: asyncio.Event, interval_s: float = 2.0) -> None:
    """Pick up keys rotated by ``bioverify keys rotate`` (another process) while serving."""
    ring = svc.keyring
    if ring is None:
        return
    while not stop.is_set():
        try:
            if await run_in_threadpool(ring.reload_if_changed):
                log.info("keyring_reloaded", capture_kid=ring.current_capture_kid)
        except BioverifyError:
            log.exception("keyring_reload_failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval_s)


def _install_hooks(svc: Services) -> None:
    """Audit rejected credentials and server errors (needs the key ring's effects)."""
    effects = svc.effects
    security = svc.security_events
    if effects is None or security is None:
        return  # not ready: every gated route answers 503 before reaching a hook

    def on_auth_failure(request: Request, reason: str, claimed_client: str) -> None:
        # Aggregated per (address, window): a credential spray is one entry plus a count.
        with transaction(svc.factory) as db:
            security.observe(
                db,
                "auth_rejected",
                client_id=None,
                session_id=None,
                address=client_address(request),
                details={"reason": reason[:64], "route": route_template(request.scope)},
            )

    def on_server_error(request: Request, exc: BaseException) -> None:
        with transaction(svc.factory) as db:
            effects.record(
                db,
                AuditEvent.SERVER_ERROR,
                client_id=None,
                details={
                    "route": route_template(request.scope),
                    "errorType": type(exc).__name__[:64],
                },
            )
            svc.alerts.observe(
                db, Signal.SERVER_ERROR, keys={}, details={"route": route_template(request.scope)}
            )

    svc.on_auth_failure = on_auth_failure
    svc.on_server_error = on_server_error


__all__ = ["create_app"]
