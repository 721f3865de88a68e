"""The audit log's controlled vocabulary and the shape of one entry.

Every event is an ``area:subject:action`` tag. Each code of
:data:`bioverify.errors.CATALOGUE` has its own ``session:code:<name>`` tag (a test
checks the two stay in step). Entries hold no biometric data, no secrets and no
raw identifiers: customer ids and device fingerprints arrive already keyed-hashed
(``subject_hashes``), and :func:`build_entry` refuses detail keys that name
sensitive material and values that are long enough to smuggle it.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
from collections.abc import Mapping
from typing import Any, Final

import orjson
import rfc8785

from bioverify import errors

#: Schema version of an entry body.
ENTRY_VERSION: Final = 1
MAX_VALUE_LENGTH: Final = 256
#: JSON numbers outside this range lose precision in other languages (RFC 8785 section 3.2.2.3).
_MAX_SAFE_INT: Final = 2**53 - 1

_KEY_RE: Final = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,63}")
_HASH_RE: Final = re.compile(r"[A-Za-z0-9+/=_:-]{16,128}")
#: Detail keys whose name suggests sensitive content (compared lower-case, without ``_.-``).
DENIED_KEY_PARTS: Final = (
    "token",
    "secret",
    "password",
    "passwd",
    "apikey",
    "privatekey",
    "credential",
    "template",
    "image",
    "frame",
    "embedding",
    "portrait",
    "biometric",
    "pixel",
    "customerid",
    "fingerprint",
    "deviceinfo",
    "email",
    "phone",
)


class AuditEntryError(ValueError):
    """An entry was built wrongly by our own code (programmer misuse)."""


class AuditEvent(enum.StrEnum):
    """Every event the audit log records."""

    SESSION_CREATED = "session:state:created"
    SESSION_LOADED = "session:state:loaded"
    SESSION_ENDED = "session:state:ended"

    CODE_SPOOF = "session:code:spoof"
    CODE_DESKTOP = "session:code:desktop"
    CODE_CAMERA_FAIL = "session:code:camera_fail"
    CODE_SESSION_EXPIRED = "session:code:session_expired"
    CODE_FACE_NOT_MATCH = "session:code:face_not_match"
    CODE_LOW_LIGHT = "session:code:low_light"
    CODE_MULTIPLE_FACES = "session:code:multiple_faces"
    CODE_UNAUTHORIZED_CALLBACK = "session:code:unauthorized_callback"
    CODE_TOKEN_ALREADY_USED = "session:code:token_already_used"  # noqa: S105 (event tag)
    CODE_DEVICE_MISMATCH = "session:code:device_mismatch"
    CODE_MODEL_LOAD_FAILED = "session:code:model_load_failed"
    CODE_FACE_SCAN_ERROR = "session:code:face_scan_error"
    CODE_DOCUMENT_SCAN_ERROR = "session:code:document_scan_error"
    CODE_SESSION_LOAD_FAILED = "session:code:session_load_failed"

    AUTH_REJECTED = "auth:credentials:rejected"
    AUTH_THROTTLED = "auth:credentials:throttled"
    AUTH_REQUEST_REPLAYED = "auth:request:replayed"
    CAPTURE_NONCE_REPLAYED = "capture:nonce:replayed"
    ENVELOPE_REJECTED = "crypto:envelope:rejected"
    KEY_ROTATED = "crypto:key:rotated"

    WEBHOOK_DELIVERED = "webhook:delivery:succeeded"
    WEBHOOK_DEAD_LETTERED = "webhook:delivery:dead_lettered"
    WEBHOOK_REDELIVERY_REQUESTED = "webhook:delivery:requeued"

    CUSTOMER_ENROLLED = "customer:template:enrolled"
    CUSTOMER_ERASED = "customer:template:erased"

    CLIENT_CREATED = "client:credentials:created"
    CLIENT_REVOKED = "client:credentials:revoked"

    ALERT_RAISED = "alert:rule:raised"
    SERVER_ERROR = "server:request:failed"


def code_event(code: int) -> AuditEvent:
    """The ``session:code:<name>`` event of a catalogue code (legacy aliases resolved)."""
    row = errors.lookup(code)
    return AuditEvent(f"session:code:{row.name.lower()}")


def format_time(at: dt.datetime) -> str:
    """RFC 3339 UTC with microseconds, the one time form of entry bodies."""
    if at.tzinfo is None:
        raise AuditEntryError("audit time must be timezone-aware")
    return at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _check_key(key: object, where: str) -> str:
    if not isinstance(key, str) or not _KEY_RE.fullmatch(key):
        raise AuditEntryError(f"{where} key {key!r} must match {_KEY_RE.pattern}")
    folded = key.lower().replace("_", "").replace("-", "").replace(".", "")
    if any(part in folded for part in DENIED_KEY_PARTS):
        raise AuditEntryError(f"{where} key {key!r} names data the audit log must not hold")
    return key


def _check_value(key: str, value: object) -> str | int | bool | None:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        if abs(value) > _MAX_SAFE_INT:
            raise AuditEntryError(f"detail {key!r} is outside the JSON-safe integer range")
        return value
    if isinstance(value, str):
        if len(value) > MAX_VALUE_LENGTH:
            raise AuditEntryError(f"detail {key!r} is longer than {MAX_VALUE_LENGTH} characters")
        return value
    raise AuditEntryError(f"detail {key!r} must be a string, integer, boolean or null")


def build_entry(
    event: AuditEvent,
    *,
    client_id: str | None,
    session_id: str | None = None,
    code: int | None = None,
    subject_hashes: Mapping[str, str] | None = None,
    details: Mapping[str, str | int | bool | None] | None = None,
    at: dt.datetime,
) -> dict[str, Any]:
    """The JSON object of one audit entry (the log adds its ``index`` on append).

    ``subject_hashes`` maps a role (``customer``, ``device``) to a keyed hash made
    by the key ring, never a raw identifier. Raises :class:`AuditEntryError`.
    """
    try:
        tag = AuditEvent(event)
    except ValueError as exc:
        raise AuditEntryError(f"unknown audit event {event!r}") from exc
    entry: dict[str, Any] = {
        "v": ENTRY_VERSION,
        "event": str(tag),
        "at": format_time(at),
        "clientId": client_id,
    }
    for name, value in (("clientId", client_id), ("sessionId", session_id)):
        if value is not None and (not isinstance(value, str) or len(value) > 128):
            raise AuditEntryError(f"{name} must be a string of at most 128 characters")
    if session_id is not None:
        entry["sessionId"] = session_id
    if code is not None:
        if isinstance(code, bool) or not isinstance(code, int):
            raise AuditEntryError("code must be an integer")
        try:
            entry["code"] = errors.canonical(code)
        except errors.UnknownErrorCode as exc:
            raise AuditEntryError(f"code {code} is not in the catalogue") from exc
    subjects: dict[str, str] = {}
    for role, hashed in (subject_hashes or {}).items():
        if not isinstance(role, str) or not _KEY_RE.fullmatch(role):
            raise AuditEntryError(f"subject role {role!r} must match {_KEY_RE.pattern}")
        if not isinstance(hashed, str) or not _HASH_RE.fullmatch(hashed):
            raise AuditEntryError(f"subject {role!r} must be a keyed hash, not a raw value")
        subjects[role] = hashed
    if subjects:
        entry["subjects"] = subjects
    checked = {_check_key(k, "detail"): _check_value(k, v) for k, v in (details or {}).items()}
    if checked:
        entry["details"] = checked
    return entry


def _plain(obj: Mapping[str, Any]) -> bool:
    """ASCII keys; values strings, JSON-safe integers, booleans, null or such objects."""
    for key, value in obj.items():
        if type(key) is not str or not key.isascii():
            return False
        kind = type(value)
        if kind is dict:
            if not _plain(value):
                return False
        elif kind is int:
            if not -_MAX_SAFE_INT <= value <= _MAX_SAFE_INT:
                return False
        elif not (kind is str or kind is bool or value is None):
            return False
    return True


def canonical_bytes(entry: Mapping[str, Any]) -> bytes:
    """RFC 8785 canonical JSON of an entry: the bytes its leaf hash covers.

    Entries as :func:`build_entry` makes them (ASCII keys, no floats) encode with
    orjson, whose sorted output is RFC 8785 for exactly those (a test checks it
    against ``rfc8785``); anything else goes to ``rfc8785``, 20x slower.
    """
    obj = dict(entry)
    if _plain(obj):
        return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)
    try:
        return bytes(rfc8785.dumps(obj))
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise AuditEntryError("audit entry is not canonicalizable JSON") from exc


__all__ = [
    "DENIED_KEY_PARTS",
    "ENTRY_VERSION",
    "MAX_VALUE_LENGTH",
    "AuditEntryError",
    "AuditEvent",
    "build_entry",
    "canonical_bytes",
    "code_event",
    "format_time",
]
