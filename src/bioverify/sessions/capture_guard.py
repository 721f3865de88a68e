"""The guard every capture call passes: token, secret, ended, expired, desktop, device,
then the envelope (decryption, freshness, nonce).

Every call runs inside one locked transaction. A guard failure that ends the session
(-14, -8, -5, -16, -15) is committed first and raised after, so the session's end,
its webhook and its audit entry are durable before the client hears about it: a
body raises :class:`Deferred` to carry its error out of the transaction.
"""

from __future__ import annotations

import datetime as dt
import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel
from sqlalchemy import Insert, bindparam, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker, undefer

from bioverify import errors
from bioverify.crypto.envelope import EnvelopeError, Route, check_freshness, open_envelope
from bioverify.crypto.keyring import KeyRing
from bioverify.domain import device as devices
from bioverify.sessions import indicators, tokens, views
from bioverify.sessions.capture_models import parse_plaintext
from bioverify.sessions.device_info import ObservedDevice, observed_dict
from bioverify.sessions.indicators import Indicators
from bioverify.sessions.models import CaptureNonce, SessionRow
from bioverify.sessions.service import SessionService
from bioverify.storage.database import transaction

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")

#: Wrong token secrets a live session tolerates; the one reaching it ends the session (-14).
WRONG_TOKEN_LIMIT = 5

#: The guarded row, locked. Built once: building and keying the statement per call
#: was a measurable part of every capture step's transaction.
_LOCK_ROW = (
    select(SessionRow)
    .where(SessionRow.id == bindparam("session_id"))
    # Every capture step asks whether the face step has passed: loading the (small,
    # usually empty) column here saves each step a second SELECT.
    .options(undefer(SessionRow.document_state))
    .with_for_update()
)


def _nonce_insert(dialect: str) -> Insert:
    """Spend a nonce in one statement: a repeat inserts (and returns) nothing instead of
    raising, so no savepoint is needed to keep the transaction alive after a replay."""
    maker = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return (
        maker(CaptureNonce)
        .on_conflict_do_nothing(index_elements=["session_id", "nonce"])
        # A returned row, not the row count: drivers differ on the count of an INSERT
        # that also returns its generated key (psycopg reports -1).
        .returning(CaptureNonce.id)
    )


@dataclass(frozen=True, slots=True)
class DeviceFacts:
    """What the request says about the device (headers, and deviceInfo when sent)."""

    user_agent: str
    device_header: str
    device_info: Mapping[str, Any] | None = None
    #: The caller's address (for aggregating security events; audited only as a hash).
    address: str = ""

    def with_info(self, info: Mapping[str, Any] | None) -> DeviceFacts:
        return DeviceFacts(
            self.user_agent, self.device_header, info or self.device_info, self.address
        )


SecurityHook = Callable[[Session, str, SessionRow | None, Mapping[str, object]], None]
#: A guarded call's body: runs in the locked transaction with the session row.
Body = Callable[[Session, SessionRow, dt.datetime], T]


class Deferred(Exception):
    """Carries an error out of a transaction body so the transaction still commits."""

    def __init__(self, error: errors.BioverifyError) -> None:
        super().__init__(error.message)
        self.error = error


