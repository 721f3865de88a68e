"""Integrator session routes: create and read."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from bioverify.accounts.models import Client
from bioverify.accounts.secretbox import KeyRingSealer
from bioverify.api import capture
from bioverify.api.deps import (
    CredentialCheck,
    api_key_header,
    authenticate,
    authenticated,
    client_id_header,
    client_secret_header,
    documented_credentials,
    json_body,
    read_json,
    ready,
    services,
    slc_header,
)
from bioverify.api.direct_route import DirectRoute
from bioverify.api.schemas import (
    ERROR_RESPONSES,
    CaptureLoadView,
    CreateSessionRequest,
    CreateSessionResponse,
    SessionView,
)
from bioverify.api.text_json import TextJSONResponse
from bioverify.domain.session import REQUIREMENT_SYNONYMS, SessionType
from bioverify.errors import BadRequest
from bioverify.sessions.service import NewSession
from bioverify.sessions.tokens import looks_like_uuid
from bioverify.storage.database import core_transaction
from bioverify.webhooks.callback_headers import PURPOSE as HEADERS_PURPOSE
from bioverify.webhooks.callback_headers import seal_headers
from bioverify.wiring import Services

router = APIRouter(tags=["sessions"])

#: Longest ``Idempotency-Key`` accepted (API.md section 3).
IDEMPOTENCY_KEY_MAX = 255


def to_new_session(
    body: CreateSessionRequest, *, check_callback: Any, default_liveness: str = "active"
) -> NewSession:
    """Cross-field rules of API.md section 3 on top of the model's field rules."""
    kind = SessionType.parse(body.type)
    if kind is SessionType.VERIFY_ULTRA and body.customerId is None:
        raise BadRequest(
            "customerId is required for VERIFY_ULTRA sessions (1:1 against that customer)"
        )
    if kind is SessionType.SIGN_IN and body.customerId is not None:
        raise BadRequest(
            "customerId is not used by SIGN-IN sessions: the face identifies "
            "the customer; leave it out"
        )
    requirements = tuple(
        dict.fromkeys(REQUIREMENT_SYNONYMS.get(item, item) for item in body.requirements)
    )
    if "identity_document" in requirements and "face" not in requirements:
        # The document's portrait is matched to the selfie: the face step comes first.
        raise BadRequest(
            'requirements: "identity_document" needs "face" as well (the document\'s '
            'portrait is matched to the selfie); send ["face", "identity_document"]'
        )
    if body.bindDevice and kind is SessionType.ENROLL:
        raise BadRequest(
            "bindDevice applies to VERIFY and SIGN-IN sessions; an ENROLL "
            "session always records its device"
        )
    callback_url = body.callback.url if body.callback else None
    if callback_url:
        check_callback(callback_url)
    redirect = body.redirectURL or None
    if redirect is not None and not redirect.startswith(("https://", "http://")):
        raise BadRequest("redirectURL must be an http(s) URL")
    return NewSession(
        type=kind,
        customer_id=body.customerId,
        callback_url=callback_url or None,
        callback_headers=(body.callback.headers if body.callback else None),
        redirect_url=redirect,
        session_expiry=body.sessionExpiry,
        enable_desktop=body.enableDesktop,
        bind_device=body.bindDevice,
        max_attempts=body.maxAttempts,
        liveness=body.liveness or default_liveness,
        requirements=requirements,
        send_images=body.sendImages,
        device_info=body.deviceInfo,
        transaction_id=body.transactionID,
        locale=body.locale,
        send_event_webhooks=body.sendEventWebhooks,
        product_group_id=body.productGroupId,
        external_uuid=body.uuid,
    )


def _sealed_headers(svc: Services, client_id: str, headers: Mapping[str, str]) -> dict[str, str]:
    """Callback headers as stored: sealed under the master key (they hold credentials)."""
    sealer = KeyRingSealer(svc.need_keyring(), purpose=HEADERS_PURPOSE)
    return seal_headers(sealer, client_id, headers)


