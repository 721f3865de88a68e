"""Webhook operations: the polling fallback, delivery attempts, redelivery."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from bioverify.accounts.models import Client
from bioverify.api.deps import Services, integrator, services
from bioverify.api.schemas import ERROR_RESPONSES
from bioverify.audit.events import AuditEvent
from bioverify.audit.service import POLL_RECEIPT_WAIT_S
from bioverify.sessions import views
from bioverify.storage.database import transaction
from bioverify.webhooks import outbox

router = APIRouter(tags=["webhooks"], responses=ERROR_RESPONSES)


@router.get(
    "/v2/verification-session/{sessionId}/webhook",
    summary="The final webhook payload (polling fallback)",
)
async def webhook_payload(
    request: Request,
    sessionId: str,  # noqa: N803 - wire name
    client: Annotated[Client, Depends(integrator)],
) -> dict[str, Any]:
    svc = services(request)

    def read() -> dict[str, Any]:
        with transaction(svc.factory) as db:
            row = svc.need_sessions().ended_row_for_client(
                db, client, sessionId, "its final webhook does not exist yet"
            )
            stored = outbox.final_payload(db, row.id)
            # No callback URL was given: the payload is still available by polling.
            payload = stored or views.webhook_payload(row)
        return complete_receipt(svc, row.result or {}, payload)

    return await run_in_threadpool(read)


def complete_receipt(
    svc: Services, result: dict[str, Any], payload: dict[str, Any]
) -> dict[str, Any]:
    """The payload with a complete audit receipt, waiting (bounded) for the sequencer.

    Waits at most ``POLL_RECEIPT_WAIT_S`` outside any transaction; then a 503 with
    ``Retry-After`` (the entry is queued, not lost).
    """
    audit = payload.get("audit")
    if isinstance(audit, dict) and "checkpoint" in audit:
        return payload
    ref = audit if isinstance(audit, dict) and audit else None
    if ref is None and "auditEntry" in result:
        ref = {"entry": result["auditEntry"]}
    elif ref is None and "auditIndex" in result:
        ref = {"index": result["auditIndex"]}
    if ref is None:
        return payload
    return {**payload, "audit": svc.audit.receipt_for(svc.factory, ref, POLL_RECEIPT_WAIT_S)}


@router.get(
    "/v2/verification-session/{sessionId}/deliveries",
    summary="Delivery attempts of the session's webhooks",
)
async def deliveries(
    request: Request,
    sessionId: str,  # noqa: N803 - wire name
    client: Annotated[Client, Depends(integrator)],
) -> dict[str, Any]:
    svc = services(request)

    def read() -> dict[str, Any]:
        with transaction(svc.factory) as db:
            row = svc.need_sessions().locked_row_for_client(db, client, sessionId)
            return {
                "sessionId": row.id,
                "deliveries": [d.as_json() for d in outbox.list_deliveries(db, row.id)],
            }

    return await run_in_threadpool(read)


@router.post(
    "/v2/verification-session/{sessionId}/webhook/redeliver",
    status_code=202,
    summary="Queue the final webhook again (same webhook-id)",
)
async def redeliver(
    request: Request,
    sessionId: str,  # noqa: N803 - wire name
    client: Annotated[Client, Depends(integrator)],
) -> JSONResponse:
    svc = services(request)

    def queue() -> str:
        with transaction(svc.factory) as db:
            row = svc.need_sessions().ended_row_for_client(
                db, client, sessionId, "there is no final webhook to redeliver yet"
            )
            message_id = outbox.redeliver(db, row.id, client.id, now=svc.clock())
            svc.need_effects().record(
                db,
                AuditEvent.WEBHOOK_REDELIVERY_REQUESTED,
                client_id=client.id,
                session_id=row.id,
                details={"webhookId": message_id},
            )
        dispatcher = svc.dispatcher
        if dispatcher is not None:
            dispatcher.wake()
        return message_id

    message_id = await run_in_threadpool(queue)
    return JSONResponse({"status": "queued", "webhookId": message_id}, status_code=202)


__all__ = ["router"]
