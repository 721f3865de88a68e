"""What the capture routes answer: the capture client never learns who matched.

The capture link is held by the end user's device: answers carry the session's
status, attempts and codes, never ``customerId``, ``puid``, ``guid`` or what a
document said (that would make the link an identification oracle).
"""

from __future__ import annotations

from typing import Any

from bioverify import errors
from bioverify.domain import redirect
from bioverify.sessions import views
from bioverify.sessions.models import SessionRow


def portrait_aad(session_id: str) -> bytes:
    """What a kept portrait's ciphertext is bound to."""
    return f"portrait:{session_id}".encode()


def final_redirect(row: SessionRow) -> str | None:
    """The session's ``redirectURL`` with its outcome added, once it has ended."""
    state = views.state_of(row)
    if not row.redirect_url or not state.ended:
        return None
    return redirect.with_outcome(
        row.redirect_url,
        session_id=row.id,
        status=row.status,
        reason=redirect.reason_for(row.status, state.outcome_code),
    )


def status_view(row: SessionRow) -> dict[str, Any]:
    """``/events``: the session's status, attempts and codes."""
    view: dict[str, Any] = {
        "status": row.status,
        "sessionId": row.id,
        "attemptsLeft": row.attempts_left,
        "errorCodes": [int(c["code"]) for c in row.codes],
    }
    target = final_redirect(row)
    if target is not None:
        view["redirectURL"] = target
    return view


def retry_view(row: SessionRow, code: int) -> dict[str, Any]:
    """A diagnostic attempt (-22, -23) that left attempts: try again."""
    return {
        "status": row.status,
        "sessionId": row.id,
        "attemptsLeft": row.attempts_left,
        "errorCodes": [code],
        "message": errors.CATALOGUE[code].remedy,
    }


def next_view(row: SessionRow, step: str) -> dict[str, Any]:
    """The session goes on with ``step`` (``document`` after the face, or ``back``)."""
    return {"status": row.status, "sessionId": row.id, "next": step}


def success_view(row: SessionRow) -> dict[str, Any]:
    """The capture that ended the session SUCCESS."""
    answer: dict[str, Any] = {"status": row.status, "sessionId": row.id}
    if row.redirect_url:
        answer["redirectURL"] = final_redirect(row)
    return answer


__all__ = [
    "final_redirect",
    "next_view",
    "portrait_aad",
    "retry_view",
    "status_view",
    "success_view",
]
