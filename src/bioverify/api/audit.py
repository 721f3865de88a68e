"""Audit routes: the signed checkpoint, a client's own entries, RFC 9162 proofs, and tiles.

The ``/v2/audit/tlog/*`` routes publish the log's hashes as C2SP tlog-tiles without
credentials (hashes reveal nothing about entries); entries stay per client.
"""

from __future__ import annotations

import base64
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import PlainTextResponse
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from bioverify.accounts.models import Client
from bioverify.api.deps import integrator, services
from bioverify.api.schemas import ERROR_RESPONSES
from bioverify.audit.models import AuditEntry
from bioverify.audit.service import KEY_NAME, POLL_RECEIPT_WAIT_S, AuditLog
from bioverify.audit.tiles import TileError, parse_tile_path
from bioverify.errors import BadRequest, NotFound
from bioverify.storage.database import transaction

router = APIRouter(tags=["audit"], responses=ERROR_RESPONSES)

AUDIT_KEY_NAME = KEY_NAME
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
        # Read-your-writes: entries this client queued before this request are shown.
        log.settle_client(svc.factory, client.id, POLL_RECEIPT_WAIT_S)
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


# ---------------------------------------------------------------- C2SP tlog-tiles

#: Full tiles never change; partial ones neither (a wider tile is another URL).
_IMMUTABLE = "public, max-age=31536000, immutable"


@router.get(
    "/v2/audit/tlog/checkpoint",
    summary="The latest signed checkpoint as C2SP tlog-tiles serves it (no credentials)",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/plain": {}}}},
)
async def tlog_checkpoint(request: Request) -> PlainTextResponse:
    svc = services(request)
    log = _log(request)

    def read() -> str:
        with transaction(svc.factory) as db:
            latest = log.latest_checkpoint(db)
        if latest is None:
            raise NotFound("No checkpoint has been made yet")
        return latest.note

    note = await run_in_threadpool(read)
    # Mutable: caches may keep it only briefly (tlog-tiles: "a few seconds").
    return PlainTextResponse(
        note, media_type="text/plain; charset=utf-8", headers={"Cache-Control": "max-age=2"}
    )


@router.get(
    "/v2/audit/tlog/tile/{level}/{path:path}",
    summary="A hash tile: tile/<L>/<N>[.p/<W>] as in C2SP tlog-tiles (no credentials)",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
async def tlog_tile(request: Request, level: str, path: str) -> Response:
    svc = services(request)
    log = _log(request)
    if level == "entries":
        # Entries name clients: each client reads its own through /v2/audit/entries.
        raise NotFound("Entry bundles are not public; read your entries at /v2/audit/entries")
    try:
        lv, index, width = parse_tile_path(level, path)
    except TileError as exc:
        raise BadRequest(f"Malformed tile path: {exc}") from exc

    def read() -> bytes | None:
        with transaction(svc.factory) as db:
            return log.tile(db, lv, index, width)

    data = await run_in_threadpool(read)
    if data is None:
        raise NotFound(f"Tile {lv}/{index} of width {width} does not exist (yet)")
    return Response(
        data, media_type="application/octet-stream", headers={"Cache-Control": _IMMUTABLE}
    )


__all__ = ["AUDIT_KEY_NAME", "router"]