async def create_session(
    request: Request,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            max_length=IDEMPOTENCY_KEY_MAX,
            description="The same key and body within 24 h returns the first answer.",
        ),
    ] = None,
) -> JSONResponse:
    svc = services(request)
    raw = await request.body()
    try:
        body: CreateSessionRequest | BadRequest = await read_json(request, CreateSessionRequest)
    except BadRequest as exc:
        body = exc  # answered only once the credentials are known to be good

    def spec() -> NewSession:
        if isinstance(body, BadRequest):
            raise body
        return to_new_session(
            body,
            check_callback=svc.egress.check_url,
            default_liveness=svc.settings.default_liveness,
        )

    sessions = svc.need_sessions()

    def vetted_create(check: CredentialCheck) -> tuple[Client, int, dict[str, Any]]:
        # Vetting a callback resolves its host: never inside a transaction (on SQLite
        # that would hold the write lock for a DNS lookup). Check, vet, then create.
        with core_transaction(svc.db_engine) as db:
            client = check(db)
        new = spec()
        if new.callback_headers:
            # Stored sealed under the master key: they often carry the receiver's credentials.
            new = dataclasses.replace(
                new, callback_headers=_sealed_headers(svc, client.id, new.callback_headers)
            )
        return sessions.create(client, new, idempotency_key=idempotency_key, body=raw)

    def create(check: CredentialCheck) -> tuple[Client, int, dict[str, Any]]:
        # The common case: credentials, validation and the insert in one transaction.
        return sessions.create(check, spec, idempotency_key=idempotency_key, body=raw)

    vetting = isinstance(body, CreateSessionRequest) and body.callback and body.callback.url
    # Either way one thread hop (it was three).
    _, status, payload = await authenticated(
        request, vetted_create if vetting else create, client_of=lambda created: created[0]
    )
    # Text and booleans only: orjson writes the bytes JSONResponse would, faster.
    return TextJSONResponse(payload, status_code=status)


class _CreateRoute(DirectRoute):
    """The create route without per-request dependency solving (see ``api.direct_route``):
    its dependencies are the readiness gate, the credential headers that only document
    /docs, and ``Idempotency-Key``, which the direct path checks as FastAPI would."""

    known_calls = frozenset(
        {
            ready,
            documented_credentials,
            api_key_header,
            client_id_header,
            client_secret_header,
            slc_header,
        }
    )
    known_headers = frozenset({"idempotency-key"})

    def accepts(self, request: Request) -> bool:
        # An over-long key is FastAPI's to refuse (its validation error, as before).
        key = request.headers.get("idempotency-key")
        return key is None or len(key) <= IDEMPOTENCY_KEY_MAX

    async def direct(self, request: Request) -> Response:
        await ready(request)  # the router's gate, first, as FastAPI runs it
        return await create_session(request, request.headers.get("idempotency-key"))


router.add_api_route(
    "/v2/verification-session",
    create_session,
    methods=["POST"],
    status_code=201,
    response_model=CreateSessionResponse,
    responses=ERROR_RESPONSES,
    openapi_extra=json_body(CreateSessionRequest),
    summary="Open a verification session",
    dependencies=[Depends(documented_credentials)],
    route_class_override=_CreateRoute,
)


@router.get(
    "/v2/verification-session/{sessionId}",
    response_model=SessionView | CaptureLoadView,
    responses=ERROR_RESPONSES,
    summary="Read a session (integrator) or load it (capture token)",
    description="With a session id (UUID) and integrator credentials: the session as the "
    "integrator sees it. With a capture token: the capture client's load "
    "(see the capture routes).",
)
async def get_session(request: Request, sessionId: str) -> Any:  # noqa: N803 - wire name
    svc = services(request)
    if not looks_like_uuid(sessionId):
        return await capture.load(request, sessionId)
    client = await authenticate(request)
    return await run_in_threadpool(svc.need_sessions().get_for_client, client, sessionId)


__all__ = ["router", "to_new_session"]
