"""Error classification: derived from the catalogue, the HTTP status only when no code applies."""

from __future__ import annotations

import httpx
import pytest

from bioverify import errors as catalogue
from bioverify_client import (
    BioverifyError,
    PermanentError,
    TransientError,
    WaitTimeout,
)
from bioverify_client._core import error_from_response, transport_error
from bioverify_client.errors import error_class


def envelope(
    status: int, codes: list[int], message: str = "m", headers: dict[str, str] | None = None
) -> httpx.Response:
    return httpx.Response(
        status,
        headers=headers or {"x-request-id": "rid-1"},
        json={"status": "error", "message": message, "errorCodes": codes, "requestId": "rid-1"},
    )


@pytest.mark.parametrize("code", sorted(catalogue.CATALOGUE))
def test_every_catalogue_code_decides_the_class_and_remedy(code: int) -> None:
    row = catalogue.CATALOGUE[code]
    # The same code under any status: the code's retry class wins.
    for status in (400, 409, 410, 422, 503):
        error = error_from_response(envelope(status, [code]))
        expected = PermanentError if row.is_permanent else TransientError
        assert type(error) is expected
        assert error.retry_class == row.retry
        assert error.remedy == row.remedy
        assert error.error_codes == (code,)
        assert error.status == status


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (400, PermanentError),
        (401, PermanentError),
        (403, PermanentError),
        (404, PermanentError),
        (409, PermanentError),
        (413, PermanentError),
        (429, TransientError),
        (500, TransientError),
        (502, TransientError),
        (503, TransientError),
        (504, TransientError),
    ],
)
def test_without_codes_the_status_decides(status: int, expected: type[BioverifyError]) -> None:
    error = error_from_response(envelope(status, []))
    assert type(error) is expected
    assert error.remedy is None
    assert error.code is None


def test_first_fatal_code_decides_over_diagnostics() -> None:
    # A session that recorded -22 (transient diagnostic) and then -9 (permanent fatal).
    error = error_from_response(envelope(409, [-22, -9]))
    assert isinstance(error, PermanentError)
    assert error.code is not None and error.code.name == "FACE_NOT_MATCH"


def test_unknown_codes_fall_back_to_the_status() -> None:
    assert error_class(503, [-999]) is TransientError
    assert error_class(400, [-999]) is PermanentError


def test_envelope_fields_and_retry_after_are_carried() -> None:
    response = envelope(429, [], "slow down", {"retry-after": "7", "x-request-id": "rid-1"})
    error = error_from_response(response)
    assert isinstance(error, TransientError)
    assert error.request_retryable
    assert (error.message, error.request_id, error.retry_after) == ("slow down", "rid-1", 7.0)


def test_session_level_transient_is_not_request_retryable() -> None:
    error = error_from_response(envelope(410, [catalogue.SESSION_EXPIRED]))
    assert isinstance(error, TransientError)
    assert not error.request_retryable  # repeating the call cannot un-expire the session


def test_non_json_error_bodies_still_classify() -> None:
    error = error_from_response(httpx.Response(502, text="<html>Bad gateway</html>"))
    assert isinstance(error, TransientError)
    assert error.message == "HTTP 502"
    assert error.error_codes == ()


def test_network_failures_are_transient_and_chained() -> None:
    cause = httpx.ConnectError("refused")
    error = transport_error(cause)
    assert isinstance(error, TransientError) and error.status is None
    assert error.__cause__ is cause
    assert isinstance(transport_error(httpx.ReadTimeout("slow")), TransientError)


def test_sdk_errors_are_not_server_domain_errors() -> None:
    # A server route calling another bioverify must not answer with the upstream status.
    assert not issubclass(BioverifyError, catalogue.BioverifyError)
    assert issubclass(WaitTimeout, TransientError) and issubclass(WaitTimeout, TimeoutError)
