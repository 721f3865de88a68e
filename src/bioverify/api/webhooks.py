"""Webhook operations: the polling fallback, delivery attempts, redelivery."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from bioverify.accounts.models import Client
from bioverify.api.audit import AUDIT_KEY_NAME
from bioverify.api.deps import integrator, services
from bioverify.api.schemas import ERROR_RESPONSES
from bioverify.audit.events import AuditEvent
from bioverify.audit.service import AuditLog
from bioverify.crypto.keyring import KeyRing
from bioverify.errors import ServiceUnavailable
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
    audit: AuditLog | None = svc.audit
    ring: KeyRing | None = svc.keyring
    if audit is None or ring is None:
        # Fail closed: without the log and its key the receipt cannot be completed.
        raise ServiceUnavailable("The audit log is not available", retry_after=30)

    def read() -> dict[str, Any]:
        with transaction(svc.factory) as db:
            row = svc.need_sessions().ended_row_for_client(
                db, client, sessionId, "its final webhook does not exist yet"
            )
            stored = outbox.final_payload(db, row.id)
            # No callback URL was given: the payload is still available by polling.
            payload = stored or views.webhook_payload(
                row, audit_index=(row.result or {}).get("auditIndex")
            )
            receipt = payload.get("audit")
            if isinstance(receipt, dict) and "checkpoint" not in receipt:
                # The receipt is completed when the webhook is sent; a poll may come
                # first (or there is no callback), so complete it here the same way:
                # signing a checkpoint that covers the entry if none does yet.
                payload["audit"] = audit.receipt_with_fresh_checkpoint(
                    db,
                    int(receipt["index"]),
                    signer=ring.signing_key().private_key,
                    key_name=AUDIT_KEY_NAME,
                    origin=svc.settings.audit_origin,
                )
                if stored is not None:
                    outbox.store_final_payload(db, row.id, payload)
            return payload

    return await run_in_threadpool(read)


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
