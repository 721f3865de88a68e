"""Typed views of the API's answers, and the outcome of a finished session."""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bioverify_client import catalogue
from bioverify_client.errors import deciding_code

FINISHED = frozenset({"SUCCESS", "FAILED"})


def parse_time(value: object) -> dt.datetime | None:
    """An RFC 3339 string from the API as an aware UTC datetime (``None`` stays ``None``)."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise TypeError(f"expected an RFC 3339 string, got {type(value).__name__}")
    parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def parse_timestamp(value: object) -> dt.datetime | None:
    """A payload ``timestamp``: RFC 3339 (API.md), or epoch milliseconds (older servers)."""
    if isinstance(value, int | str) and not isinstance(value, bool) and str(value).isdigit():
        return dt.datetime.fromtimestamp(int(value) / 1000, dt.UTC)
    return parse_time(value)


def _opt_str(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    return None if value is None else str(value)


def _b64(value: object) -> bytes:
    return base64.b64decode(str(value or ""))


def _obj(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = data.get(key)
    return dict(value) if isinstance(value, Mapping) else {}


def _opt_float(data: Mapping[str, Any], key: str) -> float | None:
    value = data.get(key)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


@dataclass(frozen=True, slots=True)
class RiskEvaluation:
    """``riskEvaluation``: the service's risk summary of a finished session.

    A FAILED session is never ``ALLOW``; automation or a virtual camera raises the
    level to at least ``MEDIUM``/``REVIEW`` (API.md section 5).
    """

    score: float
    level: str
    recommendation: str
    flags: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RiskEvaluation:
        return cls(
            score=_opt_float(data, "score") or 0.0,
            level=str(data.get("level", "")),
            recommendation=str(data.get("recommendation", "")),
            flags=tuple(str(f) for f in data.get("flags") or ()),
        )


@dataclass(frozen=True, slots=True)
class IdentityInformation:
    """``identityInformation``: what a document session read (document sessions only).

    ``verification_date`` stays the epoch-milliseconds string the API sends (as
    PrivateID documents it); ``checks`` holds ``checkDigits``, ``expired`` and
    ``portraitMatch``. ``raw`` keeps every field (AAMVA ones included).
    """

    document_type: str | None
    issuing_country: str | None
    document_number: str | None
    first_name: str | None
    last_name: str | None
    date_of_birth: str | None
    expiration_date: str | None
    sex: str | None
    nationality: str | None
    verification_date: str | None
    portrait_match_score: float | None
    checks: Mapping[str, Any] = field(default_factory=dict)
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> IdentityInformation:
        return cls(
            document_type=_opt_str(data, "documentType"),
            issuing_country=_opt_str(data, "issuingCountry"),
            document_number=_opt_str(data, "documentNumber"),
            first_name=_opt_str(data, "firstName"),
            last_name=_opt_str(data, "lastName"),
            date_of_birth=_opt_str(data, "dateOfBirth"),
            expiration_date=_opt_str(data, "expirationDate"),
            sex=_opt_str(data, "sex"),
            nationality=_opt_str(data, "nationality"),
            verification_date=_opt_str(data, "verificationDate"),
            portrait_match_score=_opt_float(data, "portraitMatchScore"),
            checks=_obj(data, "checks"),
            raw=dict(data),
        )


@dataclass(frozen=True, slots=True)
class ErrorRecord:
    """One code a session recorded (``errors[]`` of the session view and webhook)."""

    code: int
    name: str
    kind: str
    message: str
    at: dt.datetime | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ErrorRecord:
        return cls(
            code=int(data["code"]),
            name=str(data.get("name", "")),
            kind=str(data.get("kind", "")),
            message=str(data.get("message", "")),
            at=parse_time(data.get("at")),
        )


@dataclass(frozen=True, slots=True)
class Session:
    """A verification session, from the create answer, the session view or a webhook.

    ``launch_url`` is only known from :meth:`Client.create_session` (it carries the
    capture token, which the service never shows again). ``raw`` keeps the JSON as
    received, so fields a newer server adds are not lost. Webhook-only fields
    (``guid``, ``device_info``, ``indicators``, ``risk_evaluation``,
    ``identity_information``, ``audit``, ``timestamp``) are empty/``None`` where the
    answer does not carry them. After a SIGN-IN or a VERIFY without ``customerId``,
    ``customer_id``, ``puid`` and ``guid`` are the identified customer's.
    """

    session_id: str
    status: str
    type: str
    launch_url: str | None = None
    expires_at: dt.datetime | None = None
    customer_id: str | None = None
    puid: str | None = None
    transaction_id: str | None = None
    created_at: dt.datetime | None = None
    completed_at: dt.datetime | None = None
    attempts_left: int | None = None
    error_codes: tuple[int, ...] = ()
    errors: tuple[ErrorRecord, ...] = ()
    message: str | None = None
    result: Mapping[str, Any] = field(default_factory=dict)
    guid: str | None = None
    requirements: tuple[str, ...] = ()
    device_info: Mapping[str, Any] = field(default_factory=dict)
    indicators: Mapping[str, Any] = field(default_factory=dict)
    risk_evaluation: RiskEvaluation | None = None
    identity_information: IdentityInformation | None = None
    audit: Mapping[str, Any] = field(default_factory=dict)
    event: str | None = None
    timestamp: dt.datetime | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Session:
        """Build from any of the API's session shapes (create answer, view, webhook)."""
        attempts = data.get("attemptsLeft")
        return cls(
            session_id=str(data["sessionId"]),
            status=str(data.get("status", "")),
            type=str(data.get("type", "")),
            launch_url=_opt_str(data, "launchUrl"),
            expires_at=parse_time(data.get("expiresAt")),
            customer_id=_opt_str(data, "customerId"),
            puid=_opt_str(data, "puid"),
            transaction_id=_opt_str(data, "transactionID"),
            created_at=parse_time(data.get("createdAt")),
            completed_at=parse_time(data.get("completedAt")),
            attempts_left=None if attempts is None else int(attempts),
            error_codes=tuple(int(c) for c in data.get("errorCodes") or ()),
            errors=tuple(ErrorRecord.from_json(e) for e in data.get("errors") or ()),
            message=_opt_str(data, "message"),
            result=_obj(data, "result"),
            guid=_opt_str(data, "guid"),
            requirements=tuple(str(r) for r in data.get("requirements") or ()),
            device_info=_obj(data, "deviceInfo"),
            indicators=_obj(data, "indicators"),
            risk_evaluation=(
                RiskEvaluation.from_json(data["riskEvaluation"])
                if isinstance(data.get("riskEvaluation"), Mapping)
                else None
            ),
            identity_information=(
                IdentityInformation.from_json(data["identityInformation"])
                if isinstance(data.get("identityInformation"), Mapping)
                else None
            ),
            audit=_obj(data, "audit"),
            event=_opt_str(data, "event"),
            timestamp=parse_timestamp(data.get("timestamp")),
            raw=dict(data),
        )

    @property
    def is_finished(self) -> bool:
        """SUCCESS or FAILED: the outcome is final."""
        return self.status in FINISHED

    def outcome(self) -> Outcome | None:
        """:class:`Succeeded` or :class:`Failed` once finished; ``None`` while open."""
        if self.status == "SUCCESS":
            return Succeeded(self)
        if self.status != "FAILED":
            return None
        row = deciding_code(self.error_codes)
        if row is None:
            # A FAILED session always records its code; a newer server's unknown code
            # is treated as permanent (fail closed: do not loop on it).
            code = self.error_codes[-1] if self.error_codes else 0
            return Failed(
                code=code,
                name="UNKNOWN",
                retry_class=catalogue.RetryClass.PERMANENT,
                remedy=None,
                session=self,
            )
        return Failed(
            code=row.code, name=row.name, retry_class=row.retry, remedy=row.remedy, session=self
        )


