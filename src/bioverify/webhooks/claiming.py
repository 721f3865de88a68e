"""Claiming outbox rows: leases taken, handed back, and pushed back.

Claiming is two statements: a ``SELECT ... FOR UPDATE SKIP LOCKED`` of due rows
joined to their sessions' active messages (the order within a session), then an
``UPDATE ... RETURNING`` of the ready ones. On PostgreSQL many workers share the
queue without ever holding the same row; on SQLite the transaction holds the
database lock.
A claim is a lease (``claimed_until``): a worker that dies mid-send leaves rows
that become due again when the lease runs out, so delivery is at-least-once and
receivers deduplicate by ``webhook-id``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from typing import Any, NamedTuple

from sqlalchemy import Connection, Engine, Integer, Select, String, bindparam, select, update
from sqlalchemy.orm import aliased

from bioverify.storage.base import UTCDateTime
from bioverify.webhooks.dispatch_config import DispatcherConfig
from bioverify.webhooks.models import (
    ACTIVE_STATUSES,
    MessageKind,
    MessageStatus,
    WebhookMessage,
    is_active,
)

_WAIT_BEHIND = dt.timedelta(milliseconds=1)
#: The longest a final webhook waits behind its session's undelivered event webhooks
#: (a slow event endpoint: each attempt may take a send timeout). Documented: the
#: final webhook goes out within 30 s whatever happens to the events.
FINAL_WAITS_AT_MOST = dt.timedelta(seconds=20)
_M = WebhookMessage

#: A claim's secrets before :meth:`Claims.complete` read them: signing fails closed.
_UNREAD = LookupError("the webhook secrets were not read for this claim")


@dataclasses.dataclass(frozen=True, slots=True)
class Claimed:
    """A message this worker holds the lease of, as it is sent."""

    id: str
    session_id: str
    client_id: str
    kind: str
    event: str | None
    payload: str
    url: str
    headers: str
    attempt: int
    schedule_base: int
    created_at: dt.datetime
    #: Its client's webhook secrets as read when it was claimed, or why they could not
    #: be (set by :meth:`Claims.complete`, off the event loop).
    secrets: Sequence[str] | Exception = dataclasses.field(default=_UNREAD, compare=False)


def _claim_select() -> Select[Any]:
    # The candidates (locked, skipping rows another claimer holds) joined to every
    # active message of their sessions, in one statement: each candidate's row comes
    # back once per active message of its session (usually just itself).
    cand = (
        select(_M.id, _M.session_id, _M.sequence, _M.kind, _M.created_at, _M.next_attempt_at)
        .where(is_active(_M.status), _M.next_attempt_at <= bindparam("c_now"))
        .order_by(_M.next_attempt_at)
        .limit(bindparam("c_lim", type_=Integer()))
        .with_for_update(skip_locked=True, of=_M)
        .subquery("cand")
    )
    peer = aliased(_M, name="peer")
    return (
        select(
            cand.c.id,
            cand.c.session_id,
            cand.c.sequence,
            cand.c.kind,
            cand.c.created_at,
            peer.sequence,
            peer.next_attempt_at,
            peer.kind,
            peer.attempts,
            peer.status,
        )
        .join(peer, (peer.session_id == cand.c.session_id) & is_active(peer.status))
        .order_by(cand.c.next_attempt_at, cand.c.id)
    )


def _claim_update() -> Any:
    # Re-check "due" in the UPDATE: on SQLite without FOR UPDATE another claimer
    # may have taken a candidate since the SELECT; then it is simply skipped.
    until = bindparam("c_until", type_=UTCDateTime())
    return (
        update(_M)
        .where(
            _M.id.in_(bindparam("c_ids", expanding=True)),
            # Bound, not written in: this UPDATE goes by primary key, and the
            # statuses written in would let the planner pick the due index instead.
            _M.status.in_(ACTIVE_STATUSES),
            _M.next_attempt_at <= bindparam("c_now", type_=UTCDateTime()),
        )
        .values(
            status=MessageStatus.DELIVERING.value,
            claimed_by=bindparam("c_worker", type_=String()),
            claimed_until=until,
            next_attempt_at=until,
            attempts=_M.attempts + 1,
        )
        .returning(
            _M.id,
            _M.session_id,
            _M.client_id,
            _M.kind,
            _M.event,
            _M.payload,
            _M.url,
            _M.headers,
            _M.attempts.label("attempt"),
            _M.schedule_base,
            _M.created_at,
        )
    )


#: Built once: a claim runs several times a second, building it each time cost CPU.
_CLAIM_SELECT = _claim_select()
_CLAIM_UPDATE = _claim_update()

#: PostgreSQL claims in two statements: the due candidates (locked, skipping rows
#: another claimer holds), then every message of their sessions by the session index.
#: In one joined statement a freshly filled outbox, its statistics still saying "a
#: few rows", was planned as a hash of every active message (or a nested loop over
#: them) on every claim: 5-80 ms a claim with a few thousand messages waiting. The
#: peers' status is filtered here, not in SQL, so the due index (partial on status)
#: is never picked for a session lookup.
_CANDIDATES = (
    select(_M.id, _M.session_id, _M.sequence, _M.kind, _M.created_at)
    .where(is_active(_M.status), _M.next_attempt_at <= bindparam("c_now"))
    .order_by(_M.next_attempt_at, _M.id)
    .limit(bindparam("c_lim", type_=Integer()))
    .with_for_update(skip_locked=True)
)
_SESSION_PEERS = select(
    _M.session_id, _M.sequence, _M.next_attempt_at, _M.kind, _M.attempts, _M.status
).where(_M.session_id.in_(bindparam("c_sessions", expanding=True)))


class _Candidate(NamedTuple):
    """A due message considered for a claim."""

    session_id: str
    sequence: int
    kind: str
    created_at: dt.datetime


class Claims:
    """Takes, hands back and defers this worker's leases on outbox rows."""

    def __init__(self, engine: Engine, config: DispatcherConfig) -> None:
        self._engine = engine
        self._config = config

    def claim_with(self, conn: Connection, limit: int) -> list[Claimed]:
        """Lease up to ``limit`` due messages to this worker inside ``conn``'s transaction.

        Plain index-range queries only (no anti-join), so a cold table with stale
        planner statistics cannot turn a claim into a quadratic plan. A message that
        must wait for an earlier message of its session is pushed back to when that
        one is next due, so it never clogs the head of the queue.
        """
        now = self._config.clock()
        if conn.dialect.name == "postgresql":
            joined = _claim_rows_in_two(conn, now, limit * 2)
        else:
            joined = list(conn.execute(_CLAIM_SELECT, {"c_now": now, "c_lim": limit * 2}))
        if not joined:
            return []
        candidates: dict[str, _Candidate] = {}
        heads: dict[str, tuple[int, dt.datetime]] = {}
        failed_event: set[str] = set()
        for (
            cid,
            session_id,
            seq,
            ckind,
            created_at,
            sequence,
            next_at,
            kind,
            attempts,
            status,
        ) in joined:
            candidates.setdefault(cid, _Candidate(session_id, seq, ckind, created_at))
            if session_id not in heads or sequence < heads[session_id][0]:
                heads[session_id] = (sequence, next_at)
            if kind == MessageKind.EVENT and attempts and status == MessageStatus.PENDING:
                failed_event.add(session_id)
        ready: list[str] = []
        for cid, c in candidates.items():
            head_sequence, head_next = heads[c.session_id]
            if c.sequence <= head_sequence or _final_goes_ahead(c, failed_event, now):
                ready.append(cid)
                continue
            park = max(head_next, now) + _WAIT_BEHIND
            if c.kind == MessageKind.FINAL:
                park = min(park, c.created_at + FINAL_WAITS_AT_MOST)
            conn.execute(update(_M).where(_M.id == cid).values(next_attempt_at=park))
        if not ready:
            return []
        lease_end = now + self._config.lease
        rows = conn.execute(
            _CLAIM_UPDATE,
            {
                "c_ids": ready[:limit],
                "c_now": now,
                "c_worker": self._config.worker_id,
                "c_until": lease_end,
            },
        )
        # The RETURNING columns are Claimed's fields, in order.
        return [Claimed(*row) for row in rows]

    def claim(self, limit: int) -> list[Claimed]:
        """:meth:`claim_with` in its own transaction, payloads completed for sending."""
        with self._engine.begin() as conn:
            claimed = self.claim_with(conn, limit)
        return self.complete(claimed)

    def complete(self, claimed: list[Claimed]) -> list[Claimed]:
        """Claims (committed) with their payloads completed and their clients' webhook
        secrets read, for sending. Runs in a thread: both may read the store."""
        if not claimed:
            return claimed
        prepare = self._config.prepare
        # Complete payloads that are finished only at send time (the audit receipt);
        # the hook stores what it changes so every later attempt sends the same body.
        changed = prepare([(m.id, m.payload) for m in claimed]) if prepare else {}
        # After the payloads: the secrets are as fresh as possible when the sends start.
        secrets = self._secrets({m.client_id for m in claimed})
        return [
            dataclasses.replace(
                m, payload=changed.get(m.id, m.payload), secrets=secrets[m.client_id]
            )
            for m in claimed
        ]

    def _secrets(self, client_ids: set[str]) -> dict[str, Sequence[str] | Exception]:
        """Each client's secrets, or why they cannot be used: never raises, so a
        failure is that client's messages' failed attempts, not lost claims."""
        many = self._config.secrets_for_many
        if many is not None:
            try:
                found = many(client_ids)
            except Exception as exc:  # noqa: BLE001 - becomes each attempt's outcome
                return dict.fromkeys(client_ids, exc)
            missing = LookupError("no webhook secrets were read for this client")
            return {c: found.get(c, missing) for c in client_ids}
        out: dict[str, Sequence[str] | Exception] = {}
        for client_id in client_ids:
            try:
                out[client_id] = self._config.secrets_for(client_id)
            except Exception as exc:  # noqa: BLE001 - becomes each attempt's outcome
                out[client_id] = exc
        return out

    def release(self, claimed: Sequence[Claimed]) -> None:
        """Hand unfinished claims back (shutdown): due again at once for any worker."""
        self._hand_back(claimed, next_attempt_at=self._config.clock())

    def defer(self, claimed: Sequence[Claimed]) -> None:
        """Hand back claims over an endpoint's slot cap: due again shortly, the attempt
        not counted."""
        self._hand_back(
            claimed,
            attempts=_M.attempts - 1,
            next_attempt_at=self._config.clock() + self._config.endpoint_defer,
        )

    def unclaim(self, claimed: Sequence[Claimed]) -> None:
        """Hand back claims that were never sent: due again at once, the attempt
        not counted."""
        self._hand_back(claimed, attempts=_M.attempts - 1, next_attempt_at=self._config.clock())

    def _hand_back(self, claimed: Sequence[Claimed], **values: Any) -> None:
        """Make this worker's ``claimed`` rows pending again, with ``values`` set."""
        if not claimed:
            return
        with self._engine.begin() as conn:
            conn.execute(
                update(_M)
                .where(_M.id.in_([c.id for c in claimed]), _M.claimed_by == self._config.worker_id)
                .values(
                    status=MessageStatus.PENDING.value,
                    claimed_by=None,
                    claimed_until=None,
                    **values,
                )
            )


