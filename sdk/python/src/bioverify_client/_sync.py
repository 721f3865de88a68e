"""The blocking client: sends the core's calls with httpx and sleeps between retries."""

from __future__ import annotations

from types import TracebackType
from typing import Any, TypeVar, Unpack

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bioverify_client import _core, retry
from bioverify_client._core import Calls, SessionOptions, SessionType
from bioverify_client._poll import PollSchedule
from bioverify_client.errors import BioverifyError
from bioverify_client.models import (
    AuditEntry,
    Checkpoint,
    ConsistencyProof,
    Customer,
    Delivery,
    InclusionProof,
    Outcome,
    PublicKey,
    Session,
)
from bioverify_client.retry import RetryBudget, RetryConfig
from bioverify_client.tiles import (
    TILE_WIDTH,
    checkpoint_size,
    receipt_from_tiles,
    required_tiles,
)

T = TypeVar("T")


class Client:
    """Integrator client for the bioverify Session API (blocking).

    Give ``client_id`` with ``client_secret``, or with ``signing_key`` (Ed25519: every
    request is signed as ``SLC``); a key-only client gives ``api_key`` alone.
    ``transport`` takes any httpx transport (tests use ``httpx.ASGITransport`` or a
    fault-injecting wrapper).
    """

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str,
        client_id: str | None = None,
        client_secret: str | None = None,
        signing_key: Ed25519PrivateKey | None = None,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 10.0,
        retries: RetryConfig | None = None,
    ) -> None:
        self._credentials = _core.Credentials(api_key, client_id, client_secret, signing_key)
        self._retries = retries or RetryConfig()
        self._http = httpx.Client(
            base_url=base_url,
            transport=transport,
            timeout=timeout,
            headers={"user-agent": _core.USER_AGENT},
            follow_redirects=False,
        )

    def __repr__(self) -> str:
        return f"Client({str(self._http.base_url)!r}, client_id={self._credentials.client_id!r})"

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def _send(self, call: _core.Call[T]) -> T:
        budget = RetryBudget(self._retries)
        while True:
            attempt = budget.start_attempt()
            request = _core.prepare(self._http, call, self._credentials)
            try:
                response = self._http.send(request)
            except httpx.HTTPError as exc:
                error = _core.transport_error(exc)
            else:
                try:
                    return _core.result(call, response, attempt)
                except BioverifyError as exc:
                    error = exc
            delay = budget.delay_before_retry(error)
            if delay is None:
                raise error
            retry.sleep(delay)

    # ---------------------------------------------------------------- sessions

    def create_session(
        self,
        *,
        type: SessionType,
        idempotency_key: str | None = None,
        **options: Unpack[SessionOptions],
    ) -> Session:
        """Open a session; ``launch_url`` is where the user goes next.

        An ``Idempotency-Key`` is always sent (a fresh uuid4 unless given) and kept
        across retries, so a retried create never opens two sessions.
        """
        return self._send(Calls.create_session(type, options, idempotency_key))

    def get_session(self, session_id: str) -> Session:
        """The session as the integrator sees it."""
        return self._send(Calls.get_session(session_id))

    def outcome(self, session_id: str) -> Outcome | None:
        """``Succeeded``/``Failed`` for a finished session, ``None`` while it is open."""
        return self.get_session(session_id).outcome()

    def wait_for_result(self, session_id: str, timeout: float, *, poll: float = 1.0) -> Session:
        """Poll until SUCCESS or FAILED (backing off from ``poll`` s); else :class:`WaitTimeout`."""
        schedule = PollSchedule(session_id, timeout, poll)
        while True:
            session = self.get_session(session_id)
            if session.is_finished:
                return session
            retry.sleep(schedule.next_delay())

    def get_webhook_payload(self, session_id: str) -> dict[str, Any]:
        """The final webhook payload (polling fallback); 409 :class:`PermanentError` while open."""
        return self._send(Calls.get_webhook_payload(session_id))

    def list_deliveries(self, session_id: str) -> list[Delivery]:
        """Delivery attempts of the session's webhooks, oldest first."""
        return self._send(Calls.list_deliveries(session_id))

    def redeliver(self, session_id: str) -> str:
        """Queue the final webhook again (same ``webhook-id``); returns that id."""
        return self._send(Calls.redeliver(session_id))

    # ---------------------------------------------------------------- customers

    def get_customer(self, customer_id: str) -> Customer:
        """Enrolment status of a customer (404 :class:`PermanentError` if not enrolled)."""
        return self._send(Calls.get_customer(customer_id))

    def erase_customer(self, customer_id: str) -> None:
        """Erase the customer's template and device binding (crypto-erase)."""
        self._send(Calls.erase_customer(customer_id))

    # ---------------------------------------------------------------- audit and keys

    def audit_checkpoint(self) -> Checkpoint:
        """The latest signed checkpoint of the audit log."""
        return self._send(Calls.audit_checkpoint())

    def audit_entries(self, start: int = 0, end: int | None = None) -> list[AuditEntry]:
        """This client's audit entries with ``start <= index < end``."""
        return self._send(Calls.audit_entries(start, end))

    def audit_entry(self, index: int) -> AuditEntry:
        """This client's audit entry at ``index`` (e.g. a receipt's), or 404."""
        return _core.single_entry(index, self.audit_entries(index, index + 1))

    def inclusion_proof(self, index: int, tree_size: int) -> InclusionProof:
        """RFC 9162 inclusion proof of one of this client's entries."""
        return self._send(Calls.inclusion_proof(index, tree_size))

    def consistency_proof(self, first: int, second: int) -> ConsistencyProof:
        """RFC 9162 consistency proof between two tree sizes."""
        return self._send(Calls.consistency_proof(first, second))

    def public_key(self) -> PublicKey:
        """The RSA key capture clients encrypt to."""
        return self._send(Calls.public_key())

    def jwks(self) -> dict[str, Any]:
        """The Ed25519 keys that sign webhooks (``v1a``) and checkpoints."""
        return self._send(Calls.jwks())

    # ---------------------------------------------------------------- C2SP tlog-tiles

    def tlog_checkpoint(self) -> str:
        """The latest signed checkpoint note, as the public tlog-tiles route serves it."""
        return self._send(Calls.tlog_checkpoint())

    def tlog_tile(self, level: int, index: int, width: int = TILE_WIDTH) -> bytes:
        """One hash tile (``width`` hashes of 32 bytes) of the public log."""
        return self._send(Calls.tlog_tile(level, index, width))

    def tlog_receipt(self, index: int, checkpoint: str | None = None) -> dict[str, Any]:
        """A receipt for entry ``index`` built from the public tiles alone.

        Check it with :func:`verify_receipt` like a webhook's receipt; ``checkpoint``
        is a note to prove against (default: the latest, ``tlog_checkpoint()``).
        """
        note = checkpoint if checkpoint is not None else self.tlog_checkpoint()
        keys = required_tiles(index, checkpoint_size(note))
        tiles = {key: self.tlog_tile(*key) for key in keys}
        return receipt_from_tiles(index, note, tiles)


__all__ = ["Client"]
