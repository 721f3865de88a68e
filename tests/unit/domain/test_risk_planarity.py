"""riskEvaluation weighs the active liveness planarity residual as a signal only."""

from __future__ import annotations

import pytest

from bioverify.domain import risk
from bioverify.sessions import views
from bioverify.sessions.models import SessionRow


def _risk(**evidence: object) -> dict[str, object]:
    return risk.evaluate(risk.Evidence(**evidence))  # type: ignore[arg-type]


def test_a_flat_face_movement_is_flagged_but_alone_does_not_deny_a_success() -> None:
    out = _risk(failed=False, planarity_residual=risk.PLANARITY_FLAT_IOD / 2)
    assert out["flags"] == ["FLAT_FACE"]
    assert out["score"] == risk.POINTS["FLAT_FACE"]
    # 3.8% of live bursts with a head movement raise it: alone it stays LOW.
    assert (out["level"], out["recommendation"]) == ("LOW", "ALLOW")


def test_a_flat_face_movement_with_another_signal_asks_for_review() -> None:
    out = _risk(failed=False, planarity_residual=0.0, anomalies=True)
    assert set(out["flags"]) == {"FLAT_FACE", "BROWSER_ANOMALY"}  # type: ignore[arg-type]
    assert (out["level"], out["recommendation"]) == ("MEDIUM", "REVIEW")


@pytest.mark.parametrize("residual", [None, risk.PLANARITY_FLAT_IOD, 0.05])
def test_a_head_that_moved_in_depth_or_no_measurement_raises_nothing(
    residual: float | None,
) -> None:
    out = _risk(failed=False, planarity_residual=residual)
    assert out == {"score": 0, "level": "LOW", "recommendation": "ALLOW", "flags": []}


@pytest.mark.parametrize(
    ("liveness", "flagged"),
    [
        ({"method": "active-challenge", "score": 1.0, "planarityResidual": 0.01}, True),
        ({"method": "active-challenge", "score": 1.0, "planarityResidual": 0.04}, False),
        ({"method": "active-challenge", "score": 1.0}, False),  # no head movement measured
        ({"method": "passive", "score": 0.9}, False),
    ],
)
def test_the_session_risk_reads_the_stored_planarity_residual(
    liveness: dict[str, object], flagged: bool
) -> None:
    row = SessionRow(status="SUCCESS", codes=[], indicators=None, result={"liveness": liveness})
    assert ("FLAT_FACE" in views.risk_of(row)["flags"]) is flagged
