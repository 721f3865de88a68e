"""``create_app(settings)``: the one factory that wires the service.

It picks the backends, fixes the middleware order (request id outermost, then the
body limit), installs the error mapping, and starts the embedded worker in the
lifespan when asked to (``bioverify serve`` on SQLite).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from bioverify.accounts.secretbox import KeyRingSealer
from bioverify.accounts.throttle import FailureThrottle, MemoryFailureThrottle, RedisFailureThrottle
from bioverify.alerts.rules import Signal, load_rules
from bioverify.alerts.service import AlertService
from bioverify.api import audit as audit_routes
from bioverify.api import capture, customers, docs, health, keys, page, sessions, webhooks
from bioverify.api.deps import Services, client_address
from bioverify.api.errors import ServerErrorHook, install_error_handlers
from bioverify.api.middleware import (
    BodyLimitMiddleware,
    RequestIdMiddleware,
    V2PrefixMiddleware,
    route_template,
)
from bioverify.api.proxies import ForwardedMiddleware
from bioverify.api.response_headers import ResponseHeadersMiddleware
from bioverify.api.schemas import CreateSessionRequest, EnvelopeBody, ErrorEnvelope
from bioverify.api.security_events import SecurityEvents
from bioverify.audit.events import AuditEvent
from bioverify.audit.service import AuditLog
from bioverify.config import Settings
from bioverify.crypto.datakeys import TemplateCipher
from bioverify.crypto.keyring import KeyRing
from bioverify.crypto.sqlstore import SqlDataKeyStore
from bioverify.engine.gallery import MemoryGallery
from bioverify.engine.interfaces import Engine as BioEngine
from bioverify.engine.interfaces import EngineUnavailable
from bioverify.engine.matcher import load_thresholds
from bioverify.engine.pool import PoolEngine
from bioverify.errors import BioverifyError
from bioverify.metrics import MetricsMiddleware
from bioverify.sessions.biometrics import Biometrics
from bioverify.sessions.capture import CaptureService
from bioverify.sessions.effects import ServiceEffects
from bioverify.sessions.service import SessionEffects, SessionService
from bioverify.storage.database import make_engine, session_factory, transaction
from bioverify.webhooks.egress import EgressGuard
from bioverify.webhooks.signing import new_webhook_secret

Clock = Callable[[], dt.datetime]
log = structlog.get_logger("bioverify.app")

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
        return RedisFailureThrottle(
            settings.redis_url,
            limit=settings.auth_failure_limit,
            window_s=settings.auth_failure_window_s,
        )
    return MemoryFailureThrottle(
        limit=settings.auth_failure_limit, window_s=settings.auth_failure_window_s
    )


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
        sessions=SessionService(
            factory,
            public_url=settings.public_url,
            effects=effects,
            clock=clock,
            idempotency_ttl_s=settings.idempotency_ttl_s,
        ),
        throttle=throttle or build_throttle(settings),
        clock=clock,
    )
    svc.extras["check_callback"] = guard.check_url
    svc.extras["egress"] = guard
    ring = keyring or _load_keyring(settings)
    svc.extras["keyring"] = ring
    svc.readiness_checks["keys"] = lambda: ring is not None
    if ring is not None:
        _wire_audit(svc, ring, custom_effects=effects)
    _wire_capture(svc, ring=ring, bio_engine=bio_engine)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        stop = asyncio.Event()
        tasks = [asyncio.create_task(_watch_keys(svc, stop))]
        if run_worker and worker_factory is not None:
            tasks.append(asyncio.create_task(worker_factory(svc).run(stop)))
        try:
            yield
        finally:
            stop.set()
            await asyncio.gather(*tasks)
            await _shut_down(svc)
            if db_engine is None:
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
    app.include_router(health.router)
    app.include_router(sessions.router)
    app.include_router(capture.router)
    app.include_router(keys.router)
    app.include_router(customers.router)
    app.include_router(audit_routes.router)
    app.include_router(webhooks.router)
    app.include_router(page.router)
    app.include_router(docs.router)
    # add_middleware prepends: the request id is outermost, then the body limit, then
    # the 500 net (installed with the handlers), then the routes.
    install_error_handlers(
        app, on_server_error=on_server_error or svc.extras.get("on_server_error")
    )
    app.add_middleware(BodyLimitMiddleware, limit=settings.max_body_bytes)
    app.add_middleware(V2PrefixMiddleware)
    app.add_middleware(MetricsMiddleware)
    app.add_middleware(ResponseHeadersMiddleware)
    app.add_middleware(RequestIdMiddleware)
    app.add_middleware(ForwardedMiddleware, trusted=settings.trusted_proxies)
    _document_bodies(app, [CreateSessionRequest, ErrorEnvelope, EnvelopeBody])
    return app


async def _shut_down(svc: Services) -> None:
    """Write pending counted security entries; stop the engine's worker processes."""
    security: SecurityEvents | None = svc.extras.get("security_events")
    if security is not None:
        try:
            await run_in_threadpool(security.flush, svc.factory)
        except BioverifyError:
            log.exception("security_events_flush_failed")
    bio_engine = svc.extras.get("engine")
    close = getattr(bio_engine, "close", None)
    if close is not None and svc.extras.get("owns_engine"):
        await close()


