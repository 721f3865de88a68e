"""Capture routes (hosted page and capture SDK): the capture token is the credential."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from bioverify import strict_json
from bioverify.accounts.throttle import refuse_if_throttled
from bioverify.api.deps import client_address, services
from bioverify.api.schemas import ERROR_RESPONSES
from bioverify.errors import BadRequest, Unauthorized
from bioverify.sessions.capture import CaptureService, DeviceFacts

router = APIRouter(tags=["capture"])
T = TypeVar("T")

_ENVELOPE_DOC = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/EnvelopeBody"}}},
    }
}


def capture_service(request: Request) -> CaptureService:
    return services(request).need_capture()


def device_facts(request: Request) -> DeviceFacts:
    return DeviceFacts(
        user_agent=request.headers.get("user-agent", "")[:512],
        device_header=request.headers.get("x-device-info", "")[:1024],
        address=client_address(request),
    )


async def envelope_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    body = strict_json.loads(raw)
    if not isinstance(body, dict):
        raise BadRequest("The request body must be a JSON object (an encrypted envelope)")
    return body


async def refused_when_failing(request: Request, call: Callable[[], Awaitable[T]]) -> T:
    """Count bad capture tokens per address, and answer 429 to an address's further bad
    tokens once it reached the limit. A valid token is never refused: the throttle is
    consulted only after the token failed."""
    throttle = services(request).throttle
    key = f"capture-ip:{client_address(request)}"
    try:
        return await call()
    except Unauthorized:
        await run_in_threadpool(refuse_if_throttled, throttle, [key])
        raise


async def load(request: Request, token: str) -> dict[str, Any]:
    """Capture load, reached through ``GET /v2/verification-session/{token}``."""
    service = capture_service(request)
    facts = device_facts(request)
    return await refused_when_failing(
        request, lambda: run_in_threadpool(service.load, token, facts)
    )


@router.post(
    "/v2/verification-session/{token}/events",
    responses=ERROR_RESPONSES,
    openapi_extra=_ENVELOPE_DOC,
    summary="Report client-side codes (encrypted)",
)
async def post_events(request: Request, token: str) -> dict[str, Any]:
    service = capture_service(request)
    body = await envelope_body(request)
    facts = device_facts(request)
    return await refused_when_failing(
        request, lambda: run_in_threadpool(service.events, token, body, facts)
    )


@router.post(
    "/v2/verification-session/{token}/capture",
    responses=ERROR_RESPONSES,
    openapi_extra=_ENVELOPE_DOC,
    summary="Submit frames (encrypted)",
)
async def post_capture(request: Request, token: str) -> dict[str, Any]:
    service = capture_service(request)
    body = await envelope_body(request)
    facts = device_facts(request)
    return await refused_when_failing(request, lambda: service.capture(token, body, facts))


@router.post(
    "/v2/verification-session/{token}/document",
    responses=ERROR_RESPONSES,
    openapi_extra=_ENVELOPE_DOC,
    summary="Submit a photographed identity document side (encrypted)",
)
async def post_document(request: Request, token: str) -> dict[str, Any]:
    step = services(request).need_documents()
    body = await envelope_body(request)
    facts = device_facts(request)
    return await refused_when_failing(request, lambda: step.submit(token, body, facts))


__all__ = ["load", "router"]
