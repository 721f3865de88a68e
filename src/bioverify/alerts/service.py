"""Evaluating alert rules on signals, in the caller's transaction, with deduplication."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import structlog
from prometheus_client import Counter
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from bioverify.alerts.models import Alert, AlertObservation
from bioverify.alerts.rules import DEFAULT_RULES, Rule, Signal, rules_for

log = structlog.get_logger("bioverify.alerts")

ALERTS_RAISED = Counter(
    "bioverify_alerts_total", "Alerts raised, by rule and severity", ["rule", "severity"]
)

#: Called with each raised alert inside the same transaction (audit entry, operator webhook).
RaisedHook = Callable[[Session, Alert], None]


class AlertService:
    """Counts signals per rule and key; raises an alert once per key and window."""

    def __init__(
        self,
        rules: Sequence[Rule] = DEFAULT_RULES,
        *,
        clock: Callable[[], dt.datetime] | None = None,
        on_raised: Sequence[RaisedHook] = (),
    ) -> None:
        self.rules = tuple(rules)
        self._clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self.on_raised = list(on_raised)

    def observe(
        self,
        db: Session,
        signal: Signal,
        *,
        keys: Mapping[str, str],
        client_id: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> list[Alert]:
        """Record ``signal``; the alerts it raised (already added to ``db``).

        ``keys`` maps a rule's ``per`` ("session", "client", "device", ...) to an opaque
        value (ids or keyed hashes); a rule whose key is missing does not apply.
        """
        now = self._clock()
        raised: list[Alert] = []
        for rule in rules_for(signal, self.rules):
            key = "service" if rule.per == "service" else keys.get(rule.per)
            if not key:
                continue
            since = now - dt.timedelta(seconds=rule.window_s)
            if rule.threshold > 1:
                db.execute(
                    delete(AlertObservation).where(
                        AlertObservation.rule == rule.name, AlertObservation.at < since
                    )
                )
                db.add(AlertObservation(rule=rule.name, key=key, at=now))
                db.flush()
                count = (
                    db.scalar(
                        select(func.count())
                        .select_from(AlertObservation)
                        .where(
                            AlertObservation.rule == rule.name,
                            AlertObservation.key == key,
                            AlertObservation.at >= since,
                        )
                    )
                    or 0
                )
                if count < rule.threshold:
                    continue
            recent = db.scalar(
                select(Alert.id)
                .where(Alert.rule == rule.name, Alert.key == key, Alert.raised_at >= since)
                .limit(1)
            )
            if recent is not None:
                continue
            alert = Alert(
                rule=rule.name,
                severity=str(rule.severity),
                key=key,
                summary=rule.summary,
                client_id=client_id,
                details=dict(details or {}),
                raised_at=now,
            )
            db.add(alert)
            db.flush()
            raised.append(alert)
            ALERTS_RAISED.labels(rule=rule.name, severity=str(rule.severity)).inc()
            log.warning(
                "alert_raised",
                rule=rule.name,
                severity=str(rule.severity),
                alert_id=alert.id,
                client_id=client_id,
                summary=rule.summary,
            )
            for hook in self.on_raised:
                hook(db, alert)
        return raised


def alert_payload(alert: Alert) -> dict[str, Any]:
    """The operator webhook's body for ``alert`` (no biometric data, no raw identifiers)."""
    return {
        "type": "alert",
        "alertId": alert.id,
        "rule": alert.rule,
        "severity": alert.severity,
        "summary": alert.summary,
        "key": alert.key,
        "clientId": alert.client_id,
        "details": alert.details,
        "raisedAt": alert.raised_at.astimezone(dt.UTC).isoformat(),
    }


__all__ = ["ALERTS_RAISED", "AlertService", "alert_payload"]