def _claim_rows_in_two(conn: Connection, now: dt.datetime, limit: int) -> list[Any]:
    """The rows of the joined claim SELECT (each candidate once per active message
    of its session, in due order), from :data:`_CANDIDATES` and :data:`_SESSION_PEERS`."""
    candidates = conn.execute(_CANDIDATES, {"c_now": now, "c_lim": limit}).all()
    if not candidates:
        return []
    peers: dict[str, list[Any]] = {}
    sessions = list({c.session_id for c in candidates})
    for row in conn.execute(_SESSION_PEERS, {"c_sessions": sessions}):
        if row.status in ACTIVE_STATUSES:
            peers.setdefault(row.session_id, []).append(tuple(row)[1:])
    return [(*c, *p) for c in candidates for p in peers.get(c.session_id, ())]


def _final_goes_ahead(cand: Any, failed_event: set[str], now: dt.datetime) -> bool:
    """A final webhook is never held hostage by its session's event webhooks.

    Events go first while the endpoint takes them. Once an event attempt has
    failed, or the final one has waited :data:`FINAL_WAITS_AT_MOST`, the final
    webhook goes out and the events follow on their own retry schedule.
    """
    if cand.kind != MessageKind.FINAL:
        return False
    waited = now - cand.created_at
    return cand.session_id in failed_event or waited >= FINAL_WAITS_AT_MOST


__all__ = ["FINAL_WAITS_AT_MOST", "Claimed", "Claims"]
