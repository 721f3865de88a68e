"""Typed sessions and outcomes: parsed from the wire, classified from the catalogue."""

from __future__ import annotations

import datetime as dt

import pytest

from bioverify import errors as catalogue
from bioverify_client import ErrorRecord, Failed, Session, Succeeded


def wire(status: str, codes: list[int]) -> dict[str, object]:
    return {
        "sessionId": "s-1",
        "type": "VERIFY",
        "status": status,
        "customerId": "u-1",
        "puid": "p-1",
        "transactionID": "tx",
        "createdAt": "2025-03-01T10:00:00.000Z",
        "expiresAt": "2025-03-01T10:15:00.000Z",
        "completedAt": None,
        "attemptsLeft": 2,
        "errorCodes": codes,
        "errors": [
            {**catalogue.describe([c])[0], "at": "2025-03-01T10:01:00.000Z"}
            for c in codes
            if c in catalogue.CATALOGUE
        ],
        "message": "m",
        "result": {"matchScore": 0.4},
        "futureField": 1,
    }


def test_session_view_parses_into_typed_fields() -> None:
    session = Session.from_json(wire("IN_PROGRESS", [-22]))
    assert session.expires_at == dt.datetime(2025, 3, 1, 10, 15, tzinfo=dt.UTC)
    assert (session.customer_id, session.puid, session.transaction_id) == ("u-1", "p-1", "tx")
    assert session.attempts_left == 2
    assert session.errors == (
        ErrorRecord(
            -22,
            "FACE_SCAN_ERROR",
            "diagnostic",
            catalogue.lookup(-22).message,
            dt.datetime(2025, 3, 1, 10, 1, tzinfo=dt.UTC),
        ),
    )
    assert session.raw["futureField"] == 1  # newer fields are kept, not dropped
    assert not session.is_finished
    assert session.outcome() is None


def test_success_outcome() -> None:
    outcome = Session.from_json(wire("SUCCESS", [-22])).outcome()
    assert isinstance(outcome, Succeeded)
    assert not outcome.should_retry_with_new_session


@pytest.mark.parametrize(
    "code", sorted(c for c, row in catalogue.CATALOGUE.items() if row.is_fatal)
)
def test_failed_outcome_is_classified_by_the_fatal_code(code: int) -> None:
    row = catalogue.CATALOGUE[code]
    # Diagnostics recorded earlier never decide the outcome.
    outcome = Session.from_json(wire("FAILED", [-22, code])).outcome()
    assert isinstance(outcome, Failed)
    assert (outcome.code, outcome.name, outcome.retry_class) == (code, row.name, row.retry)
    assert outcome.remedy == row.remedy
    assert outcome.should_retry_with_new_session is (not row.is_permanent)


def test_attempts_run_out_fails_on_the_diagnostic() -> None:
    outcome = Session.from_json(wire("FAILED", [-22])).outcome()
    assert isinstance(outcome, Failed) and outcome.name == "FACE_SCAN_ERROR"
    assert outcome.should_retry_with_new_session


def test_unknown_code_from_a_newer_server_fails_closed() -> None:
    outcome = Session.from_json(wire("FAILED", [-99])).outcome()
    assert isinstance(outcome, Failed)
    assert outcome.retry_class == catalogue.RetryClass.PERMANENT


def test_webhook_payload_reads_as_a_session() -> None:
    payload = {
        "sessionId": "s-1",
        "type": "ENROLL",
        "status": "FAILED",
        "errorCodes": [-7],
        "errors": catalogue.describe([-7]),
        "completedAt": "2025-03-01T10:02:00Z",
    }
    outcome = Session.from_json(payload).outcome()
    assert isinstance(outcome, Failed) and outcome.name == "CAMERA_FAIL"


def test_round_two_webhook_fields_are_typed_and_extra_fields_kept() -> None:
    payload = {
        "sessionId": "s-2",
        "type": "VERIFY",
        "status": "SUCCESS",
        "customerId": "jane doe+1@example.com",
        "puid": "p-1",
        "guid": "g-1",
        "deviceInfo": {"osName": "Android", "screenDimensions": {"width": 412, "height": 915}},
        "indicators": {"headless": {"webdriver": False}},
        "riskEvaluation": {"score": 0, "level": "LOW", "recommendation": "ALLOW", "flags": []},
        "identityInformation": {
            "documentType": "passport",
            "lastName": "Doe",
            "verificationDate": "1743795933839",
            "portraitMatchScore": 0.71,
            "checks": {"checkDigits": True, "expired": False},
            "aamvaField": "kept",
        },
        "audit": {"index": 3, "checkpoint": "…", "inclusionProof": []},
        "timestamp": "2026-12-01T21:15:58.852Z",
        "fieldFromANewerServer": 1,
    }
    session = Session.from_json(payload)
    assert session.guid == "g-1" and session.customer_id == "jane doe+1@example.com"
    assert session.device_info["osName"] == "Android"
    assert session.indicators["headless"] == {"webdriver": False}
    assert session.risk_evaluation is not None
    assert session.risk_evaluation.recommendation == "ALLOW"
    identity = session.identity_information
    assert identity is not None and identity.last_name == "Doe"
    assert identity.verification_date == "1743795933839" and identity.checks["checkDigits"]
    assert identity.raw["aamvaField"] == "kept"
    assert session.audit["index"] == 3
    assert session.timestamp == dt.datetime(2026, 12, 1, 21, 15, 58, 852000, tzinfo=dt.UTC)
    assert session.raw["fieldFromANewerServer"] == 1
    # An older server's epoch-milliseconds timestamp reads as the same instant.
    old = Session.from_json({**payload, "timestamp": "1796159758852"})
    assert old.timestamp == session.timestamp
