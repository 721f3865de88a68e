"""Client credentials: creation, rotation, revocation and request authentication.

Every secret is shown once and stored only as a SHA-256 hash (they are 256-bit
random strings, so a slow KDF buys nothing). Comparisons are constant-time, and
every failure raises the same :class:`Unauthorized` whatever part was wrong.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from sqlalchemy import Connection, Table, bindparam, delete, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bioverify.accounts import framing
from bioverify.accounts.models import Client, SeenRequestId
from bioverify.accounts.secretbox import SecretSealer
from bioverify.client import slc_message
from bioverify.errors import BadRequest, NotFound, Unauthorized
from bioverify.storage.base import new_id
from bioverify.webhooks.signing import new_webhook_secret

#: How long a rotated-out client secret keeps working, so deployments can roll over.
SECRET_ROTATION_GRACE = dt.timedelta(hours=24)
_CLIENTS: Table = Client.__table__  # type: ignore[assignment]
#: Built once: every authenticated request runs it (a statement built per call costs
#: its construction and cache key each time). Core, not an ORM entity query: loading
#: the row into the session's identity map cost more than the SELECT.
_CLIENT_BY_KEY_HASH = select(*_CLIENTS.c).where(_CLIENTS.c.api_key_hash == bindparam("key_hash"))
_SEEN: Table = SeenRequestId.__table__  # type: ignore[assignment]
_FORGET_SEEN = delete(_SEEN).where(_SEEN.c.seen_at < bindparam("before"))
_REMEMBER_SEEN = insert(_SEEN)
#: A new, transient :class:`Client` with no attribute set (the ORM's own loader path).
_NEW_CLIENT = Client.__mapper__.class_manager.new_instance


def _client_snapshot(values: Mapping[Any, Any]) -> Client:
    """A transient :class:`Client` holding ``values`` (a clients row).

    Written straight into the instance's dict, as the ORM loads a row: setting a dozen
    instrumented attributes one by one (each an attribute event and history entry) cost
    more than the SELECT it comes from, on every authenticated request.
    """
    client: Client = _NEW_CLIENT()
    client.__dict__.update(values)
    return client


def sha256(value: str) -> bytes:
    return hashlib.sha256(value.encode()).digest()


def _new_secret(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(32)


@dataclass(frozen=True, slots=True)
class IssuedCredentials:
    """Shown once at creation: the exact JSON of ``bioverify clients create --json``."""

    api_key: str
    client_id: str
    client_secret: str | None
    webhook_secret: str

    def as_json(self) -> dict[str, str | None]:
        return {
            "apiKey": self.api_key,
            "clientId": self.client_id,
            "clientSecret": self.client_secret,
            "webhookSecret": self.webhook_secret,
        }


def parse_public_key(pem: str) -> Ed25519PublicKey:
    try:
        key = load_pem_public_key(pem.encode())
    except (ValueError, TypeError) as exc:
        raise BadRequest("The public key is not a PEM-encoded public key") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise BadRequest("The public key must be an Ed25519 key (PEM, SubjectPublicKeyInfo)")
    return key


def create_client(
    db: Session,
    *,
    name: str,
    sealer: SecretSealer,
    public_key_pem: str | None = None,
    key_only: bool = False,
    frame_ancestors: Sequence[str] = (),
) -> tuple[Client, IssuedCredentials]:
    """Create a client application and return its credentials (shown once).

    Secrets are stored as hashes; the webhook secret (needed to sign) is sealed.
    ``frame_ancestors``: origins allowed to frame the hosted page (none by default).
    """
    ancestors = framing.normalise_all(frame_ancestors)
    if not name.strip() or len(name) > 128:
        raise BadRequest("name must be 1 to 128 characters")
    if public_key_pem is not None:
        parse_public_key(public_key_pem)
    if key_only and public_key_pem is not None:
        raise BadRequest(
            "--key-only clients authenticate with the API key alone; "
            "they cannot also register a public key"
        )
    api_key = _new_secret("bvk_")
    secret = None if key_only else _new_secret("bvs_")
    webhook_secret = new_webhook_secret()
    client_id = new_id()
    client = Client(
        id=client_id,
        name=name.strip(),
        api_key_hash=sha256(api_key),
        secret_hash=sha256(secret) if secret else None,
        public_key_pem=public_key_pem,
        key_only=key_only,
        webhook_secrets=[sealer.seal(client_id, webhook_secret)],
        frame_ancestors=ancestors,
    )
    db.add(client)
    db.flush()
    return client, IssuedCredentials(api_key, client.id, secret, webhook_secret)


def _get(db: Session, client_id: str) -> Client:
    client = db.get(Client, client_id)
    if client is None:
        raise NotFound(f"No client {client_id}")
    return client


def list_clients(db: Session) -> Sequence[Client]:
    return db.scalars(select(Client).order_by(Client.created_at)).all()


def revoke_client(db: Session, client_id: str, now: dt.datetime) -> Client:
    client = _get(db, client_id)
    if client.revoked_at is None:
        client.revoked_at = now
    return client


def set_frame_ancestors(db: Session, client_id: str, origins: Sequence[str]) -> list[str]:
    """Replace who may frame the client's hosted page; ``[]`` forbids framing again."""
    client = _get(db, client_id)
    client.frame_ancestors = framing.normalise_all(origins)
    return list(client.frame_ancestors)