class CaptureGuard:
    """Runs capture calls under the guard, in one locked transaction each."""

    def __init__(
        self,
        sessions: SessionService,
        factory: sessionmaker[Session],
        *,
        keyring: KeyRing,
        on_security_event: SecurityHook | None = None,
        freshness_window_s: int = 300,
    ) -> None:
        self.sessions = sessions
        self.factory = factory
        self.keyring = keyring
        self._security = on_security_event
        self._window = freshness_window_s
        bind = factory.kw.get("bind")
        self._spend_nonce = _nonce_insert(bind.dialect.name if bind is not None else "sqlite")
        #: When this process last pruned old nonces (service clock); see ``open``.
        self._pruned_at: dt.datetime | None = None

    def security_event(
        self, db: Session, kind: str, row: SessionRow | None, **details: object
    ) -> None:
        if self._security is not None:
            self._security(db, kind, row, details)

    def device_hash(self, facts: DeviceFacts) -> str:
        material = devices.fingerprint_material(facts.device_header, facts.user_agent)
        return self.keyring.keyed_hash(material, "device")

    def fail(self, db: Session, row: SessionRow, code: int) -> errors.BioverifyError:
        """End ``row`` with ``code`` (in this transaction); the error to raise after commit."""
        self.sessions.record_code(db, row, code)
        return errors.session_error(code, session_id=row.id)

    @staticmethod
    def _ended_error(row: SessionRow) -> errors.BioverifyError:
        state = views.state_of(row)
        if row.token_consumed:
            return errors.Conflict(
                "This capture link was already used; start a new session",
                codes=[errors.TOKEN_ALREADY_USED],
                session_id=row.id,
            )
        if state.outcome_code == errors.SESSION_EXPIRED:
            return errors.session_error(errors.SESSION_EXPIRED, session_id=row.id)
        return errors.Conflict(
            "This session has already ended", codes=state.error_codes, session_id=row.id
        )

    def _guard(
        self, db: Session, token: str, facts: DeviceFacts, now: dt.datetime
    ) -> tuple[SessionRow | None, errors.BioverifyError | None]:
        parsed = tokens.parse(token)
        row = None
        if parsed is not None:
            row = db.scalar(_LOCK_ROW, {"session_id": parsed[0]})
        if parsed is None or row is None:
            self.security_event(db, "capture_token_rejected", None, address=facts.address)
            return None, errors.Unauthorized(
                "This capture link is not valid", codes=[errors.UNAUTHORIZED_CALLBACK]
            )
        if not tokens.secret_matches(parsed[1], row.token_hash):
            self.security_event(db, "capture_token_rejected", row, address=facts.address)
            if views.state_of(row).ended:
                return row, errors.Unauthorized(
                    "This capture link is not valid", codes=[errors.UNAUTHORIZED_CALLBACK]
                )
            # Anyone who knows a sessionId could end it with one wrong secret; only
            # repeated attempts (counted on the locked row, so across replicas) do.
            row.wrong_token_attempts = (row.wrong_token_attempts or 0) + 1
            if row.wrong_token_attempts < WRONG_TOKEN_LIMIT:
                return row, errors.Unauthorized(
                    "This capture link is not valid", codes=[errors.UNAUTHORIZED_CALLBACK]
                )
            return row, self.fail(db, row, errors.UNAUTHORIZED_CALLBACK)
        if views.state_of(row).ended:
            return row, self._ended_error(row)
        if self.sessions.expire_if_due(db, row, now):
            return row, errors.session_error(errors.SESSION_EXPIRED, session_id=row.id)
        if not row.enable_desktop and devices.is_desktop(facts.user_agent, facts.device_info):
            return row, self.fail(db, row, errors.DESKTOP)
        fingerprint = self.device_hash(facts)
        if not row.bind_device:
            # Recorded, never enforced (API.md section 4): the link may be opened again on
            # another device; an ENROLL keeps the device its capture came from.
            row.device_hash = fingerprint
        elif row.device_hash is None:
            row.device_hash = fingerprint
        elif not hmac.compare_digest(row.device_hash, fingerprint):
            return row, self.fail(db, row, errors.DEVICE_MISMATCH)
        return row, None

    def locked(self, token: str, facts: DeviceFacts, body: Body[T]) -> T:
        """Run ``body`` under the guard; raise guard (or body) errors after commit."""
        failure: errors.BioverifyError | None = None
        result: T | None = None
        with transaction(self.factory) as db:
            now = self.sessions.now()
            row, failure = self._guard(db, token, facts, now)
            if failure is None and row is not None:
                try:
                    result = body(db, row, now)
                except Deferred as deferred:
                    failure = deferred.error
        if failure is not None:
            raise failure
        return result  # type: ignore[return-value]  # set whenever no failure was raised

    # ------------------------------------------------------------------ envelopes

    def open(
        self,
        db: Session,
        row: SessionRow,
        envelope: Mapping[str, object],
        route: Route,
        now: dt.datetime,
        *,
        address: str = "",
    ) -> dict[str, object]:
        """Decrypt, check freshness, and spend the nonce (a replay ends the session)."""
        try:
            plaintext = open_envelope(
                envelope, keyring=self.keyring, session_id=row.id, route=route
            )
        except EnvelopeError as exc:
            if exc.crypto_failure:
                self.security_event(db, "envelope_rejected", row, route=route, address=address)
            raise Deferred(exc) from None
        try:
            nonce, _ = check_freshness(plaintext, now=now.timestamp(), window=self._window)
        except errors.BadRequest as exc:
            raise Deferred(exc) from None
        self._prune_nonces(db, now)
        # On the session's connection, as Core (the ORM's bulk insert path is slower).
        spent = (
            db.connection()
            .execute(self._spend_nonce, {"session_id": row.id, "nonce": nonce, "seen_at": now})
            .first()
        )
        if spent is None:
            self.security_event(db, "nonce_replayed", row, route=route, address=address)
            raise Deferred(self.fail(db, row, errors.TOKEN_ALREADY_USED))
        return plaintext

    def _prune_nonces(self, db: Session, now: dt.datetime) -> None:
        """Delete nonces older than twice the freshness window, at most once a window.

        They can no longer be replayed (their timestamps are refused), so they are
        pruned rather than kept forever; keeping some up to one window longer changes
        nothing, and a DELETE per envelope was a statement on every capture's locked
        transaction for rows that are almost never there.
        """
        window = dt.timedelta(seconds=self._window)
        last = self._pruned_at
        if last is not None and last <= now < last + window:
            return
        db.execute(delete(CaptureNonce).where(CaptureNonce.seen_at < now - 2 * window))
        self._pruned_at = now

    @staticmethod
    def observed(
        row: SessionRow, device: ObservedDevice | None, reported: Indicators | None
    ) -> None:
        """Keep what the capture client reported (validated) for the webhook and the risk."""
        if device is not None:
            row.client_device_info = observed_dict(device)
        if reported is not None:
            row.indicators = indicators.summary(reported)

    def check_desktop(
        self, db: Session, row: SessionRow, device_info: Mapping[str, Any] | None
    ) -> None:
        """-5 when the (decrypted) deviceInfo says desktop and the session forbids it."""
        if not row.enable_desktop and devices.reported_desktop(device_info):
            raise Deferred(self.fail(db, row, errors.DESKTOP))


def validated(model: type[M], plaintext: Mapping[str, object]) -> M:
    """The plaintext parsed as ``model``; a 400 carried out of the transaction."""
    try:
        return parse_plaintext(model, plaintext)
    except errors.BadRequest as exc:
        raise Deferred(exc) from None


__all__ = [
    "WRONG_TOKEN_LIMIT",
    "Body",
    "CaptureGuard",
    "Deferred",
    "DeviceFacts",
    "SecurityHook",
    "validated",
]
