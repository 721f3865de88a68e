"""How a session reads on the wire: the integrator view and the webhook payload."""

from __future__ import annotations

import datetime as dt
from typing import Any

from bioverify import errors
from bioverify.domain import risk
from bioverify.domain.session import CodeRecord, SessionState, Status
from bioverify.sessions import device_info, indicators
from bioverify.sessions.models import SessionRow

#: Bookkeeping kept in ``row.result`` that is not part of the published ``result``.
_PRIVATE_RESULT_KEYS = frozenset({"riskEvaluation", "riskFlags", "auditIndex", "auditEntry"})


def rfc3339(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def state_of(row: SessionRow) -> SessionState:
    codes = tuple(
        CodeRecord(int(item["code"]), dt.datetime.fromisoformat(item["at"])) for item in row.codes
    )
    return SessionState(
        status=Status(row.status),
        attempts_left=row.attempts_left,
        codes=codes,
        completed_at=row.completed_at,
    )


def store_state(row: SessionRow, state: SessionState) -> None:
    row.status = str(state.status)
    row.attempts_left = state.attempts_left
    row.codes = [
        {"code": rec.code, "at": rec.at.astimezone(dt.UTC).isoformat()} for rec in state.codes
    ]
    row.completed_at = state.completed_at


def errors_of(row: SessionRow) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for item in row.codes:
        described = errors.describe([int(item["code"])])[0]
        described["at"] = rfc3339(dt.datetime.fromisoformat(item["at"]))
        out.append(described)
    return out


def message_of(row: SessionRow) -> str:
    state = state_of(row)
    if state.status is Status.SUCCESS:
        return "Verification successful"
    code = state.outcome_code
    if code is not None:
        return errors.lookup(code).message
    return "Verification in progress"


def _common(row: SessionRow) -> dict[str, Any]:
    """Fields the integrator view and the webhook payload share."""
    common: dict[str, Any] = {
        "sessionId": row.id,
        "type": row.type,
        "status": row.status,
        "customerId": row.customer_id,
        "puid": row.puid,
        "guid": row.guid,
        "transactionID": row.transaction_id,
        "productGroupId": row.product_group_id,
        "uuid": row.external_uuid,
        "message": message_of(row),
        "errorCodes": [int(item["code"]) for item in row.codes],
        "result": {k: v for k, v in (row.result or {}).items() if k not in _PRIVATE_RESULT_KEYS},
        "riskEvaluation": risk_of(row),
        "completedAt": rfc3339(row.completed_at),
    }
    device = device_info.merged(row.device_info, row.client_device_info)
    if device is not None:
        common["deviceInfo"] = device
    reported = indicators.stored_indicators(row.indicators)
    if reported is not None:
        common["indicators"] = indicators.summary(reported)
    return common


def integrator_view(row: SessionRow) -> dict[str, Any]:
    """``GET /v2/verification-session/{sessionId}``."""
    return {
        **_common(row),
        "createdAt": rfc3339(row.created_at),
        "expiresAt": rfc3339(row.expires_at),
        "attemptsLeft": row.attempts_left,
        "errors": errors_of(row),
    }


def webhook_payload(row: SessionRow, *, audit_index: int | None = None) -> dict[str, Any]:
    """The final webhook body (API.md section 5); the receipt is completed at send time."""
    payload = {
        **_common(row),
        "errors": [{k: v for k, v in e.items() if k != "at"} for e in errors_of(row)],
        # RFC 3339 UTC, which JavaScript's new Date() parses (epoch-ms strings do not).
        "timestamp": rfc3339(row.completed_at),
    }
    if audit_index is not None:
        payload["audit"] = {"index": audit_index}
    return payload


def risk_of(row: SessionRow) -> dict[str, Any]:
    """``riskEvaluation`` from the session's outcome, codes, match flags and indicators."""
    reported = indicators.stored_indicators(row.indicators)
    return risk.evaluate(
        risk.Evidence(
            failed=row.status == Status.FAILED,
            codes=[int(item["code"]) for item in row.codes],
            automation=reported is not None and indicators.automation(reported),
            virtual_camera=reported is not None and indicators.virtual_camera(reported),
            anomalies=reported is not None and indicators.anomalies(reported),
            match_flags=list((row.result or {}).get("riskFlags") or []),
        )
    )


def event_payload(
    row: SessionRow, event: str, *, code: int | None, at: dt.datetime
) -> dict[str, Any]:
    """An event webhook body (``session.loaded``, ``attempt.failed``)."""
    payload: dict[str, Any] = {
        "event": event,
        "sessionId": row.id,
        "type": row.type,
        "status": "IN_PROGRESS",
        "customerId": row.customer_id,
        "transactionID": row.transaction_id,
        "attemptsLeft": row.attempts_left,
        "timestamp": rfc3339(at),
    }
    if code is not None:
        payload["errorCodes"] = [code]
        payload["errors"] = errors.describe([code])
    return payload


__all__ = [
    "errors_of",
    "event_payload",
    "integrator_view",
    "message_of",
    "rfc3339",
    "risk_of",
    "state_of",
    "store_state",
    "webhook_payload",
]