@dataclass(frozen=True, slots=True)
class Succeeded:
    """The session ended with SUCCESS."""

    session: Session

    @property
    def should_retry_with_new_session(self) -> bool:
        return False


@dataclass(frozen=True, slots=True)
class Failed:
    """The session ended FAILED with ``code``; ``retry_class`` says if a new session can help."""

    code: int
    name: str
    retry_class: catalogue.RetryClass
    remedy: str | None
    session: Session

    @property
    def should_retry_with_new_session(self) -> bool:
        """True for transient codes (-7, -8, -10, -11, ...): show ``remedy``, open a new session."""
        return self.retry_class is catalogue.RetryClass.TRANSIENT


Outcome = Succeeded | Failed


@dataclass(frozen=True, slots=True)
class Customer:
    """Enrolment status of one customer (never template data)."""

    customer_id: str
    enrolled: bool
    puid: str | None
    enrolled_at: dt.datetime | None
    device_bound: bool
    model_version: str | None
    guid: str | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Customer:
        return cls(
            customer_id=str(data["customerId"]),
            enrolled=bool(data.get("enrolled")),
            puid=_opt_str(data, "puid"),
            enrolled_at=parse_time(data.get("enrolledAt")),
            device_bound=bool(data.get("deviceBound")),
            model_version=_opt_str(data, "modelVersion"),
            guid=_opt_str(data, "guid"),
        )


