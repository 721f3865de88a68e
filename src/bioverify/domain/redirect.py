"""The end-of-session redirect: ``redirectURL`` plus what happened (API.md section 4).

Integrations (and native webviews, which close on it) wait for ``reason`` in the
query string before they treat the result as final. The integrator's own query
parameters are kept; ours replace any of the same name.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from bioverify import errors

SUCCESS_REASON = "success"


def reason_for(status: str, outcome_code: int | None) -> str:
    """``success``, or the catalogue name of the code that decided the session."""
    if status == "SUCCESS" or outcome_code is None:
        return SUCCESS_REASON if status == "SUCCESS" else "FAILED"
    return errors.lookup(outcome_code).name


def with_outcome(url: str, *, session_id: str, status: str, reason: str) -> str:
    """``url`` with ``sessionId``, ``status`` and ``reason`` set in its query string."""
    parts = urlsplit(url)
    ours = {"sessionId": session_id, "status": status, "reason": reason}
    kept = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in ours]
    return urlunsplit(parts._replace(query=urlencode([*kept, *ours.items()])))


__all__ = ["SUCCESS_REASON", "reason_for", "with_outcome"]
