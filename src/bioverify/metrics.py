"""Prometheus metrics: one registry of names, shared by the API, engine and worker."""

from __future__ import annotations

import time
from collections.abc import Mapping

from prometheus_client import Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bioverify.routing import route_template

HTTP_REQUESTS = Counter(
    "bioverify_http_requests_total", "HTTP requests answered", ["method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "bioverify_http_request_seconds",
    "HTTP request latency",
    ["method", "route"],
    buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
SESSIONS_ENDED = Counter(
    "bioverify_sessions_ended_total", "Sessions ended, by outcome", ["type", "status", "code"]
)
WEBHOOKS_DELIVERED = Counter("bioverify_webhooks_delivered_total", "Webhooks delivered")
WEBHOOKS_DEAD = Counter("bioverify_webhooks_dead_total", "Webhooks dead-lettered")
WEBHOOK_QUEUE = Gauge("bioverify_webhook_queue_depth", "Webhook messages not yet delivered")
AUDIT_SIZE = Gauge("bioverify_audit_entries", "Entries in the audit log")
AUDIT_QUEUED = Gauge("bioverify_audit_queued", "Audit entries waiting for the sequencer")
ENGINE_STAGE = Histogram(
    "bioverify_engine_stage_seconds",
    "Engine time per stage",
    ["stage"],
    buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1),
)


class MetricsMiddleware:
    """Counts requests and latency by route template (never by raw path: ids stay out)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def tracking_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        finally:
            template = route_template(scope)
            method = str(scope.get("method", ""))
            HTTP_REQUESTS.labels(method, template, str(status)).inc()
            HTTP_LATENCY.labels(method, template).observe(time.perf_counter() - started)


def observe_stages(timings_ms: Mapping[str, float]) -> None:
    """Record an engine analysis's per-stage timings."""
    for stage, value in timings_ms.items():
        ENGINE_STAGE.labels(stage).observe(value / 1000.0)


__all__ = [
    "AUDIT_SIZE",
    "ENGINE_STAGE",
    "HTTP_LATENCY",
    "HTTP_REQUESTS",
    "SESSIONS_ENDED",
    "WEBHOOKS_DEAD",
    "WEBHOOKS_DELIVERED",
    "WEBHOOK_QUEUE",
    "MetricsMiddleware",
    "observe_stages",
]
