"""The catalogue is the one source: complete, consistent, and the docs page matches it."""

from __future__ import annotations

from pathlib import Path

import pytest

from bioverify import errors
from bioverify.errors_doc import render

SEED_CODES = {
    1: "fatal",
    -5: "fatal",
    -7: "fatal",
    -8: "fatal",
    -9: "fatal",
    -10: "fatal",
    -11: "fatal",
    -14: "fatal",
    -15: "fatal",
    -16: "fatal",
    -20: "diagnostic",
    -22: "diagnostic",
    -23: "diagnostic",
    -24: "diagnostic",
}


def test_catalogue_holds_every_seed_code_with_its_kind() -> None:
    assert {code: str(row.kind) for code, row in errors.CATALOGUE.items()} == SEED_CODES


def test_every_row_has_message_remedy_and_a_real_http_status() -> None:
    for row in errors.CATALOGUE.values():
        assert row.message and row.remedy and row.raised_by
        assert row.http_status in {200, 400, 401, 403, 409, 410, 422}


def test_legacy_alias_resolves_but_is_not_a_code_of_its_own() -> None:
    assert errors.canonical(-13) == -8
    assert errors.lookup(-13).name == "SESSION_EXPIRED"
    assert -13 not in errors.CATALOGUE


def test_unknown_code_is_a_bad_request() -> None:
    with pytest.raises(errors.UnknownErrorCode) as info:
        errors.canonical(-99)
    assert info.value.http_status == 400
    assert "-99" in info.value.message


@pytest.mark.parametrize(
    ("code", "status"),
    [(1, 422), (-9, 422), (-14, 401), (-15, 409), (-16, 403), (-5, 403), (-8, 410)],
)
def test_session_error_takes_its_http_class_from_the_catalogue(code: int, status: int) -> None:
    exc = errors.session_error(code, session_id="s")
    assert exc.http_status == status
    assert exc.codes == (code,)
    assert exc.session_id == "s"


def test_describe_builds_the_webhook_errors_array() -> None:
    assert errors.describe([-22, -9]) == [
        {
            "code": -22,
            "name": "FACE_SCAN_ERROR",
            "kind": "diagnostic",
            "message": errors.CATALOGUE[-22].message,
        },
        {
            "code": -9,
            "name": "FACE_NOT_MATCH",
            "kind": "fatal",
            "message": errors.CATALOGUE[-9].message,
        },
    ]


def test_docs_errors_page_is_generated_from_the_catalogue() -> None:
    page = Path(__file__).resolve().parents[3] / "docs" / "errors.md"
    assert page.read_text() == render(), (
        "docs/errors.md is stale: run `python -m bioverify.errors_doc > docs/errors.md`"
    )


def test_exceptions_carry_data_not_formatted_strings() -> None:
    exc = errors.TooManyRequests(retry_after=7)
    assert exc.retry_after == 7
    assert exc.http_status == 429
    assert isinstance(exc, errors.BioverifyError)
