"""How a session reads on the wire: the integrator view and the webhook payload."""

from __future__ import annotations

import datetime as dt
from typing import Any

from bioverify import errors
from bioverify.domain.session import CodeRecord, SessionState, Status
from bioverify.sessions.models import SessionRow


def rfc3339(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def state_of(row: SessionRow) -> SessionState:
    codes = tuple(CodeRecord(int(item["code"]), dt.datetime.fromisoformat(item["at"]))
                  for item in row.codes)
    return SessionState(status=Status(row.status), attempts_left=row.attempts_left,
                        codes=codes, completed_at=row.completed_at)


def store_state(row: SessionRow, state: SessionState) -> None:
    row.status = str(state.status)
    row.attempts_left = state.attempts_left
    row.codes = [{"code": rec.code, "at": rec.at.astimezone(dt.UTC).isoformat()}
                 for rec in state.codes]
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


def integrator_view(row: SessionRow) -> dict[str, Any]:
    """``GET /v2/verification-session/{sessionId}``."""
    return {
        "sessionId": row.id,
        "type": row.type,
        "status": row.status,
        "customerId": row.customer_id,
        "puid": row.puid,
        "transactionID": row.transaction_id,
        "productGroupId": row.product_group_id,
        "uuid": row.external_uuid,
        "createdAt": rfc3339(row.created_at),
        "expiresAt": rfc3339(row.expires_at),
        "completedAt": rfc3339(row.completed_at),
        "attemptsLeft": row.attempts_left,
        "errorCodes": [int(item["code"]) for item in row.codes],
        "errors": errors_of(row),
        "message": message_of(row),
        "result": row.result or {},
    }


__all__ = ["errors_of", "integrator_view", "message_of", "rfc3339", "state_of", "store_state"]
