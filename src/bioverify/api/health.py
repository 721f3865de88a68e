"""Liveness (``/healthz``) and readiness (``/readyz``: store, keys, models)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool

from bioverify.api.deps import services
from bioverify.api.envelope import envelope
from bioverify.api.middleware import current_request_id
from bioverify.api.schemas import ErrorEnvelope

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="The process is up")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Store reachable, keys loaded, models loaded",
            responses={503: {"model": ErrorEnvelope, "description": "Not ready"}})
async def readyz(request: Request) -> Any:
    svc = services(request)

    def store_ok() -> bool:
        try:
            with svc.db_engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception:  # noqa: BLE001 - reported, never fatal here
            return False
        return True

    checks = {"store": await run_in_threadpool(store_ok)}
    for name, check in svc.readiness_checks.items():
        try:
            checks[name] = bool(check())
        except Exception:  # noqa: BLE001 - reported, never fatal here
            checks[name] = False
    if all(checks.values()):
        return {"status": "ready", "checks": checks}
    failing = ", ".join(sorted(name for name, ok in checks.items() if not ok))
    body = envelope(f"Not ready: {failing}", [], current_request_id())
    body["checks"] = checks
    return JSONResponse(body, status_code=503, headers={"retry-after": "5"})


__all__ = ["router"]
