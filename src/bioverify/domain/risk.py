"""``riskEvaluation``: the policy that turns a session's evidence into a recommendation.

Pure logic (API.md section 5; the policy is written out in
``docs/migrating-from-privateid.md``). Inputs: whether the session failed, its
codes, the flags of the match (``DUPLICATE_ENROLMENT``) and what the capture
client's indicators say (automation, virtual camera, browser anomalies).

Points add up to a score (0-100) that sets the level: HIGH from 70, MEDIUM from
40, LOW below. The recommendation follows the level (HIGH: DENY, MEDIUM: REVIEW,
LOW: ALLOW), except that a FAILED session is always DENY: an integrator must never
be told to let in someone whose check failed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from bioverify import errors

#: Codes that are themselves evidence of an attack: the score is at least HIGH.
SECURITY_CODES = frozenset(
    {
        errors.SPOOF,
        errors.UNAUTHORIZED_CALLBACK,
        errors.TOKEN_ALREADY_USED,
        errors.DEVICE_MISMATCH,
    }
)
#: Outcomes that may be an impostor (no match, someone else in frame).
SUSPECT_CODES = frozenset({errors.FACE_NOT_MATCH, errors.MULTIPLE_FACES})

POINTS = {
    "SECURITY": 90,
    "AUTOMATION": 40,
    "VIRTUAL_CAMERA": 40,
    "DUPLICATE_ENROLMENT": 40,
    "SUSPECT_OUTCOME": 30,
    "BROWSER_ANOMALY": 15,
}
HIGH_FROM = 70
MEDIUM_FROM = 40


@dataclass(frozen=True, slots=True)
class Evidence:
    """What the policy looks at."""

    failed: bool
    codes: Sequence[int] = ()
    automation: bool = False
    virtual_camera: bool = False
    anomalies: bool = False
    match_flags: Sequence[str] = ()


def _level(score: int) -> str:
    if score >= HIGH_FROM:
        return "HIGH"
    if score >= MEDIUM_FROM:
        return "MEDIUM"
    return "LOW"


def evaluate(evidence: Evidence) -> dict[str, Any]:
    """``{"score", "level", "recommendation", "flags"}`` for one session."""
    flags: list[str] = []
    score = 0
    codes = sorted(set(evidence.codes))
    security = [errors.lookup(c).name for c in codes if c in SECURITY_CODES]
    if security:
        flags += security
        score += POINTS["SECURITY"]
    suspect = [errors.lookup(c).name for c in codes if c in SUSPECT_CODES]
    if suspect:
        flags += suspect
        score += POINTS["SUSPECT_OUTCOME"]
    for flag, raised in (
        ("AUTOMATION", evidence.automation),
        ("VIRTUAL_CAMERA", evidence.virtual_camera),
        ("BROWSER_ANOMALY", evidence.anomalies),
    ):
        if raised:
            flags.append(flag)
            score += POINTS[flag]
    for flag in _known(evidence.match_flags):
        flags.append(flag)
        score += POINTS[flag]
    score = min(score, 100)
    level = _level(score)
    recommendation = {"HIGH": "DENY", "MEDIUM": "REVIEW", "LOW": "ALLOW"}[level]
    if evidence.failed:
        recommendation = "DENY"
        if not flags:
            # Say why it is DENY although nothing looks like an attack.
            flags.append("SESSION_FAILED")
    return {"score": score, "level": level, "recommendation": recommendation, "flags": flags}


def _known(flags: Iterable[str]) -> list[str]:
    return [f for f in dict.fromkeys(flags) if f in POINTS]


__all__ = ["HIGH_FROM", "MEDIUM_FROM", "POINTS", "Evidence", "evaluate"]
