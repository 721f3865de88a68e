"""The background worker: expiry sweeper, webhook dispatcher, audit sequencer.

Embedded in ``bioverify serve`` (SQLite default) or run alone as ``bioverify
worker`` (any number of them on PostgreSQL). Each job is a small async loop that
stops when the stop event is set; a failing iteration is logged and retried, never
fatal to the process.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import json
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import structlog
from sqlalchemy import select, update
from starlette.concurrency import run_in_threadpool

from bioverify.accounts.models import Client
from bioverify.accounts.secretbox import KeyRingSealer
from bioverify.alerts.rules import Signal
from bioverify.audit.events import AuditEvent
from bioverify.audit.sequencer import Sequencer
from bioverify.audit.service import WEBHOOK_RECEIPT_WAIT_S, AuditLog
from bioverify.audit.wiring import run_sequencer
from bioverify.metrics import WEBHOOKS_DEAD, WEBHOOKS_DELIVERED
from bioverify.sessions.capture_views import portrait_aad
from bioverify.sessions.models import SessionRow
from bioverify.storage.database import is_sqlite, read_transaction, transaction
from bioverify.webhooks import outbox
from bioverify.webhooks.callback_headers import PURPOSE as HEADERS_PURPOSE
from bioverify.webhooks.callback_headers import open_headers
from bioverify.webhooks.dispatcher import Dispatcher, DispatcherConfig
from bioverify.webhooks.models import MessageStatus, WebhookMessage
from bioverify.webhooks.outbox import MessageView
from bioverify.webhooks.retry import RetryPolicy
from bioverify.wiring import Services

log = structlog.get_logger("bioverify.worker")

Job = Callable[[asyncio.Event], Awaitable[None]]


async def every(
    interval_s: float, stop: asyncio.Event, name: str, step: Callable[[], Awaitable[object]]
) -> None:
    """Run ``step`` every ``interval_s`` seconds until ``stop`` is set."""
    while not stop.is_set():
        try:
            await step()
        except Exception:
            log.exception("worker_job_failed", job=name)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval_s)


class PayloadCompleter:
    """Completes final webhooks when they are claimed for sending.

    - The audit receipt: the session-ending transaction queues the audit entry; here
      the webhook waits (at most ``WEBHOOK_RECEIPT_WAIT_S``) until the sequencer gave
      it an index and signed a checkpoint covering it, so the receipt is always
      complete. If the wait runs out the claim fails and the message is retried
      after its lease: never sent without its receipt. The completed payload is
      stored, so every later attempt sends the same receipt.
    - The portrait (``sendImages``): decrypted into the body being sent only, never
      stored in the outbox; the encrypted copy is dropped once the webhook is delivered.
    - ``identityInformation`` (document sessions): decrypted into the body being sent
      only, like the portrait; it stays encrypted on the session for the polling route
      until the customer is erased.
    """

    def __init__(self, services: Services, audit: AuditLog) -> None:
        self._services = services
        self._factory = services.factory
        self._audit = audit

    def __call__(self, items: list[tuple[str, str]]) -> dict[str, str]:
        payloads: dict[str, dict[str, Any]] = {}
        for message_id, text in items:
            payload = json.loads(text)
            if (
                isinstance(payload, dict)
                and isinstance(payload.get("audit"), dict)
                and "sessionId" in payload
            ):
                payloads[message_id] = payload
        if not payloads:
            return {}
        # Wait (bounded) for the sequencer outside any transaction: on SQLite an open
        # write transaction here would stop the very batch being waited for.
        completed = {
            message_id: self._audit.receipt_for(
                self._factory, payload["audit"], WEBHOOK_RECEIPT_WAIT_S
            )
            for message_id, payload in payloads.items()
            if "checkpoint" not in payload["audit"]
        }
        kept: dict[str, tuple[str, str, bytes]] = {}
        identities: dict[str, tuple[str, str, bytes]] = {}
        with transaction(self._factory) as db:
            for message_id, payload in payloads.items():
                if message_id in completed:
                    payload["audit"] = completed[message_id]
                    db.execute(
                        update(WebhookMessage)
                        .where(WebhookMessage.id == message_id)
                        .values(payload=json.dumps(payload, separators=(",", ":")))
                    )
                row = db.get(SessionRow, str(payload["sessionId"]))
                if row is not None and row.portrait is not None:
                    kept[message_id] = (row.client_id, row.id, row.portrait)
                if row is not None and row.identity is not None:
                    identities[message_id] = (row.client_id, row.id, row.identity)
        # Decrypt after the commit: loading a data key may read the store, which on
        # SQLite would wait on this very transaction's write lock.
        biometrics = self._services.biometrics
        for message_id, (client_id, session_id, blob) in kept.items():
            if biometrics is not None:
                jpeg = biometrics.cipher.decrypt(client_id, blob, portrait_aad(session_id))
                payloads[message_id]["images"] = [
                    {"type": "portrait", "data": base64.b64encode(jpeg).decode("ascii")}
                ]
        for message_id, (client_id, session_id, blob) in identities.items():
            payloads[message_id] = self._services.need_sessions().with_identity(
                payloads[message_id], client_id, session_id, blob
            )
        return {
            message_id: json.dumps(payload, separators=(",", ":"))
            for message_id, payload in payloads.items()
        }


def drop_portraits(services: Services, messages: Sequence[MessageView]) -> None:
    """Delivered or dead-lettered final webhooks no longer need their sessions' kept
    portraits: one UPDATE for the lot (run after the delivery is recorded)."""
    sessions = {m.session_id for m in messages if m.kind == "final"}
    if not sessions:
        return
    with transaction(services.factory) as db:
        db.execute(
            update(SessionRow)
            .where(SessionRow.id.in_(sessions), SessionRow.portrait.is_not(None))
            .values(portrait=None)
        )


class WebhookSecrets:
    """The ``whsec_`` secrets clients' webhooks are signed with (current first).

    Read for each claimed batch by the dispatcher's claiming thread (never on the
    event loop): one SELECT for the batch's clients, in a read transaction (on SQLite
    it does not wait for the writer gate). Nothing is cached between batches, so a
    change to a client's ``webhook_secrets`` signs every message claimed after it
    commits.
    """

    def __init__(self, services: Services) -> None:
        self._services = services
        self._sealer = KeyRingSealer(services.need_keyring())

    def __call__(self, client_id: str) -> Sequence[str]:
        found = self.many([client_id])[client_id]
        if isinstance(found, Exception):
            raise found
        return found

    def many(self, client_ids: Collection[str]) -> dict[str, Sequence[str] | Exception]:
        """Each client's secrets, or the error that makes them unusable (a secret
        that does not open: that client's sends fail, the others' go on)."""
        out: dict[str, Sequence[str] | Exception] = {}
        wanted = set(client_ids)
        operator = self._services.operator_webhook_secret
        if operator and "operator" in wanted:
            wanted.discard("operator")
            out["operator"] = [operator]
        if not wanted:
            return out
        with read_transaction(self._services.factory) as db:
            rows = db.execute(
                select(Client.id, Client.webhook_secrets).where(Client.id.in_(sorted(wanted)))
            )
            stored = {row.id: row.webhook_secrets for row in rows}
        for client_id in wanted:
            try:
                out[client_id] = [
                    self._sealer.open(client_id, sealed) for sealed in stored.get(client_id) or []
                ]
            except Exception as exc:  # noqa: BLE001 - that client's attempts fail, reported
                out[client_id] = exc
        return out


def build_dispatcher(services: Services) -> Dispatcher:
    settings = services.settings
    keyring = services.need_keyring()
    audit = services.audit
    effects = services.need_effects()
    guard = services.egress
    policy = RetryPolicy.for_tests() if settings.webhook_test_schedule else RetryPolicy()
    secrets = WebhookSecrets(services)

    def audit_dead(message: MessageView) -> None:
        WEBHOOKS_DEAD.inc()
        with transaction(services.factory) as db:
            effects.record(
                db,
                AuditEvent.WEBHOOK_DEAD_LETTERED,
                client_id=None if message.client_id == "operator" else message.client_id,
                session_id=message.session_id if len(message.session_id) == 36 else None,
                details={"webhookId": message.id},
            )
            if message.client_id != "operator":
                # An undeliverable alert webhook must not raise an alert webhook about
                # itself (a loop); it is still audited and counted.
                effects.alerts.observe(
                    db,
                    Signal.WEBHOOK_DEAD,
                    keys={"message": message.id},
                    details={"webhookId": message.id},
                )

    def recorded(messages: Sequence[MessageView]) -> None:
        # In the dispatcher's recording thread, after the deliveries committed: the
        # event loop never waits on these transactions (nor on SQLite's writer gate).
        delivered = [m for m in messages if m.status == MessageStatus.DELIVERED.value]
        dead = [m for m in messages if m.status == MessageStatus.DEAD.value]
        WEBHOOKS_DELIVERED.inc(len(delivered))
        try:
            # Kept only for delivery; for a dead one there will be none.
            drop_portraits(services, delivered + dead)
        finally:
            for message in dead:  # each audited on its own, as before
                try:
                    audit_dead(message)
                except Exception:
                    log.exception("webhook.callback_failed", webhook_id=message.id)

    return Dispatcher(
        services.db_engine,
        DispatcherConfig(
            secrets_for=secrets,
            secrets_for_many=secrets.many,
            signing_keys=lambda: [keyring.signing_key().private_key],
            policy=policy,
            guard=guard,
            clock=services.clock,
            on_recorded=recorded,
            lease=dt.timedelta(seconds=settings.webhook_lease_s),
            prepare=PayloadCompleter(services, audit),
            open_headers=partial(open_headers, KeyRingSealer(keyring, purpose=HEADERS_PURPOSE)),
        ),
    )


@dataclass
class Worker:
    """The jobs of one worker process."""

    services: Services
    jobs: list[Job] = field(default_factory=list)
    dispatcher: Dispatcher | None = None

    def __post_init__(self) -> None:
        svc = self.services
        settings = svc.settings
        if svc.problems:
            # Fail closed: no job writes while a part is missing (serve's API answers 503;
            # `bioverify worker` refuses to start).
            log.error("worker_not_started", failing=sorted(svc.problems))
            return
        sessions = svc.need_sessions()

        async def sweep() -> None:
            ended = await run_in_threadpool(sessions.sweep_expired)
            if ended:
                log.info("sessions_expired", count=ended)
                if self.dispatcher is not None:
                    self.dispatcher.wake()

        async def sweeper(stop: asyncio.Event) -> None:
            await every(settings.sweep_interval_s, stop, "sweeper", sweep)

        self.jobs.insert(0, sweeper)
        # Every worker competes to sequence the audit log (on PostgreSQL the advisory
        # lock makes one the leader); a ready process always has a sequencer.
        self.jobs.append(self._sequencer(svc.need_sequencer()))
        if is_sqlite(svc.db_engine):
            # SQLite runs one process: claims left by a crash are nobody's now.
            with transaction(svc.factory) as db:
                released = outbox.release_all_claims(db, now=svc.clock())
            if released:
                log.info("webhook_claims_released", count=released)
        self.dispatcher = build_dispatcher(svc)
        svc.dispatcher = self.dispatcher
        svc.need_effects().wake = self.dispatcher.wake
        self.jobs.append(self.dispatcher.run)

    def _sequencer(self, sequencer: Sequencer) -> Job:
        engine = self.services.db_engine
        return lambda stop: run_sequencer(sequencer, engine, stop)

    async def run(self, stop: asyncio.Event) -> None:
        await asyncio.gather(*(job(stop) for job in self.jobs))


__all__ = [
    "PayloadCompleter",
    "WebhookSecrets",
    "Worker",
    "build_dispatcher",
    "drop_portraits",
    "every",
]
