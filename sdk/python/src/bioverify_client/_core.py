"""The sans-IO core shared by :class:`Client` and :class:`AsyncClient`.

It builds each call once (path, query, body bytes, idempotency key), signs every
attempt, turns answers into typed results or classified errors, and leaves only
sending and sleeping to the two clients.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypedDict, TypeVar
from urllib.parse import quote

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bioverify_client.errors import (
    BioverifyError,
    PermanentError,
    TransientError,
    error_class,
)
from bioverify_client.models import (
    AuditEntry,
    Checkpoint,
    ConsistencyProof,
    Customer,
    Delivery,
    InclusionProof,
    PublicKey,
    Session,
)
from bioverify_client.retry import parse_retry_after
from bioverify_client.tiles import tile_path

T = TypeVar("T")

SessionType = Literal["ENROLL", "REGISTER", "VERIFY", "VERIFY_ULTRA", "SIGN-IN"]
#: ``verification`` is the synonym of ``face`` that PrivateID integrations send.
Requirement = Literal["face", "identity_document", "verification"]
USER_AGENT = "bioverify-client/0.2"
_SESSIONS = "/v2/verification-session"


class SessionOptions(TypedDict, total=False):
    """Optional fields of ``create_session`` (API.md section 3), in snake_case."""

    customer_id: str
    callback_url: str
    callback_headers: Mapping[str, str]
    redirect_url: str
    session_expiry: int | dt.timedelta
    enable_desktop: bool
    bind_device: bool
    max_attempts: int
    liveness: Literal["active", "passive"]
    requirements: list[Requirement]
    send_images: bool
    device_info: Mapping[str, Any]
    transaction_id: str
    locale: str
    send_event_webhooks: bool
    product_group_id: str
    external_uuid: str


#: snake_case option -> wire field (callback_* are folded into ``callback``).
_WIRE_NAMES: Mapping[str, str] = {
    "customer_id": "customerId",
    "redirect_url": "redirectURL",
    "session_expiry": "sessionExpiry",
    "enable_desktop": "enableDesktop",
    "bind_device": "bindDevice",
    "max_attempts": "maxAttempts",
    "liveness": "liveness",
    "requirements": "requirements",
    "send_images": "sendImages",
    "device_info": "deviceInfo",
    "transaction_id": "transactionID",
    "locale": "locale",
    "send_event_webhooks": "sendEventWebhooks",
    "product_group_id": "productGroupId",
    "external_uuid": "uuid",
}


@dataclass(frozen=True, slots=True)
class Credentials:
    """Integrator credentials; ``repr`` never shows a secret."""

    api_key: str = field(repr=False)
    client_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    signing_key: Ed25519PrivateKey | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not self.api_key:
            raise ValueError("api_key is required")
        if (self.client_secret or self.signing_key) and not self.client_id:
            raise ValueError("client_id is required with client_secret or signing_key")
        if self.client_secret and self.signing_key:
            raise ValueError(
                "give client_secret or signing_key, not both: with a signing "
                "key every request is signed (SLC) and no secret is sent"
            )

    def headers(self, method: str, path_with_query: str, body: bytes) -> dict[str, str]:
        """The credential headers of one attempt (a fresh SLC signature each time)."""
        out = {"x_api_key": self.api_key}
        if self.client_id:
            out["clientID"] = self.client_id
        if self.client_secret:
            out["clientSecret"] = self.client_secret
        if self.signing_key is not None:
            timestamp = str(int(time.time()))
            request_id = uuid.uuid4().hex
            message = slc_message(method, path_with_query, timestamp, request_id, body)
            signature = base64.urlsafe_b64encode(self.signing_key.sign(message))
            out |= {
                "SLC": signature.rstrip(b"=").decode("ascii"),
                "X-Timestamp": timestamp,
                "X-Request-ID": request_id,
            }
        return out


def slc_message(
    method: str, path_with_query: str, timestamp: str, request_id: str, body: bytes
) -> bytes:
    """The bytes an ``SLC`` signature covers (API.md section 3)."""
    digest = hashlib.sha256(body).hexdigest()
    return f"{method.upper()}\n{path_with_query}\n{timestamp}\n{request_id}\n{digest}".encode()


@dataclass(frozen=True, slots=True)
class Call(Generic[T]):
    """One API call, built once; every attempt sends the same bytes."""

    method: str
    path: str
    parse: Callable[[Any], T]
    params: Mapping[str, str | int] | None = None
    body: bytes | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    authenticated: bool = True
    #: The answer is not JSON: ``parse`` gets the raw body bytes.
    raw: bool = False
    #: A 404 on a retry means an earlier attempt (whose answer was lost) already did it.
    done_if_gone_on_retry: bool = False


def path_segment(value: str) -> str:
    # Ids go into the path: quote everything so an id can never add a path segment.
    return quote(value, safe="")


def _json_bytes(data: Mapping[str, Any]) -> bytes:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()


def _dict(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise PermanentError("The service answered with something that is not a JSON object")
    return data


def _nothing(_data: Any) -> None:
    return None


def _utf8(data: bytes) -> str:
    try:
        return data.decode()
    except UnicodeDecodeError as exc:
        raise PermanentError("The service answered with a body that is not UTF-8") from exc


def create_session_body(type: SessionType, options: SessionOptions) -> dict[str, Any]:
    """The JSON body of ``POST /v2/verification-session`` (absent options are left out)."""
    body: dict[str, Any] = {"type": type}
    given: dict[str, Any] = {k: v for k, v in options.items() if v is not None}
    url = given.pop("callback_url", None)
    headers = given.pop("callback_headers", None)
    if headers is not None and url is None:
        raise ValueError("callback_headers needs callback_url")
    if url is not None:
        body["callback"] = {"url": url, **({"headers": dict(headers)} if headers else {})}
    expiry = given.get("session_expiry")
    if isinstance(expiry, dt.timedelta):
        given["session_expiry"] = int(expiry.total_seconds())
    for key, value in given.items():
        wire = _WIRE_NAMES.get(key)
        if wire is None:
            raise TypeError(f"create_session() got an unexpected option {key!r}")
        body[wire] = dict(value) if isinstance(value, Mapping) else value
    return body


class Calls:
    """The calls of every integrator route (pure: nothing here does I/O)."""

    @staticmethod
    def create_session(
        type: SessionType, options: SessionOptions, idempotency_key: str | None
    ) -> Call[Session]:
        # Always idempotent: a retried create must never open a second session.
        key = idempotency_key or str(uuid.uuid4())
        return Call(
            "POST",
            _SESSIONS,
            lambda d: Session.from_json(_dict(d)),
            body=_json_bytes(create_session_body(type, options)),
            headers={"Idempotency-Key": key},
        )

    @staticmethod
    def get_session(session_id: str) -> Call[Session]:
        return Call(
            "GET", f"{_SESSIONS}/{path_segment(session_id)}", lambda d: Session.from_json(_dict(d))
        )

    @staticmethod
    def get_webhook_payload(session_id: str) -> Call[dict[str, Any]]:
        return Call("GET", f"{_SESSIONS}/{path_segment(session_id)}/webhook", _dict)

    @staticmethod
    def list_deliveries(session_id: str) -> Call[list[Delivery]]:
        return Call(
            "GET",
            f"{_SESSIONS}/{path_segment(session_id)}/deliveries",
            lambda d: [Delivery.from_json(x) for x in _dict(d).get("deliveries", [])],
        )

    @staticmethod
    def redeliver(session_id: str) -> Call[str]:
        # Retried like a read: a duplicate redelivery re-sends the same webhook-id,
        # which receivers already deduplicate (at-least-once delivery).
        return Call(
            "POST",
            f"{_SESSIONS}/{path_segment(session_id)}/webhook/redeliver",
            lambda d: str(_dict(d)["webhookId"]),
        )

    @staticmethod
    def get_customer(customer_id: str) -> Call[Customer]:
        return Call(
            "GET",
            f"/v2/customers/{path_segment(customer_id)}",
            lambda d: Customer.from_json(_dict(d)),
        )

    @staticmethod
    def erase_customer(customer_id: str) -> Call[None]:
        return Call(
            "DELETE",
            f"/v2/customers/{path_segment(customer_id)}",
            _nothing,
            done_if_gone_on_retry=True,
        )

    @staticmethod
    def audit_checkpoint() -> Call[Checkpoint]:
        return Call("GET", "/v2/audit/checkpoint", lambda d: Checkpoint.from_json(_dict(d)))

    @staticmethod
    def audit_entries(start: int, end: int | None) -> Call[list[AuditEntry]]:
        params: dict[str, str | int] = {"start": start}
        if end is not None:
            params["end"] = end
        return Call(
            "GET",
            "/v2/audit/entries",
            lambda d: [AuditEntry.from_json(x) for x in _dict(d).get("entries", [])],
            params=params,
        )

    @staticmethod
    def inclusion_proof(index: int, tree_size: int) -> Call[InclusionProof]:
        return Call(
            "GET",
            "/v2/audit/proof/inclusion",
            lambda d: InclusionProof.from_json(_dict(d)),
            params={"index": index, "treeSize": tree_size},
        )

    @staticmethod
    def consistency_proof(first: int, second: int) -> Call[ConsistencyProof]:
        return Call(
            "GET",
            "/v2/audit/proof/consistency",
            lambda d: ConsistencyProof.from_json(_dict(d)),
            params={"first": first, "second": second},
        )

    @staticmethod
    def public_key() -> Call[PublicKey]:
        return Call(
            "GET", "/public-key", lambda d: PublicKey.from_json(_dict(d)), authenticated=False
        )

    @staticmethod
    def jwks() -> Call[dict[str, Any]]:
        return Call("GET", "/.well-known/jwks.json", _dict, authenticated=False)

    @staticmethod
    def tlog_checkpoint() -> Call[str]:
        # Public (C2SP tlog-tiles): no credentials, and the note's bytes as served.
        return Call("GET", "/v2/audit/tlog/checkpoint", _utf8, authenticated=False, raw=True)

    @staticmethod
    def tlog_tile(level: int, index: int, width: int) -> Call[bytes]:
        return Call(
            "GET",
            f"/v2/audit/tlog/{tile_path(level, index, width)}",
            bytes,
            authenticated=False,
            raw=True,
        )


def prepare(
    http: httpx.Client | httpx.AsyncClient, call: Call[Any], credentials: Credentials
) -> httpx.Request:
    """The request of one attempt, signed afresh (SLC ids must never repeat)."""
    headers = {"accept": "application/json", **call.headers}
    if call.body is not None:
        headers["content-type"] = "application/json"
    request = http.build_request(
        call.method, call.path, params=call.params, content=call.body, headers=headers
    )
    if call.authenticated:
        path_with_query = request.url.raw_path.decode("ascii")
        request.headers.update(
            credentials.headers(request.method, path_with_query, call.body or b"")
        )
    return request


def result(call: Call[T], response: httpx.Response, attempt: int) -> T:
    """The typed result of a 2xx answer; else raise the classified error."""
    if 200 <= response.status_code < 300:
        if call.raw:
            return call.parse(response.content)
        if not response.content:
            return call.parse(None)
        try:
            data = response.json()
        except ValueError as exc:
            raise PermanentError(
                "The service answered with a body that is not JSON",
                status=response.status_code,
                request_id=response.headers.get("x-request-id"),
            ) from exc
        return call.parse(data)
    if call.done_if_gone_on_retry and attempt > 1 and response.status_code == 404:
        return call.parse(None)
    raise error_from_response(response)


def error_from_response(response: httpx.Response) -> BioverifyError:
    """The classified error of a non-2xx answer (the API.md envelope, or any body)."""
    status = response.status_code
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        body = {}
    raw_codes = body.get("errorCodes")
    codes = (
        [c for c in raw_codes if isinstance(c, int) and not isinstance(c, bool)]
        if (isinstance(raw_codes, list))
        else []
    )
    message = body.get("message")
    request_id = body.get("requestId") or response.headers.get("x-request-id")
    session_id = body.get("sessionId")
    cls = error_class(status, codes)
    return cls(
        message if isinstance(message, str) and message else f"HTTP {status}",
        status=status,
        error_codes=codes,
        request_id=str(request_id) if request_id else None,
        retry_after=parse_retry_after(response.headers.get("retry-after")),
        session_id=str(session_id) if session_id else None,
    )


def single_entry(index: int, found: list[AuditEntry]) -> AuditEntry:
    """The entry at ``index`` out of an ``audit_entries`` page, or a 404-like error."""
    for entry in found:
        if entry.index == index:
            return entry
    raise PermanentError(f"No audit entry {index} for this client", status=404)


def transport_error(exc: httpx.HTTPError) -> BioverifyError:
    """A failure before any answer arrived; network trouble is transient."""
    if isinstance(exc, httpx.TimeoutException):
        error: BioverifyError = TransientError(
            f"Timed out talking to the service ({type(exc).__name__})"
        )
    elif isinstance(exc, httpx.TransportError):
        error = TransientError(f"Could not talk to the service ({type(exc).__name__})")
    else:
        error = PermanentError(f"The HTTP exchange failed ({type(exc).__name__})")
    error.__cause__ = exc
    return error


__all__ = [
    "USER_AGENT",
    "Call",
    "Calls",
    "Credentials",
    "Requirement",
    "SessionOptions",
    "SessionType",
    "create_session_body",
    "error_from_response",
    "prepare",
    "result",
    "single_entry",
    "slc_message",
    "transport_error",
]
