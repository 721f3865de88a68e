"""Audit routes: the signed checkpoint, a client's own entries, and RFC 9162 proofs."""

from __future__ import annotations

import base64
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from bioverify.accounts.models import Client
from bioverify.api.deps import integrator, services
from bioverify.api.schemas import ERROR_RESPONSES
from bioverify.audit.models import AuditEntry
from bioverify.audit.service import AuditLog
from bioverify.errors import NotFound
from bioverify.storage.database import transaction

router = APIRouter(tags=["audit"], responses=ERROR_RESPONSES)

AUDIT_KEY_NAME = "bioverify"
#: Indexes are BIGINT in the store; anything larger is a 400, not a driver overflow.
MAX_INDEX = 2**63 - 1


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _log(request: Request) -> AuditLog:
    svc = services(request)
    svc.require_ready()
    return svc.audit


@router.get("/v2/audit/checkpoint", summary="The latest signed checkpoint (C2SP signed note)")
async def checkpoint(
    request: Request, client: Annotated[Client, Depends(integrator)]
) -> dict[str, Any]:
    svc = services(request)
    log = _log(request)

    def read() -> dict[str, Any]:
        with transaction(svc.factory) as db:
            latest = log.latest_checkpoint(db)
        if latest is None:
            raise NotFound("No checkpoint has been made yet")
        return {
            "treeSize": latest.size,
            "rootHash": _b64(latest.root),
            "checkpoint": latest.note,
            "origin": svc.settings.audit_origin,
            "keyName": AUDIT_KEY_NAME,
        }

    return await run_in_threadpool(read)


@router.get("/v2/audit/entries", summary="This client's entries (start <= index < end)")
async def entries(
    request: Request,
    client: Annotated[Client, Depends(integrator)],
    start: Annotated[int, Query(ge=0, le=MAX_INDEX)] = 0,
    end: Annotated[int | None, Query(ge=0, le=MAX_INDEX)] = None,
) -> dict[str, Any]:
    svc = services(request)
    log = _log(request)

    def read() -> dict[str, Any]:
        with transaction(svc.factory) as db:
            return {"entries": log.entries(db, client.id, start, end)}

    return await run_in_threadpool(read)


@router.get("/v2/audit/proof/inclusion", summary="RFC 9162 inclusion proof of one own entry")
async def inclusion(
    request: Request,
    client: Annotated[Client, Depends(integrator)],
    index: Annotated[int, Query(ge=0, le=MAX_INDEX)],
    treeSize: Annotated[int, Query(ge=1, le=MAX_INDEX)],  # noqa: N803
) -> dict[str, Any]:
    svc = services(request)
    log = _log(request)

    def read() -> dict[str, Any]:
        with transaction(svc.factory) as db:
            owner = db.scalar(select(AuditEntry.client_id).where(AuditEntry.idx == index))
            if owner != client.id:
                raise NotFound(f"No audit entry {index} for this client")
            proof = log.inclusion_proof(db, index, treeSize)
            leaf = db.scalar(select(AuditEntry.leaf_hash).where(AuditEntry.idx == index))
        return {
            "index": index,
            "treeSize": treeSize,
            "leafHash": _b64(leaf or b""),
            "inclusionProof": [_b64(p) for p in proof],
        }

    return await run_in_threadpool(read)


@router.get("/v2/audit/proof/consistency", summary="RFC 9162 consistency proof")
async def consistency(
    request: Request,
    client: Annotated[Client, Depends(integrator)],
    first: Annotated[int, Query(ge=0, le=MAX_INDEX)],
    second: Annotated[int, Query(ge=0, le=MAX_INDEX)],
) -> dict[str, Any]:
    svc = services(request)
    log = _log(request)

    def read() -> dict[str, Any]:
        with transaction(svc.factory) as db:
            proof = log.consistency_proof(db, first, second)
        return {"first": first, "second": second, "consistencyProof": [_b64(p) for p in proof]}

    return await run_in_threadpool(read)


__all__ = ["AUDIT_KEY_NAME", "router"]
