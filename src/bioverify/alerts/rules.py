"""Alert rules: which signal, counted per what, how many within which window.

Defaults follow the error-handling specification (SPOOF and repeated CAMERA_FAIL
first); an operator may override them with a JSON file
(``BIOVERIFY_ALERT_RULES_FILE``) holding a list of rule objects.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bioverify import errors
from bioverify.config import ConfigError


class Severity(enum.StrEnum):
    WARNING = "warning"
    CRITICAL = "critical"


class Signal(enum.StrEnum):
    """What the service observes; session codes use ``code:<n>``."""

    SPOOF = f"code:{errors.SPOOF}"
    CAMERA_FAIL = f"code:{errors.CAMERA_FAIL}"
    FACE_NOT_MATCH = f"code:{errors.FACE_NOT_MATCH}"
    UNAUTHORIZED_CALLBACK = f"code:{errors.UNAUTHORIZED_CALLBACK}"
    TOKEN_ALREADY_USED = f"code:{errors.TOKEN_ALREADY_USED}"
    SERVER_ERROR = "server_error"
    CRYPTO_FAILURE = "crypto_failure"
    WEBHOOK_DEAD = "webhook_dead"


@dataclass(frozen=True)
class Rule:
    """Raise ``severity`` when ``threshold`` signals share a ``per`` key within ``window_s``.

    A raised alert is not raised again for the same key within the window.
    """

    name: str
    signal: Signal
    per: str  # "session", "client", "device", "customer", "message", "service"
    threshold: int
    window_s: int
    severity: Severity
    summary: str


DEFAULT_RULES: tuple[Rule, ...] = (
    Rule(
        "spoof_attempt",
        Signal.SPOOF,
        "session",
        1,
        3600,
        Severity.CRITICAL,
        "Spoofing attempt detected",
    ),
    Rule(
        "camera_fail_client",
        Signal.CAMERA_FAIL,
        "client",
        3,
        600,
        Severity.WARNING,
        "Repeated camera failures for one client",
    ),
    Rule(
        "camera_fail_device",
        Signal.CAMERA_FAIL,
        "device",
        3,
        600,
        Severity.WARNING,
        "Repeated camera failures on one device",
    ),
    Rule(
        "capture_token_forged",
        Signal.UNAUTHORIZED_CALLBACK,
        "session",
        1,
        3600,
        Severity.CRITICAL,
        "A capture call used a wrong token secret",
    ),
    Rule(
        "replay_attempt",
        Signal.TOKEN_ALREADY_USED,
        "session",
        1,
        3600,
        Severity.CRITICAL,
        "A capture request or token was replayed",
    ),
    Rule(
        "server_error",
        Signal.SERVER_ERROR,
        "service",
        1,
        300,
        Severity.CRITICAL,
        "The service answered 500",
    ),
    Rule(
        "crypto_failure",
        Signal.CRYPTO_FAILURE,
        "service",
        1,
        300,
        Severity.CRITICAL,
        "A cryptographic check failed",
    ),
    Rule(
        "takeover_attempt",
        Signal.FACE_NOT_MATCH,
        "customer",
        5,
        3600,
        Severity.WARNING,
        "Repeated face mismatches for one customer (possible account takeover)",
    ),
    Rule(
        "webhook_dead_letter",
        Signal.WEBHOOK_DEAD,
        "message",
        1,
        86400,
        Severity.WARNING,
        "A webhook was dead-lettered after its last retry",
    ),
)


def load_rules(path: Path | None) -> tuple[Rule, ...]:
    """The rules from ``path`` (a JSON list), or the defaults."""
    if path is None:
        return DEFAULT_RULES
    try:
        raw = json.loads(path.read_text())
        rules = tuple(
            Rule(
                name=str(r["name"]),
                signal=Signal(r["signal"]),
                per=str(r["per"]),
                threshold=int(r["threshold"]),
                window_s=int(r["window_s"]),
                severity=Severity(r["severity"]),
                summary=str(r["summary"]),
            )
            for r in raw
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(
            f"BIOVERIFY_ALERT_RULES_FILE={path}: not a valid rule list ({type(exc).__name__})"
        ) from exc
    for rule in rules:
        if rule.threshold < 1 or rule.window_s < 1:
            raise ConfigError(f"alert rule {rule.name}: threshold and window_s must be >= 1")
    return rules


def rules_for(signal: Signal, rules: Sequence[Rule]) -> list[Rule]:
    return [rule for rule in rules if rule.signal is signal]


__all__ = ["DEFAULT_RULES", "Rule", "Severity", "Signal", "load_rules", "rules_for"]
