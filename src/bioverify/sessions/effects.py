"""What happens, in the same transaction, when a session moves: audit, webhooks, alerts.

This is the one place that ties the session service to the audit log, the webhook
outbox and the alert rules, so that a session's end, its final webhook, its audit
entry and any alert it raises commit (or roll back) together.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping

from sqlalchemy import Connection
from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session

from bioverify import errors
from bioverify.alerts.models import Alert
from bioverify.alerts.rules import Signal
from bioverify.alerts.service import AlertService, alert_payload
from bioverify.audit.events import AuditEvent, build_entry, code_event
from bioverify.audit.service import AuditLog
from bioverify.crypto.keyring import KeyRing
from bioverify.domain.session import Status
from bioverify.metrics import SESSIONS_ENDED
from bioverify.sessions import views
from bioverify.sessions.models import SessionRow
from bioverify.storage.together import Row
from bioverify.webhooks import outbox

Clock = Callable[[], dt.datetime]

_CODE_SIGNALS = {
    errors.SPOOF: Signal.SPOOF,
    errors.CAMERA_FAIL: Signal.CAMERA_FAIL,
    errors.FACE_NOT_MATCH: Signal.FACE_NOT_MATCH,
    errors.UNAUTHORIZED_CALLBACK: Signal.UNAUTHORIZED_CALLBACK,
    errors.TOKEN_ALREADY_USED: Signal.TOKEN_ALREADY_USED,
}

#: Security events the capture service reports, and how each is audited.
_SECURITY_EVENTS = {
    "capture_token_rejected": AuditEvent.AUTH_REJECTED,
    "envelope_rejected": AuditEvent.ENVELOPE_REJECTED,
    "nonce_replayed": AuditEvent.CAPTURE_NONCE_REPLAYED,
}


class ServiceEffects:
    """The production :class:`~bioverify.sessions.service.SessionEffects`."""

    def __init__(
        self,
        *,
        audit: AuditLog,
        keyring: KeyRing,
        alerts: AlertService,
        clock: Clock,
        operator_webhook_url: str | None = None,
    ) -> None:
        self.audit = audit
        self.keyring = keyring
        self.alerts = alerts
        self._clock = clock
        self._operator_url = operator_webhook_url
        self.alerts.on_raised.append(self._alert_raised)
        #: Set by the embedded worker: wakes the dispatcher once a webhook is committed.
        self.wake: Callable[[], None] | None = None

    def _wake_after_commit(self, db: Session) -> None:
        wake = self.wake
        if wake is not None:
            sa_event.listen(db, "after_commit", lambda _s: wake(), once=True)

    # ------------------------------------------------------------------ helpers

    def _hash(self, value: str | None, purpose: str) -> str | None:
        return self.keyring.keyed_hash(value, purpose) if value else None

    def _subjects(self, row: SessionRow) -> dict[str, str]:
        subjects = {
            "customer": self._hash(row.customer_id, "customer-id"),
            "device": row.device_hash,
        }
        return {k: v for k, v in subjects.items() if v}

    def record(
        self,
        db: Session | Connection,
        event: AuditEvent,
        *,
        client_id: str | None,
        session_id: str | None = None,
        code: int | None = None,
        subjects: Mapping[str, str] | None = None,
        details: Mapping[str, str | int | bool | None] | None = None,
        along: Row | None = None,
    ) -> int:
        """Queue one audit entry in the caller's transaction; its queue id (not yet its index).

        ``along``: a row inserted with the entry (see :meth:`AuditLog.append`).
        """
        entry = build_entry(
            event,
            client_id=client_id,
            session_id=session_id,
            code=code,
            subject_hashes=subjects,
            details=details,
            at=self._clock(),
        )
        return self.audit.append(db, entry, along=along)

    # ------------------------------------------------------------------ SessionEffects

    def session_created(self, db: Connection, row: SessionRow, *, insert: Row) -> None:
        # The session row and its audit entry: one statement on PostgreSQL.
        self.record(
            db,
            AuditEvent.SESSION_CREATED,
            client_id=row.client_id,
            session_id=row.id,
            subjects=self._subjects(row),
            details={"type": row.type, "liveness": row.liveness},
            along=insert,
        )

    def session_loaded(self, db: Session, row: SessionRow) -> None:
        self.record(
            db,
            AuditEvent.SESSION_LOADED,
            client_id=row.client_id,
            session_id=row.id,
            subjects=self._subjects(row),
        )
        if row.send_event_webhooks and row.callback_url:
            self._event_webhook(db, row, "session.loaded")

    def code_recorded(self, db: Session, row: SessionRow, code: int) -> None:
        self.record(
            db,
            code_event(code),
            client_id=row.client_id,
            session_id=row.id,
            code=code,
            subjects=self._subjects(row),
        )
        signal = _CODE_SIGNALS.get(code)
        if signal is not None:
            keys = {"session": row.id, "client": row.client_id}
            if row.device_hash:
                keys["device"] = row.device_hash
            customer = self._hash(row.customer_id, "customer-id")
            if customer:
                keys["customer"] = customer
            self.alerts.observe(
                db,
                signal,
                keys=keys,
                client_id=row.client_id,
                details={"sessionId": row.id, "code": code},
            )
        if (
            not errors.lookup(code).is_fatal
            and row.send_event_webhooks
            and row.callback_url
            and row.status == Status.IN_PROGRESS
        ):
            self._event_webhook(db, row, "attempt.failed", code=code)

    def session_ended(self, db: Session, row: SessionRow) -> None:
        queued = self.record(
            db,
            AuditEvent.SESSION_ENDED,
            client_id=row.client_id,
            session_id=row.id,
            code=views.state_of(row).outcome_code,
            subjects=self._subjects(row),
            details={"status": row.status},
        )
        if row.status == Status.SUCCESS and row.type == "ENROLL":
            self.record(
                db,
                AuditEvent.CUSTOMER_ENROLLED,
                client_id=row.client_id,
                session_id=row.id,
                subjects=self._subjects(row),
            )
        SESSIONS_ENDED.labels(
            row.type, row.status, str(views.state_of(row).outcome_code or 0)
        ).inc()
        # The entry's index is assigned by the sequencer later: the session keeps the
        # queue id, and the receipt is completed when the webhook is sent or polled.
        payload = views.webhook_payload(row)
        payload["audit"] = {"entry": queued}
        row.result = {**(row.result or {}), "auditEntry": queued}
        if row.callback_url:
            outbox.enqueue(
                db,
                session_id=row.id,
                client_id=row.client_id,
                url=row.callback_url,
                headers=row.callback_headers,
                payload=payload,
                now=self._clock(),
            )
            self._wake_after_commit(db)

    def customer_erased(self, db: Session, client_id: str, customer_id: str) -> None:
        self.record(
            db,
            AuditEvent.CUSTOMER_ERASED,
            client_id=client_id,
            subjects={"customer": self.keyring.keyed_hash(customer_id, "customer-id")},
        )

    # ------------------------------------------------------------------ others

    def security_event(
        self,
        db: Session,
        kind: str,
        row: SessionRow | None,
        details: Mapping[str, object],
        *,
        subjects: Mapping[str, str] | None = None,
        repeats: int = 0,
    ) -> None:
        """Capture-side refusals: audited, and a failed cryptographic check alerts.

        ``repeats`` > 0 writes the one counted entry that stands for that many more
        occurrences of an event already audited (aggregation by the caller).
        """
        self.security_entry(
            db,
            kind,
            client_id=row.client_id if row else None,
            session_id=row.id if row else None,
            details=details,
            subjects=subjects,
            repeats=repeats,
        )

    def security_entry(
        self,
        db: Session,
        kind: str,
        *,
        client_id: str | None,
        session_id: str | None,
        details: Mapping[str, object],
        subjects: Mapping[str, str] | None = None,
        repeats: int = 0,
    ) -> None:
        """:meth:`security_event` by ids (for counted entries written after the fact)."""
        event = _SECURITY_EVENTS.get(kind, AuditEvent.AUTH_REJECTED)
        clean: dict[str, str | int | bool | None] = {
            k: v for k, v in details.items() if isinstance(v, (str, int, bool))
        }
        if repeats:
            clean["repeats"] = repeats
        self.record(
            db,
            event,
            client_id=client_id,
            session_id=session_id,
            subjects=subjects,
            details=clean,
        )
        if kind == "envelope_rejected" and not repeats:
            self.alerts.observe(
                db,
                Signal.CRYPTO_FAILURE,
                keys={},
                client_id=client_id,
                details={"route": str(details.get("route", ""))},
            )

    def _event_webhook(
        self, db: Session, row: SessionRow, event: str, *, code: int | None = None
    ) -> None:
        assert row.callback_url is not None
        payload = views.event_payload(row, event, code=code, at=self._clock())
        outbox.enqueue(
            db,
            session_id=row.id,
            client_id=row.client_id,
            url=row.callback_url,
            headers=row.callback_headers,
            payload=payload,
            kind="event",
            event=event,
            now=self._clock(),
        )
        self._wake_after_commit(db)

    def _alert_raised(self, db: Session, alert: Alert) -> None:
        self.record(
            db,
            AuditEvent.ALERT_RAISED,
            client_id=alert.client_id,
            details={"rule": alert.rule, "severity": alert.severity, "alertId": alert.id},
        )
        if self._operator_url:
            outbox.enqueue(
                db,
                session_id=f"alert:{alert.id}",
                client_id="operator",
                url=self._operator_url,
                headers={},
                payload=alert_payload(alert),
                kind="event",
                event="alert.raised",
                now=self._clock(),
            )


__all__ = ["ServiceEffects"]
