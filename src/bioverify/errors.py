"""The one catalogue of session error codes, and the exception tree.

Everything else (HTTP mapping, webhook ``errors``, SDK classification, the
``docs/errors.md`` page, alert rules) is derived from :data:`CATALOGUE`; nothing
restates it.

Exception tree::

    BioverifyError                      base of every domain error; carries data
    ├── BadRequest                      400, the request itself is wrong
    │   └── UnknownErrorCode            400, a client reported a code we do not accept
    ├── Unauthorized                    401, credentials or capture token do not check out
    ├── Forbidden                       403, session policy forbids the caller
    ├── NotFound                        404, unknown (or another client's) object
    ├── Conflict                        409, replay, idempotency clash, session already ended
    ├── Gone                            410, session expired
    ├── PayloadTooLarge                 413
    ├── SessionOutcomeError             422, a capture ended the session with a biometric code
    ├── TooManyRequests                 429, carries retry_after
    ├── ServiceUnavailable              503, carries retry_after
    ├── NotOffered                      501, a PrivateID route this server does not offer
    └── InternalError                   500, transient fault or failed cryptographic operation

Programmer misuse (calling an API wrongly from our own code) raises plain
``RuntimeError``/``ValueError`` subclasses, never the domain base.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final


class Kind(enum.StrEnum):
    """Fatal codes end the session; diagnostic codes are recorded once and never end it."""

    FATAL = "fatal"
    DIAGNOSTIC = "diagnostic"


class RetryClass(enum.StrEnum):
    """Whether trying again can change the outcome."""

    PERMANENT = "permanent"
    TRANSIENT = "transient"


@dataclass(frozen=True, slots=True)
class ErrorCode:
    """One row of the catalogue."""

    code: int
    name: str
    kind: Kind
    retry: RetryClass
    http_status: int
    message: str
    remedy: str
    raised_by: str

    @property
    def is_fatal(self) -> bool:
        return self.kind is Kind.FATAL

    @property
    def is_permanent(self) -> bool:
        return self.retry is RetryClass.PERMANENT


def _row(  # noqa: PLR0917 - one positional per catalogue column keeps the table readable
    code: int,
    name: str,
    kind: Kind,
    retry: RetryClass,
    http_status: int,
    message: str,
    remedy: str,
    raised_by: str,
) -> ErrorCode:
    return ErrorCode(code, name, kind, retry, http_status, message, remedy, raised_by)


_F, _D = Kind.FATAL, Kind.DIAGNOSTIC
_P, _T = RetryClass.PERMANENT, RetryClass.TRANSIENT

_ROWS: Final[tuple[ErrorCode, ...]] = (
    _row(
        1,
        "SPOOF",
        _F,
        _P,
        422,
        "Spoofing attempt detected",
        "The capture did not pass the liveness check. The outcome stands; a genuine user "
        "should start a new session and follow the on-screen movements with their own face.",
        "server liveness check, or capture client report",
    ),
    _row(
        -5,
        "DESKTOP",
        _F,
        _P,
        403,
        "Desktop mode restricted",
        "This session does not allow desktop browsers. Open the link on a phone or tablet.",
        "server (User-Agent / deviceInfo) or capture client, when enableDesktop is false",
    ),
    _row(
        -7,
        "CAMERA_FAIL",
        _F,
        _T,
        200,
        "Camera failure detected",
        "The camera could not be opened or read. Allow camera access, close other apps "
        "using the camera, then start a new session.",
        "capture client report",
    ),
    _row(
        -8,
        "SESSION_EXPIRED",
        _F,
        _T,
        410,
        "Session expired",
        "The session passed its time limit. Start a new session.",
        "server: TTL passed (any capture call, or the expiry sweeper)",
    ),
    _row(
        -9,
        "FACE_NOT_MATCH",
        _F,
        _P,
        422,
        "Face not matching",
        "The face does not match the enrolled customer (or no enrolled customer, for "
        "sign-in). The outcome stands for this session.",
        "server: VERIFY 1:1 below threshold, SIGN-IN 1:N no candidate",
    ),
    _row(
        -10,
        "LOW_LIGHT",
        _F,
        _T,
        422,
        "Low ambient light",
        "The picture is too dark. Move to a brighter place, face the light, and start a "
        "new session.",
        "server frame quality check, or capture client report",
    ),
    _row(
        -11,
        "MULTIPLE_FACES",
        _F,
        _T,
        422,
        "Multiple faces detected",
        "More than one face was in the picture. Make sure only you are in view, then "
        "start a new session.",
        "server face detector",
    ),
    _row(
        -14,
        "UNAUTHORIZED_CALLBACK",
        _F,
        _P,
        401,
        "Unauthorized callback",
        "The capture link's secret was wrong; the session was ended for safety. Ask the "
        "service for a new session.",
        "server: a capture call names a live session with a wrong token secret",
    ),
    _row(
        -15,
        "TOKEN_ALREADY_USED",
        _F,
        _P,
        409,
        "Token already used",
        "This request or capture link was already used (possible replay). Start a new session.",
        "server: replayed nonce, or a consumed capture token used again",
    ),
    _row(
        -16,
        "DEVICE_MISMATCH",
        _F,
        _P,
        403,
        "Device mismatch",
        "The device differs from the one this session (or the enrolment) is bound to. "
        "Use the original device.",
        "server: device fingerprint differs from the session's or the enrolment's",
    ),
    _row(
        -20,
        "MODEL_LOAD_FAILED",
        _D,
        _T,
        200,
        "Face scanning models failed to load",
        "Reload the page; if it persists the operator should check the service's "
        "readiness (/readyz).",
        "capture client report; server engine start-up",
    ),
    _row(
        -22,
        "FACE_SCAN_ERROR",
        _D,
        _T,
        200,
        "No usable face found",
        "Center your face in the frame, hold still, and try again within this session.",
        "server: no usable face in the frames; capture client report",
    ),
    _row(
        -23,
        "DOCUMENT_SCAN_ERROR",
        _D,
        _T,
        400,
        "Document scan failed",
        "The document data failed its integrity check. Scan the document again.",
        "server: document embedding fails its integrity check; client report",
    ),
    _row(
        -24,
        "SESSION_LOAD_FAILED",
        _D,
        _T,
        200,
        "Session failed to load",
        "The page could not fetch the session at first; it recovered. Check the "
        "network if this repeats.",
        "capture client report (sent once the session loads again)",
    ),
)

#: code -> row, read-only.
CATALOGUE: Final = MappingProxyType({row.code: row for row in _ROWS})

#: Codes accepted on input as another code's alias; never emitted.
LEGACY_ALIASES: Final = MappingProxyType({-13: -8})

SPOOF, DESKTOP, CAMERA_FAIL, SESSION_EXPIRED, FACE_NOT_MATCH = 1, -5, -7, -8, -9
LOW_LIGHT, MULTIPLE_FACES, UNAUTHORIZED_CALLBACK, TOKEN_ALREADY_USED = -10, -11, -14, -15
DEVICE_MISMATCH, MODEL_LOAD_FAILED, FACE_SCAN_ERROR = -16, -20, -22
DOCUMENT_SCAN_ERROR, SESSION_LOAD_FAILED = -23, -24

#: Codes a capture client may report through ``/events`` (API.md section 4).
CLIENT_REPORTABLE: Final = frozenset(
    {
        SPOOF,
        DESKTOP,
        CAMERA_FAIL,
        LOW_LIGHT,
        MODEL_LOAD_FAILED,
        FACE_SCAN_ERROR,
        DOCUMENT_SCAN_ERROR,
        SESSION_LOAD_FAILED,
    }
)


def lookup(code: int) -> ErrorCode:
    """The catalogue row of ``code`` (legacy aliases resolved); ``KeyError`` if unknown."""
    return CATALOGUE[LEGACY_ALIASES.get(code, code)]


def canonical(code: int) -> int:
    """Resolve a legacy alias (-13 -> -8); unknown codes raise :class:`UnknownErrorCode`."""
    resolved = LEGACY_ALIASES.get(code, code)
    if resolved not in CATALOGUE:
        raise UnknownErrorCode(code)
    return resolved


def describe(codes: Iterable[int]) -> list[dict[str, object]]:
    """The ``errors`` array of payloads: one object per code, from the catalogue."""
    out: list[dict[str, object]] = []
    for code in codes:
        row = lookup(code)
        out.append(
            {"code": row.code, "name": row.name, "kind": str(row.kind), "message": row.message}
        )
    return out


# --------------------------------------------------------------------------- exceptions


class BioverifyError(Exception):
    """Base of every domain error. Carries data; the API layer formats it."""

    http_status: int = 500
    default_message: str = "Internal server error"

    def __init__(
        self,
        message: str | None = None,
        *,
        codes: Sequence[int] = (),
        session_id: str | None = None,
        retry_after: int | None = None,
    ) -> None:
        self.message = message or self.default_message
        self.codes = tuple(codes)
        self.session_id = session_id
        self.retry_after = retry_after
        super().__init__(self.message)


class BadRequest(BioverifyError):
    http_status = 400
    default_message = "Bad request"


class UnknownErrorCode(BadRequest):
    def __init__(self, code: int) -> None:
        super().__init__(f"Unknown error code {code}: allowed codes are listed at /docs")
        self.code = code


class Unauthorized(BioverifyError):
    http_status = 401
    default_message = "Invalid credentials"


class Forbidden(BioverifyError):
    http_status = 403
    default_message = "Forbidden"


class NotFound(BioverifyError):
    http_status = 404
    default_message = "Not found"


class Conflict(BioverifyError):
    http_status = 409
    default_message = "Conflict"


class Gone(BioverifyError):
    http_status = 410
    default_message = "Session expired"


class PayloadTooLarge(BioverifyError):
    http_status = 413
    default_message = "Request body too large"


class SessionOutcomeError(BioverifyError):
    """A capture ended the session with a biometric outcome (SPOOF, -9, -10, -11)."""

    http_status = 422
    default_message = "The capture ended the session"


class TooManyRequests(BioverifyError):
    http_status = 429
    default_message = "Too many requests"


class ServiceUnavailable(BioverifyError):
    http_status = 503
    default_message = "Service unavailable, try again shortly"


class InternalError(BioverifyError):
    http_status = 500
    default_message = "Internal server error"


class NotOffered(BioverifyError):
    """A PrivateID route this server deliberately does not offer (the Age API)."""

    http_status = 501
    default_message = "This route is not offered by this server"


_BY_STATUS: Final[dict[int, type[BioverifyError]]] = {
    cls.http_status: cls
    for cls in (
        BadRequest,
        Unauthorized,
        Forbidden,
        NotFound,
        Conflict,
        Gone,
        PayloadTooLarge,
        SessionOutcomeError,
        TooManyRequests,
        ServiceUnavailable,
        InternalError,
    )
}


def session_error(
    code: int, *, session_id: str | None = None, codes: Sequence[int] | None = None
) -> BioverifyError:
    """The exception a call answers with when ``code`` ended (or annotates) a session.

    The HTTP class comes from the catalogue's ``http_status``; ``codes`` defaults to
    ``[code]``.
    """
    row = lookup(code)
    cls = _BY_STATUS.get(row.http_status, BioverifyError)
    return cls(
        row.message, codes=list(codes) if codes is not None else [row.code], session_id=session_id
    )


__all__ = [
    "CATALOGUE",
    "CLIENT_REPORTABLE",
    "LEGACY_ALIASES",
    "BadRequest",
    "BioverifyError",
    "Conflict",
    "ErrorCode",
    "Forbidden",
    "Gone",
    "InternalError",
    "Kind",
    "NotFound",
    "NotOffered",
    "PayloadTooLarge",
    "RetryClass",
    "ServiceUnavailable",
    "SessionOutcomeError",
    "TooManyRequests",
    "Unauthorized",
    "UnknownErrorCode",
    "canonical",
    "describe",
    "lookup",
    "session_error",
]