async def _watch_keys(svc: Services, stop: asyncio.Event, interval_s: float = 2.0) -> None:
    """Pick up keys rotated by ``bioverify keys rotate`` (another process) while serving."""
    ring: KeyRing | None = svc.extras.get("keyring")
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


def _load_keyring(settings: Settings) -> KeyRing | None:
    master = settings.master_key.reveal() if settings.master_key else None
    try:
        return KeyRing.load_or_create(settings.keys_dir, master_key_b64=master)
    except BioverifyError:
        # Readiness reports it; capture routes answer 503 until it is fixed.
        log.exception("keyring_unavailable", keys_dir=str(settings.keys_dir))
        return None


def _load_engine(settings: Settings) -> BioEngine | None:
    try:
        workers = settings.engine_workers if settings.engine_workers >= 0 else None
        return PoolEngine(workers=workers, models_dir=settings.models_dir)
    except EngineUnavailable:
        # No silent fallback: /readyz fails and captures answer 503 with -20.
        log.exception("engine_unavailable")
        return None


def _wire_audit(svc: Services, ring: KeyRing, *, custom_effects: SessionEffects | None) -> None:
    """Audit log, alert rules and the effects that tie them to session transitions."""
    settings = svc.settings
    audit = AuditLog()
    alerts = AlertService(
        load_rules(Path(settings.alert_rules_file) if settings.alert_rules_file else None),
        clock=svc.clock,
    )
    effects = ServiceEffects(
        audit=audit,
        keyring=ring,
        alerts=alerts,
        clock=svc.clock,
        operator_webhook_url=settings.alert_webhook_url or None,
    )
    security = SecurityEvents(effects, ring)
    svc.extras.update(audit=audit, alerts=alerts, effects=effects, security_events=security)
    if custom_effects is None:
        svc.sessions.effects = effects
    svc.sessions.response_sealer = KeyRingSealer(ring, purpose="launch-url")

    def on_auth_failure(request: Request, reason: str, claimed_client: str) -> None:
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
            alerts.observe(
                db, Signal.SERVER_ERROR, keys={}, details={"route": route_template(request.scope)}
            )

    svc.on_auth_failure = on_auth_failure
    svc.extras["on_server_error"] = on_server_error
    if settings.alert_webhook_url:
        svc.extras["operator_webhook_secret"] = _operator_secret(settings)


def _operator_secret(settings: Settings) -> str:
    """The operator alert webhook's whsec_ secret: from the environment, or kept 0600."""
    if settings.alert_webhook_secret is not None:
        return settings.alert_webhook_secret.reveal()
    path = settings.keys_dir / "alert-webhook.secret"
    if not path.exists():
        settings.keys_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process made it first: use theirs
        else:
            with os.fdopen(fd, "w") as handle:
                handle.write(new_webhook_secret())
            log.info("alert_webhook_secret_created", path=str(path))
    return path.read_text().strip()


def _wire_capture(svc: Services, *, ring: KeyRing | None, bio_engine: BioEngine | None) -> None:
    """Biometric engine, template store and the capture service."""
    engine = bio_engine if bio_engine is not None else _load_engine(svc.settings)
    svc.extras["engine"] = engine
    # An engine made here is stopped here (lifespan end); one passed in is the caller's.
    svc.extras["owns_engine"] = bio_engine is None
    svc.readiness_checks["models"] = lambda: engine is not None and engine.ready()
    if ring is None:
        return
    biometrics = None
    if engine is not None:
        biometrics = Biometrics(
            cipher=TemplateCipher(ring, SqlDataKeyStore(svc.factory)),
            gallery=MemoryGallery(),
            thresholds=load_thresholds(),
            model_version=engine.model_version,
        )
        biometrics.rebuild(svc.factory)
    svc.extras["biometrics"] = biometrics
    effects = svc.extras.get("effects")
    svc.extras["capture"] = CaptureService(
        svc.sessions,
        svc.factory,
        keyring=ring,
        engine=engine,
        biometrics=biometrics,
        on_security_event=svc.extras["security_events"].capture_hook
        if effects is not None
        else None,
    )
    svc.extras["capture_load"] = capture.load


def _document_bodies(app: FastAPI, models: list[type[Any]]) -> None:
    """Add the self-parsed request bodies' schemas to the OpenAPI components."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for model in models:
            model_schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
            for name, sub in model_schema.pop("$defs", {}).items():
                components.setdefault(name, sub)
            components[model.__name__] = model_schema
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


__all__ = ["create_app"]
