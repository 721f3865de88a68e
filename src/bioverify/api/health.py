"""Liveness (``/healthz``) and readiness (``/readyz``: store, keys, models)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import func, select, text
from starlette.concurrency import run_in_threadpool

from bioverify.addresses import in_networks, parse_ip
from bioverify.api.deps import client_address, services
from bioverify.api.envelope import envelope
from bioverify.api.middleware import current_request_id
from bioverify.api.schemas import ErrorEnvelope
from bioverify.audit.models import AuditHead, AuditQueued
from bioverify.errors import MODEL_LOAD_FAILED, Forbidden
from bioverify.metrics import AUDIT_QUEUED, AUDIT_SIZE, WEBHOOK_QUEUE
from bioverify.webhooks.models import WebhookMessage

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="The process is up")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Store reachable, keys loaded, models loaded",
    responses={503: {"model": ErrorEnvelope, "description": "Not ready"}},
)
async def readyz(request: Request) -> Any:
    svc = services(request)

    def store_ok() -> bool:
        try:
            with svc.db_engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception:  # noqa: BLE001 - reported, never fatal here
            return False
        return True

    checks = {"store": await run_in_threadpool(store_ok), **svc.checks()}
    if all(checks.values()):
        return {"status": "ready", "checks": checks}
    failing = ", ".join(sorted(name for name, ok in checks.items() if not ok))
    codes = [MODEL_LOAD_FAILED] if not checks.get("models", True) else []
    body = envelope(f"Not ready: {failing}", codes, current_request_id())
    body["checks"] = checks
    return JSONResponse(body, status_code=503, headers={"retry-after": "5"})


__all__ = ["router"]


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    include_in_schema=True,
    response_class=PlainTextResponse,
    responses={
        403: {
            "model": ErrorEnvelope,
            "description": "The caller's address is not in BIOVERIFY_METRICS_ALLOW.",
        }
    },
)
async def metrics(request: Request) -> PlainTextResponse:
    svc = services(request)
    # Metrics describe traffic and queues: only for the scraper's addresses.
    address = parse_ip(client_address(request))
    if address is None or not in_networks(address, svc.settings.metrics_allow):
        raise Forbidden(
            "/metrics is served only to the addresses in BIOVERIFY_METRICS_ALLOW "
            "(default: loopback)"
        )

    def gauges() -> None:
        with svc.db_engine.connect() as conn:
            pending = conn.scalar(
                select(func.count())
                .select_from(WebhookMessage)
                .where(WebhookMessage.status.in_(["pending", "delivering"]))
            )
            # The head's size, not count(*): the log grows to hundreds of millions.
            size = conn.scalar(select(AuditHead.tree_size))
            queued = conn.scalar(select(func.count()).select_from(AuditQueued))
        WEBHOOK_QUEUE.set(pending or 0)
        AUDIT_SIZE.set(size or 0)
        AUDIT_QUEUED.set(queued or 0)

    await run_in_threadpool(gauges)
    return PlainTextResponse(generate_latest(), media_type=CONTENT_TYPE_LATEST)
