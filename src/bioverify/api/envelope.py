"""The error envelope of API.md section 1: the only shape a non-2xx answer has."""

from __future__ import annotations

from starlette.responses import JSONResponse

from bioverify.errors import BioverifyError


def envelope(
    message: str, codes: list[int] | tuple[int, ...], request_id: str
) -> dict[str, object]:
    return {
        "status": "error",
        "message": message,
        "errorCodes": list(codes),
        "requestId": request_id,
    }


def envelope_response(
    error: BioverifyError, request_id: str, status_code: int | None = None
) -> JSONResponse:
    """The JSON response for ``error`` (with ``Retry-After`` when it carries one)."""
    headers = {"x-request-id": request_id}
    if error.retry_after is not None:
        headers["retry-after"] = str(error.retry_after)
    body = envelope(error.message, error.codes, request_id)
    if error.session_id is not None:
        body["sessionId"] = error.session_id
    return JSONResponse(body, status_code=status_code or error.http_status, headers=headers)


__all__ = ["envelope", "envelope_response"]