def rotate_secret(db: Session, client_id: str, now: dt.datetime) -> str:
    """Issue a new client secret; the old one keeps working for a grace period."""
    client = _get(db, client_id)
    if client.key_only:
        raise BadRequest("key-only clients have no client secret to rotate")
    secret = _new_secret("bvs_")
    client.previous_secret_hash = client.secret_hash
    client.previous_secret_until = now + SECRET_ROTATION_GRACE
    client.secret_hash = sha256(secret)
    return secret


# ------------------------------------------------------------------ authentication


@dataclass(frozen=True, slots=True)
class RequestFacts:
    """The parts of an HTTP request that authentication looks at."""

    method: str
    path_with_query: str
    headers: Mapping[str, str]
    body: bytes


def _b64url_decode(value: str) -> bytes:
    padded = value + "=" * (-len(value) % 4)
    return base64.urlsafe_b64decode(padded.encode("ascii"))


class _Rejected(Exception):
    """Internal: a credential check failed (the reason is for the audit log only)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _secret_matches(client: Client, secret: str, now: dt.datetime) -> bool:
    candidate = sha256(secret)
    ok = client.secret_hash is not None and hmac.compare_digest(candidate, client.secret_hash)
    if client.previous_secret_hash is not None and client.previous_secret_until is not None:
        ok_old = hmac.compare_digest(candidate, client.previous_secret_hash)
        ok = ok or (ok_old and now < client.previous_secret_until)
    return ok


def _check_slc(
    db: Connection,
    client: Client,
    facts: RequestFacts,
    *,
    signature: str,
    now: dt.datetime,
    window_s: int,
) -> None:
    if not client.public_key_pem:
        raise _Rejected("slc without registered key")
    timestamp = facts.headers.get("x-timestamp", "")
    request_id = facts.headers.get("x-request-id", "")
    if not request_id or len(request_id) > 128:
        raise _Rejected("slc without request id")
    try:
        sent = int(timestamp)
        raw_signature = _b64url_decode(signature)
    except (ValueError, binascii.Error) as exc:
        raise _Rejected("slc malformed") from exc
    if abs(now.timestamp() - sent) > window_s:
        raise _Rejected("slc timestamp outside window")
    message = slc_message(facts.method, facts.path_with_query, timestamp, request_id, facts.body)
    try:
        parse_public_key(client.public_key_pem).verify(raw_signature, message)
    except (InvalidSignature, BadRequest) as exc:
        raise _Rejected("slc bad signature") from exc
    # A request id seen before inside the window is a replay. The unique constraint
    # makes this hold across replicas sharing the database.
    db.execute(_FORGET_SEEN, {"before": now - dt.timedelta(seconds=2 * window_s)})
    try:
        with db.begin_nested():
            db.execute(
                _REMEMBER_SEEN, {"client_id": client.id, "request_id": request_id, "seen_at": now}
            )
    except IntegrityError as exc:
        raise _Rejected("slc replayed request id") from exc


def authenticate(
    db: Connection, facts: RequestFacts, *, now: dt.datetime, slc_window_s: int = 300
) -> Client:
    """The client a request's credentials prove, or :class:`Unauthorized`, checked in
    ``db``'s transaction (an SLC request id is recorded there).

    The reason for a rejection is kept on the exception (``reason``) for the audit
    log; the client only ever sees one message.
    """
    try:
        return _authenticate(db, facts, now=now, slc_window_s=slc_window_s)
    except _Rejected as exc:
        error = Unauthorized()
        error.reason = exc.reason  # type: ignore[attr-defined]
        raise error from None


def _authenticate(
    db: Connection, facts: RequestFacts, *, now: dt.datetime, slc_window_s: int
) -> Client:
    headers = facts.headers
    api_key = headers.get("x_api_key") or headers.get("x-api-key") or ""
    if not api_key:
        raise _Rejected("missing api key")
    found = db.execute(_CLIENT_BY_KEY_HASH, {"key_hash": sha256(api_key)}).first()
    # A snapshot of the row (not in any session): callers read it, never change it.
    client = _client_snapshot(found._mapping) if found is not None else None
    if client is None or client.revoked_at is not None:
        raise _Rejected("unknown or revoked api key")
    client_id = headers.get("clientid", "")
    secret = headers.get("clientsecret", "")
    signature = headers.get("slc", "")
    if client.key_only and not (secret or signature):
        # Key-only clients: the key is itself the high-entropy secret (API.md section 3).
        if client_id and not hmac.compare_digest(client_id.encode(), client.id.encode()):
            raise _Rejected("client id does not match api key")
        return client
    if not hmac.compare_digest(client_id.encode(), client.id.encode()):
        raise _Rejected("client id does not match api key")
    if secret:
        if not _secret_matches(client, secret, now):
            raise _Rejected("wrong client secret")
        return client
    if signature:
        _check_slc(db, client, facts, signature=signature, now=now, window_s=slc_window_s)
        return client
    raise _Rejected("missing client secret or slc")


__all__ = [
    "IssuedCredentials",
    "RequestFacts",
    "authenticate",
    "create_client",
    "list_clients",
    "parse_public_key",
    "revoke_client",
    "rotate_secret",
    "set_frame_ancestors",
    "slc_message",
]
