"""The wired services of one app, and the request dependencies that reach them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader
from pydantic import BaseModel, ValidationError
from sqlalchemy import Connection
from starlette.concurrency import run_in_threadpool

from bioverify import strict_json
from bioverify.accounts import service as accounts
from bioverify.accounts.models import Client
from bioverify.accounts.throttle import refuse_if_throttled
from bioverify.api.errors import describe_validation
from bioverify.api.proxies import client_address
from bioverify.errors import BadRequest, Unauthorized
from bioverify.storage.database import core_transaction
from bioverify.wiring import AuthFailureHook, Services

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")


def services(request: Request) -> Services:
    svc: Services = request.app.state.services
    return svc


async def ready(request: Request) -> None:
    """Router dependency: 503 (with Retry-After) while a collaborator is missing or broken."""
    services(request).require_ready()


# Declared so that /docs shows how to authenticate; checked by `integrator` below.
api_key_header = APIKeyHeader(
    name="x_api_key",
    scheme_name="apiKey",
    auto_error=False,
    description="Identifies the account (also accepted as x-api-key).",
)
client_id_header = APIKeyHeader(
    name="clientID",
    scheme_name="clientId",
    auto_error=False,
    description="The client application's public id.",
)
client_secret_header = APIKeyHeader(
    name="clientSecret",
    scheme_name="clientSecret",
    auto_error=False,
    description="The client's secret (or send SLC instead).",
)
slc_header = APIKeyHeader(
    name="SLC",
    scheme_name="slc",
    auto_error=False,
    description="Per-request Ed25519 signature, base64url, over "
    "METHOD\\nPATH?QUERY\\nX-Timestamp\\nX-Request-ID\\n"
    "hex(SHA-256(body)), with the X-Timestamp and X-Request-ID headers it covers.",
)


def _path_with_query(request: Request) -> str:
    raw_path: bytes = request.scope.get("raw_path") or request.url.path.encode()
    query: bytes = request.scope.get("query_string", b"")
    text = raw_path.decode("latin-1")
    return f"{text}?{query.decode('latin-1')}" if query else text


#: Rejections that happen after the API key matched the claimed client.
CLIENT_FAILURES = frozenset(
    {
        "wrong client secret",
        "missing client secret or slc",
        "slc without registered key",
        "slc without request id",
        "slc malformed",
        "slc timestamp outside window",
        "slc bad signature",
        "slc replayed request id",
    }
)


#: Checks the request's credentials in the given transaction: the client, or Unauthorized.
CredentialCheck = Callable[[Connection], Client]


async def authenticate(request: Request) -> Client:
    """The authenticated integrator client, or 401/429 (API.md section 3)."""
    engine = services(request).db_engine

    def own_transaction(check: CredentialCheck) -> Client:
        with core_transaction(engine) as db:
            return check(db)

    return await authenticated(request, own_transaction, client_of=lambda client: client)


async def authenticated(
    request: Request,
    work: Callable[[CredentialCheck], T],
    *,
    client_of: Callable[[T], Client],
) -> T:
    """Run ``work`` (in a worker thread) with the credential check of this request, or
    answer 401/429 (API.md section 3).

    ``work`` calls the check inside its own transaction, first: a route can check the
    credentials and do its writes in one transaction and one thread hop (the create
    route does). ``client_of`` names the client ``work``'s result was made for.

    Valid credentials are always honoured: failures are counted per address and per
    claimed client, and only further *failing* attempts are refused (429), so anyone
    sharing an address with an attacker, or whose public client id is sprayed, is
    still served.
    """
    svc = services(request)
    address_key = f"ip:{client_address(request)}"
    claimed_client = request.headers.get("clientid", "")[:64]
    body = await request.body()
    facts = accounts.RequestFacts(
        method=request.method,
        path_with_query=_path_with_query(request),
        headers=request.headers,
        body=body,
    )

    def check(db: Connection) -> Client:
        return accounts.authenticate(
            db, facts, now=svc.clock(), slc_window_s=svc.settings.slc_window_s
        )

    try:
        # One thread hop for the credential check and the route's work.
        result = await run_in_threadpool(work, check)
    except Unauthorized as exc:
        reason = str(getattr(exc, "reason", "rejected"))
        keys = [address_key]
        # Only a failure after the API key proved to be this client's counts against
        # the client: anyone can send someone else's public clientID.
        if claimed_client and reason in CLIENT_FAILURES:
            keys.append(f"client:{claimed_client}")

        def record() -> None:
            if svc.on_auth_failure is not None:
                svc.on_auth_failure(request, reason, claimed_client)
            # Off the event loop: the shared throttle may be a Redis round trip.
            refuse_if_throttled(svc.throttle, keys)

        await run_in_threadpool(record)
        raise
    request.state.client = client_of(result)
    return result


async def documented_credentials(
    _key: str | None = Depends(api_key_header),
    _client_id: str | None = Depends(client_id_header),
    _secret: str | None = Depends(client_secret_header),
    _slc: str | None = Depends(slc_header),
) -> None:
    """Route dependency that only documents the credentials (/docs) of a route that
    checks them itself, with :func:`authenticated`."""


async def integrator(
    request: Request,
    _key: str | None = Depends(api_key_header),
    _client_id: str | None = Depends(client_id_header),
    _secret: str | None = Depends(client_secret_header),
    _slc: str | None = Depends(slc_header),
) -> Client:
    """Route dependency: the authenticated client (the header params document /docs)."""
    return await authenticate(request)


async def read_json(request: Request, model: type[M]) -> M:
    """Parse the body into ``model``: 400 naming the field on any problem."""
    body = await request.body()
    if not body.strip():
        raise BadRequest("The request body is empty; send a JSON object")
    if b"\\u0000" in body.lower():
        # PostgreSQL text cannot hold NUL; refuse it the same way on every store.
        raise BadRequest("Text fields must not contain NUL characters (\\u0000)")
    # Strict and bounded first (duplicate keys, NaN, depth, size); then the model.
    strict_json.loads(body)
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        raise BadRequest(describe_validation(exc.errors())) from None


def json_body(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` documenting a JSON body that the route parses itself.

    Routes read the raw body themselves (SLC signs it, idempotency hashes it, and
    FastAPI would turn a 413 raised mid-read into a 400).
    """
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}
            },
        }
    }


__all__ = [
    "AuthFailureHook",
    "CredentialCheck",
    "Services",
    "authenticate",
    "authenticated",
    "client_address",
    "documented_credentials",
    "integrator",
    "json_body",
    "read_json",
    "ready",
    "services",
]
