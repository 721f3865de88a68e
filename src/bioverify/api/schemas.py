"""Request and response models of the integrator routes (they drive /docs too)."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
)

from bioverify.domain.customer_id import customer_id_problem
from bioverify.domain.session import REQUIREMENTS, WIRE_TYPES
from bioverify.sessions.device_info import integrator_problem


def _customer_id(value: str) -> str:
    problem = customer_id_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


def _session_type(value: str) -> str:
    if value not in WIRE_TYPES:
        raise ValueError(f"unknown type {value!r}; accepted: {', '.join(WIRE_TYPES)}")
    return value


def _requirements(value: list[str]) -> list[str]:
    # Our own messages, never the framework's ("List should have at most 2 items").
    if not value:
        raise ValueError(f"must name at least one of: {', '.join(REQUIREMENTS)}")
    if len(value) > 8:
        raise ValueError(f"at most 8 values from: {', '.join(REQUIREMENTS)}")
    for item in value:
        if item not in REQUIREMENTS:
            raise ValueError(f"unknown value {item!r}; accepted: {', '.join(REQUIREMENTS)}")
    return value


CustomerId = Annotated[str, AfterValidator(_customer_id)]
ShortText = Annotated[str, StringConstraints(max_length=128)]


class _Strict(BaseModel):
    # Unknown fields are 400 (API.md); types are not coerced ("true" is not a bool).
    model_config = ConfigDict(extra="forbid", strict=True)


#: RFC 9110 token: what a header field name may be.
_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,64}")


class Callback(_Strict):
    url: Annotated[str, StringConstraints(min_length=1, max_length=2048)] = Field(
        description="https URL that receives the final webhook (http only to hosts the "
        "operator allows)."
    )
    headers: dict[str, Annotated[str, StringConstraints(max_length=1024)]] | None = Field(
        default=None, description="Up to 20 extra headers added to every webhook POST."
    )

    @field_validator("headers")
    @classmethod
    def _few_headers(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        if value is not None and len(value) > 20:
            raise ValueError("at most 20 headers")
        for name, text in (value or {}).items():
            # A CR or LF would split the webhook request (header injection).
            if not _HEADER_NAME.fullmatch(name):
                raise ValueError(
                    f"header name {name[:64]!r} is not an HTTP token (letters, digits "
                    "and !#$%&'*+-.^_`|~ only, at most 64 characters)"
                )
            if any(ch in text for ch in "\r\n\x00"):
                raise ValueError(f"the value of header {name!r} contains CR, LF or NUL")
        return value


class CreateSessionRequest(_Strict):
    """Body of ``POST /v2/verification-session``."""

    type: Annotated[str, AfterValidator(_session_type)] = Field(
        description="ENROLL (alias REGISTER), VERIFY (1:1 with customerId, 1:N without), "
        "VERIFY_ULTRA (1:1, customerId required) or SIGN-IN (1:N).",
        json_schema_extra={"enum": list(WIRE_TYPES)},
    )
    customerId: CustomerId | None = Field(
        default=None,
        description="Your user id, 1-128 Unicode characters without control characters "
        "(e.g. 'jane doe+1@example.com'): required for VERIFY_ULTRA, optional for VERIFY "
        "(without it the face identifies the customer) and ENROLL, not used by SIGN-IN.",
    )
    callback: Callback | None = None
    redirectURL: Annotated[str, StringConstraints(max_length=2048)] | None = Field(
        default=None,
        description='Where the hosted page sends the user at the end; "" means absent.',
    )
    sessionExpiry: int = Field(default=900, ge=60, le=86400, description="TTL in seconds.")
    enableDesktop: bool = True
    bindDevice: bool = False
    maxAttempts: int = Field(default=3, ge=1, le=10)
    liveness: Literal["active", "passive"] | None = Field(
        default=None,
        description="active (default: a random head-movement challenge) or "
        "passive (single-frame signals only, weaker); when absent, "
        "the operator's BIOVERIFY_DEFAULT_LIVENESS (active).",
    )
    requirements: Annotated[list[str], AfterValidator(_requirements)] = Field(
        default_factory=lambda: ["face"],
        description='What the user presents: "face" ("verification" is its PrivateID '
        'synonym) and "identity_document" (a document step after the face; it needs '
        '"face" too).',
        json_schema_extra={
            "items": {"enum": list(REQUIREMENTS), "type": "string"},
            # The face (or its synonym) is always among them: a document alone is a 400.
            "anyOf": [{"contains": {"const": "face"}}, {"contains": {"const": "verification"}}],
        },
    )
    sendImages: bool = False
    deviceInfo: dict[str, Any] | None = Field(
        default=None,
        description="Your device metadata: a flat object of at most 32 keys with text, "
        "number, boolean or null values (and screenDimensions {width, height}).",
    )

    @field_validator("deviceInfo")
    @classmethod
    def _flat_device_info(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        problem = None if value is None else integrator_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value

    transactionID: ShortText | None = None
    locale: Annotated[str, StringConstraints(max_length=35)] | None = None
    sendEventWebhooks: bool = False
    productGroupId: ShortText | None = None
    uuid: ShortText | None = None


class CreateSessionResponse(BaseModel):
    sessionId: str
    launchUrl: str
    expiresAt: str
    status: Literal["PENDING"]
    type: str
    customerId: str | None = None
    puid: str | None = None
    transactionID: str | None = None


class SessionError(BaseModel):
    code: int
    name: str
    kind: Literal["fatal", "diagnostic"]
    message: str
    at: str | None = None


class IdentityChecks(BaseModel):
    """What was verified on the document."""

    checkDigits: bool | None = Field(
        description="Every ICAO 9303 check digit held (MRZ); null for a PDF417, which has none."
    )
    expired: bool
    portraitMatch: bool | None


class IdentityInformation(BaseModel):
    """What the identity document said (document sessions only; API.md section 5)."""

    documentType: str
    issuingCountry: str | None
    documentNumber: str
    firstName: str
    lastName: str
    dateOfBirth: str
    expirationDate: str
    sex: str | None
    nationality: str | None
    verificationDate: str = Field(description="Epoch milliseconds, as a string.")
    portraitMatchScore: float | None
    checks: IdentityChecks


class SessionView(BaseModel):
    """A session as the integrator sees it."""

    sessionId: str
    type: str
    status: Literal["PENDING", "IN_PROGRESS", "SUCCESS", "FAILED"]
    customerId: str | None
    puid: str | None
    guid: str | None = None
    transactionID: str | None
    productGroupId: str | None = None
    uuid: str | None = None
    createdAt: str
    expiresAt: str
    completedAt: str | None
    attemptsLeft: int
    errorCodes: list[int]
    errors: list[SessionError]
    message: str
    result: dict[str, Any]
    riskEvaluation: dict[str, Any]
    deviceInfo: dict[str, Any] | None = Field(
        default=None,
        description="What you sent at create, merged with what the capture client saw.",
    )
    indicators: dict[str, Any] | None = Field(
        default=None,
        description="The capture client's integrity flags (headless, virtualCamera, "
        "browserAnomalies), when it sent any.",
    )
    identityInformation: IdentityInformation | None = Field(
        default=None,
        description="Document sessions: what the identity document said, once it was read.",
    )


class ErrorEnvelope(BaseModel):
    """Every non-2xx answer, on every route."""

    status: Literal["error"]
    message: str = Field(description="Human-readable; never internals.")
    errorCodes: list[int] = Field(description="Codes from the catalogue (docs/errors.md).")
    requestId: str = Field(description="Echo of X-Request-ID, or a generated id.")


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorEnvelope, "description": text}
    for status, text in {
        400: "Malformed JSON, missing or invalid field, unknown field.",
        401: "Missing or invalid credentials.",
        404: "Unknown session or customer for this client.",
        409: "Idempotency-Key reused with another body, or session already ended.",
        413: "Body larger than the configured limit.",
        429: "Too many failed authentication attempts; see Retry-After.",
        431: "Request head (request line and headers) over 64 KiB.",
        500: "Transient server fault (audited and alerted).",
        503: "Not ready or store unavailable; see Retry-After.",
    }.items()
}

__all__ = [
    "ERROR_RESPONSES",
    "Callback",
    "CreateSessionRequest",
    "CreateSessionResponse",
    "ErrorEnvelope",
    "SessionView",
]


class EnvelopeBody(BaseModel):
    """Every capture POST body: AES-256-GCM plaintext, key wrapped with RSA-OAEP-SHA256."""

    model_config = ConfigDict(extra="forbid")

    encryptedKey: str = Field(description="RSA-OAEP(SHA-256) wrapped AES-256 key, base64.")
    encryptedMessage: str = Field(description="AES-256-GCM ciphertext without tag, base64.")
    iv: str = Field(description="12-byte GCM nonce, base64.")
    gcmTag: str = Field(description="16-byte GCM tag, base64.")
    gcmAad: str = Field(description="base64 of bioverify:v1:{sessionId}:{route}.")
    kid: str = Field(description="The /public-key kid the key was wrapped to.")


class ChallengeView(BaseModel):
    id: str
    steps: list[Literal["TURN_LEFT", "TURN_RIGHT", "NOD", "MOVE_CLOSER", "BLINK", "SMILE"]]
    expiresAt: str


class CaptureLoadView(BaseModel):
    """The session as the capture client sees it (load with a capture token)."""

    sessionId: str
    type: str
    status: Literal["PENDING", "IN_PROGRESS", "SUCCESS", "FAILED"]
    requirements: list[str]
    enableDesktop: bool
    locale: str | None
    expiresAt: str
    attemptsLeft: int
    liveness: Literal["active", "passive"]
    errorCodes: list[int]
    challenge: ChallengeView | None = None
    redirectURL: str | None = None
    frameAncestors: list[str] = Field(default_factory=list)
    next: Literal["document"] | None = Field(
        default=None,
        description="document: the face has passed; the session continues with the document.",
    )


class CustomerView(BaseModel):
    """Enrolment status of one customer (no template data, ever)."""

    customerId: str
    enrolled: bool
    puid: str
    guid: str
    enrolledAt: str | None
    deviceBound: bool
    modelVersion: str