@dataclass(frozen=True, slots=True)
class Delivery:
    """One webhook delivery attempt."""

    webhook_id: str
    event: str | None
    attempt: int
    at: dt.datetime | None
    http_status: int | None
    error: str | None
    latency_ms: int
    next_retry_at: dt.datetime | None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Delivery:
        status = data.get("httpStatus")
        return cls(
            webhook_id=str(data["webhookId"]),
            event=_opt_str(data, "event"),
            attempt=int(data.get("attempt", 0)),
            at=parse_time(data.get("at")),
            http_status=None if status is None else int(status),
            error=_opt_str(data, "error"),
            latency_ms=int(data.get("latencyMs", 0)),
            next_retry_at=parse_time(data.get("nextRetryAt")),
        )


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """The latest signed checkpoint of the audit log (a C2SP signed note)."""

    tree_size: int
    root_hash: bytes
    note: str
    origin: str
    key_name: str

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Checkpoint:
        return cls(
            tree_size=int(data["treeSize"]),
            root_hash=_b64(data.get("rootHash")),
            note=str(data["checkpoint"]),
            origin=str(data["origin"]),
            key_name=str(data["keyName"]),
        )


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One of this client's audit entries: its index, leaf hash and JSON body."""

    index: int
    leaf_hash: bytes
    entry: Mapping[str, Any]

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AuditEntry:
        return cls(
            index=int(data["index"]),
            leaf_hash=_b64(data.get("leafHash")),
            entry=dict(data.get("entry") or {}),
        )


@dataclass(frozen=True, slots=True)
class InclusionProof:
    """RFC 9162 inclusion proof of entry ``index`` in the tree of ``tree_size`` entries."""

    index: int
    tree_size: int
    leaf_hash: bytes
    proof: tuple[bytes, ...]

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> InclusionProof:
        return cls(
            index=int(data["index"]),
            tree_size=int(data["treeSize"]),
            leaf_hash=_b64(data.get("leafHash")),
            proof=tuple(_b64(p) for p in data.get("inclusionProof") or ()),
        )


@dataclass(frozen=True, slots=True)
class ConsistencyProof:
    """RFC 9162 consistency proof from tree size ``first`` to ``second``."""

    first: int
    second: int
    proof: tuple[bytes, ...]

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ConsistencyProof:
        return cls(
            first=int(data["first"]),
            second=int(data["second"]),
            proof=tuple(_b64(p) for p in data.get("consistencyProof") or ()),
        )


@dataclass(frozen=True, slots=True)
class PublicKey:
    """The RSA key capture clients encrypt to (``GET /public-key``)."""

    kid: str
    alg: str
    public_key_pem: str

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PublicKey:
        return cls(
            kid=str(data["kid"]), alg=str(data["alg"]), public_key_pem=str(data["publicKey"])
        )


__all__ = [
    "AuditEntry",
    "Checkpoint",
    "ConsistencyProof",
    "Customer",
    "Delivery",
    "ErrorRecord",
    "Failed",
    "IdentityInformation",
    "InclusionProof",
    "Outcome",
    "PublicKey",
    "RiskEvaluation",
    "Session",
    "Succeeded",
    "parse_time",
    "parse_timestamp",
]
