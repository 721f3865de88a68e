"""Session transactions: create, read, end, expire.

Ending a session is one transaction: its status and codes, and whatever the
:class:`SessionEffects` add in the same transaction (the outbox row of the final
webhook, the audit entry, alerts). A crash can therefore never leave a session
ended without its webhook, or the other way round.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import Connection, Engine, Table, bindparam, delete, insert, inspect, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from bioverify import errors
from bioverify.accounts.models import Client
from bioverify.accounts.secretbox import SecretSealer
from bioverify.domain import session as sm
from bioverify.sessions import tokens, views
from bioverify.sessions.identity_vault import IdentityVault
from bioverify.sessions.models import Enrolment, IdempotencyKey, SessionRow
from bioverify.storage.base import new_id
from bioverify.storage.database import core_transaction, transaction
from bioverify.storage.together import Row

Clock = Callable[[], dt.datetime]

_SESSIONS: Table = SessionRow.__table__  # type: ignore[assignment]
#: (attribute, column) of every column of a session row.
_SESSION_COLUMNS: tuple[tuple[str, str], ...] = tuple(
    (prop.key, prop.columns[0].key) for prop in inspect(SessionRow).column_attrs
)
#: A new, transient :class:`SessionRow` with no attribute set.
_NEW_ROW = SessionRow.__mapper__.class_manager.new_instance

# A create's statements, built once and run on a Core connection (see ``create``).
_KEYS: Table = IdempotencyKey.__table__  # type: ignore[assignment]
_ENROLMENTS: Table = Enrolment.__table__  # type: ignore[assignment]
_FORGET_KEYS = delete(_KEYS).where(_KEYS.c.created_at < bindparam("before"))
_KEY = select(_KEYS.c.body_hash, _KEYS.c.status_code, _KEYS.c.response).where(
    _KEYS.c.client_id == bindparam("client_id"), _KEYS.c.key == bindparam("key")
)
_REMEMBER_KEY = insert(_KEYS)
_ENROLMENT = select(_ENROLMENTS.c.puid, _ENROLMENTS.c.guid).where(
    _ENROLMENTS.c.client_id == bindparam("client_id"),
    _ENROLMENTS.c.customer_id == bindparam("customer_id"),
)


def _row_insert(row: SessionRow) -> Row:
    """The INSERT of a new session row as Core values, leaving ``row`` transient.

    What the ORM flush did for this one row (a unit of work, identity map, attribute
    history) cost more CPU than the create's SQL itself; the statement is the same
    (the attributes set on ``row``; column defaults fill the rest, as in a flush).
    """
    values = row.__dict__
    return _SESSIONS, {column: values[attr] for attr, column in _SESSION_COLUMNS if attr in values}


class SessionEffects(Protocol):
    """What else happens, in the same transaction, when a session moves."""

    def session_created(self, db: Connection, row: SessionRow, *, insert: Row) -> None:
        """``row`` is new (transient, never in a Session): INSERT it (``insert``: its
        table and values) and what goes with it, in this transaction."""

    def session_loaded(self, db: Session, row: SessionRow) -> None: ...

    def code_recorded(self, db: Session, row: SessionRow, code: int) -> None: ...

    def session_ended(self, db: Session, row: SessionRow) -> None: ...

    def customer_erased(self, db: Session, client_id: str, customer_id: str) -> None: ...


@dataclass(frozen=True, slots=True)
class NewSession:
    """A validated create request (the API layer validated types and ranges)."""

    type: sm.SessionType
    customer_id: str | None = None
    callback_url: str | None = None
    callback_headers: Mapping[str, str] | None = None
    redirect_url: str | None = None
    session_expiry: int = 900
    enable_desktop: bool = True
    bind_device: bool = False
    max_attempts: int = 3
    liveness: str = "active"
    requirements: tuple[str, ...] = ("face",)
    send_images: bool = False
    device_info: Mapping[str, Any] | None = None
    transaction_id: str | None = None
    locale: str | None = None
    send_event_webhooks: bool = False
    product_group_id: str | None = None
    external_uuid: str | None = None


def new_puid() -> str:
    """A pseudonymous user id for an enrolment (PrivateID's ``puid``)."""
    return "puid_" + secrets.token_hex(12)


class SessionService:
    """Session transactions over the store."""

    def __init__(
        self,
        factory: sessionmaker[Session],
        *,
        public_url: str,
        effects: SessionEffects,
        response_sealer: SecretSealer,
        vault: IdentityVault,
        clock: Clock | None = None,
        idempotency_ttl_s: int = 24 * 3600,
    ) -> None:
        self._factory = factory
        #: The create's transaction runs on a Core connection of the same engine.
        self._engine: Engine = factory.kw["bind"]
        self._public_url = public_url.rstrip("/")
        # Required, never defaulted: a session that moves without its audit entry and
        # webhook would be a silent no-op (fail closed; see bioverify.wiring).
        self.effects: SessionEffects = effects
        self._clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self._idempotency_ttl = dt.timedelta(seconds=idempotency_ttl_s)
        #: Seals the launchUrl (it holds a live capture token) in stored idempotent answers.
        self.response_sealer: SecretSealer = response_sealer
        #: Opens what identity documents said (identityInformation), encrypted at rest.
        self.vault: IdentityVault = vault

    def now(self) -> dt.datetime:
        return self._clock()

    # ------------------------------------------------------------------ create

    def create(
        self,
        client: Client | Callable[[Connection], Client],
        spec: NewSession | Callable[[], NewSession],
        *,
        idempotency_key: str | None = None,
        body: bytes = b"",
    ) -> tuple[Client, int, dict[str, Any]]:
        """Create a session; ``(client, status_code, response body)``, replayed for a
        known key.

        ``client`` may be the credential check of the request, and ``spec`` a function
        that validates it: both then run in this one transaction (the check first, so a
        request without valid credentials learns nothing about its body), instead of a
        transaction and a thread hop each.

        One Core transaction (:func:`core_transaction`) of prebuilt statements: an ORM
        Session's begin, commit and per-statement execution cost more CPU than the
        create's SQL, on SQLite with the write lock held (every queued writer waited
        for it). The row, its audit entry and the key's record commit together.
        """
        body_hash = hashlib.sha256(body).digest()
        now = self.now()
        who = client if isinstance(client, Client) else None
        try:
            with core_transaction(self._engine) as db:
                current = client if isinstance(client, Client) else client(db)
                who = current
                new = spec if isinstance(spec, NewSession) else spec()
                if idempotency_key is not None:
                    replay = self._idempotent_replay(
                        db, current.id, idempotency_key, body_hash, now
                    )
                    if replay is not None:
                        return (current, *replay)
                response = self._create(db, current, new, now)
                if idempotency_key is not None:
                    db.execute(
                        _REMEMBER_KEY,
                        {
                            "client_id": current.id,
                            "key": idempotency_key,
                            "body_hash": body_hash,
                            "status_code": 201,
                            "response": self._stored(current.id, response),
                            "created_at": now,
                        },
                    )
                return current, 201, response
        except IntegrityError:
            # Two concurrent creates with one key: the loser answers as a replay.
            if idempotency_key is None or who is None:
                raise
            with core_transaction(self._engine) as db:
                replay = self._idempotent_replay(db, who.id, idempotency_key, body_hash, now)
            if replay is None:
                raise
            return (who, *replay)

    def _idempotent_replay(
        self, db: Connection, client_id: str, key: str, body_hash: bytes, now: dt.datetime
    ) -> tuple[int, dict[str, Any]] | None:
        db.execute(_FORGET_KEYS, {"before": now - self._idempotency_ttl})
        found = db.execute(_KEY, {"client_id": client_id, "key": key}).first()
        if found is None:
            return None
        stored_hash, status_code, stored = found
        if stored_hash != body_hash:
            raise errors.Conflict(
                "This Idempotency-Key was already used with a different "
                "request body; use a new key for a new request"
            )
        return int(status_code), self._replayed(client_id, dict(stored))

    def _stored(self, client_id: str, response: dict[str, Any]) -> dict[str, Any]:
        return {
            **response,
            "launchUrl": self.response_sealer.seal(client_id, str(response["launchUrl"])),
        }

    def _replayed(self, client_id: str, stored: dict[str, Any]) -> dict[str, Any]:
        return {
            **stored,
            "launchUrl": self.response_sealer.open(client_id, str(stored["launchUrl"])),
        }

    def _create(
        self, db: Connection, client: Client, spec: NewSession, now: dt.datetime
    ) -> dict[str, Any]:
        puid: str | None = None
        guid: str | None = None
        if sm.matches_one_to_one(spec.type, spec.customer_id):
            enrolment = db.execute(
                _ENROLMENT, {"client_id": client.id, "customer_id": spec.customer_id}
            ).first()
            if enrolment is None:
                raise errors.NotFound(
                    f"No enrolled customer {spec.customer_id!s} for this "
                    "client: enrol them with an ENROLL session first"
                )
            puid, guid = enrolment
        elif spec.type is sm.SessionType.ENROLL and spec.customer_id is not None:
            existing = db.execute(
                _ENROLMENT, {"client_id": client.id, "customer_id": spec.customer_id}
            ).first()
            # Re-enrolling keeps the customer's puid: it is their stable pseudonym. A new
            # customer gets one only when the enrolment succeeds (a FAILED ENROLL never
            # names a puid that was not enrolled).
            if existing is not None:
                puid, guid = existing
        state = sm.new_state(spec.max_attempts)
        # Transient, its values written straight into its dict: it is never added to a
        # Session (the effects INSERT it with Core), and setting two dozen instrumented
        # attributes one by one (an event and a history entry each) cost more than the
        # INSERT. The same attributes as before; column defaults fill the rest.
        row = _NEW_ROW()
        row.__dict__.update(
            id=new_id(),
            client_id=client.id,
            type=str(spec.type),
            customer_id=spec.customer_id,
            puid=puid,
            guid=guid,
            transaction_id=spec.transaction_id,
            callback_url=spec.callback_url,
            callback_headers=dict(spec.callback_headers or {}),
            redirect_url=spec.redirect_url,
            enable_desktop=spec.enable_desktop,
            bind_device=spec.bind_device,
            max_attempts=spec.max_attempts,
            liveness=spec.liveness,
            requirements=list(spec.requirements),
            send_images=spec.send_images,
            send_event_webhooks=spec.send_event_webhooks,
            device_info=dict(spec.device_info) if spec.device_info is not None else None,
            locale=spec.locale,
            product_group_id=spec.product_group_id,
            external_uuid=spec.external_uuid,
            created_at=now,
            expires_at=now + dt.timedelta(seconds=spec.session_expiry),
            token_hash=b"",
            codes=[],
        )
        views.store_state(row, state)
        token, token_hash = tokens.issue(row.id)
        row.token_hash = token_hash
        # Inserted by the effects, with its audit entry (one round trip on PostgreSQL).
        self.effects.session_created(db, row, insert=_row_insert(row))
        response: dict[str, Any] = {
            "sessionId": row.id,
            "launchUrl": f"{self._public_url}/capture/{token}",
            "expiresAt": views.rfc3339(row.expires_at),
            "status": row.status,
            "type": row.type,
        }
        if row.customer_id is not None:
            response["customerId"] = row.customer_id
        if row.puid is not None:
            response["puid"] = row.puid
        if row.transaction_id is not None:
            response["transactionID"] = row.transaction_id
        return response

    # ------------------------------------------------------------------ read

    def get_for_client(self, client: Client, session_id: str) -> dict[str, Any]:
        """The integrator's view; expires the session first if its TTL has passed."""
        with transaction(self._factory) as db:
            row = self.locked_row_for_client(db, client, session_id)
            self.expire_if_due(db, row, self.now())
            view = views.integrator_view(row)
            blob = row.identity
        # Decrypted after the commit: loading a data key may read the store.
        return self.with_identity(view, row.client_id, row.id, blob)

    def with_identity(
        self, payload: dict[str, Any], client_id: str, session_id: str, blob: bytes | None
    ) -> dict[str, Any]:
        """``payload`` with ``identityInformation`` when a document was read (API.md 5)."""
        info = self.vault.open_identity(client_id, session_id, blob)
        return payload if info is None else {**payload, "identityInformation": info}

    def locked_row_for_client(self, db: Session, client: Client, session_id: str) -> SessionRow:
        """The session row, locked for update; another client's session is unknown (404)."""
        if not tokens.looks_like_uuid(session_id):
            raise errors.NotFound(f"No session {session_id}")
        row = db.scalar(
            select(SessionRow).where(SessionRow.id == session_id.lower()).with_for_update()
        )
        if row is None or row.client_id != client.id:
            raise errors.NotFound(f"No session {session_id}")
        return row

    def ended_row_for_client(
        self, db: Session, client: Client, session_id: str, what: str
    ) -> SessionRow:
        """The locked row of an ended session (expiring it first if due); 409 while open.

        ``what`` completes the message: "its final webhook does not exist yet".
        """
        row = self.locked_row_for_client(db, client, session_id)
        self.expire_if_due(db, row, self.now())
        if not views.state_of(row).ended:
            raise errors.Conflict(f"The session is still open; {what}", session_id=row.id)
        return row

    # ------------------------------------------------------------------ transitions

    def apply(
        self, db: Session, row: SessionRow, transition: sm.Transition, code: int | None = None
    ) -> None:
        """Store a transition and run its effects in the caller's transaction."""
        if not transition.changed:
            return
        views.store_state(row, transition.state)
        if transition.ended:
            # However it ended (expiry, a client code, the document step), an open
            # document step's selfie embedding goes with it.
            row.document_state = None
        if code is not None:
            self.effects.code_recorded(db, row, code)
        if transition.ended:
            self.effects.session_ended(db, row)

    def record_code(self, db: Session, row: SessionRow, code: int) -> sm.Transition:
        transition = sm.record(views.state_of(row), code, self.now())
        self.apply(db, row, transition, code=errors.canonical(code))
        return transition

    def expire_if_due(self, db: Session, row: SessionRow, now: dt.datetime) -> bool:
        """End an overdue session with -8; True if it is (now) expired."""
        state = views.state_of(row)
        if state.ended or not sm.is_expired(row.expires_at, now):
            return False
        self.apply(
            db, row, sm.record(state, errors.SESSION_EXPIRED, now), code=errors.SESSION_EXPIRED
        )
        return True

    def sweep_expired(self, *, batch: int = 200) -> int:
        """End every overdue open session with -8 (the expiry sweeper). Returns the count."""
        now = self.now()
        ended = 0
        with transaction(self._factory) as db:
            rows = db.scalars(
                select(SessionRow)
                .where(
                    SessionRow.status.in_([sm.Status.PENDING, sm.Status.IN_PROGRESS]),
                    SessionRow.expires_at <= now,
                )
                .order_by(SessionRow.expires_at)
                .limit(batch)
                .with_for_update(skip_locked=True)
            ).all()
            for row in rows:
                ended += int(self.expire_if_due(db, row, now))
        return ended


__all__ = ["NewSession", "SessionEffects", "SessionService", "new_puid"]
