"""How a dispatcher is set up: its collaborators and limits, in one object.

Shared by the three parts of the dispatcher (claiming, sending and the loop), so a
setting means the same thing in each and the dispatcher's constructor stays short.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
import secrets
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bioverify.storage.base import utcnow
from bioverify.webhooks.egress import EgressGuard
from bioverify.webhooks.outbox import MessageView
from bioverify.webhooks.retry import RetryPolicy

#: Called with a message that was delivered (``on_delivered``) or dead-lettered (``on_dead``).
Callback = Callable[[MessageView], Awaitable[None] | None]

#: Called off the event loop, in the recording thread, with the messages a committed
#: transaction delivered or ended (dead-lettered, stopped): work on them all at once.
Recorded = Callable[[Sequence[MessageView]], None]

#: Client ids -> each one's webhook secrets, or the exception that makes them unusable.
SecretsForMany = Callable[[Collection[str]], Mapping[str, Sequence[str] | Exception]]

#: ``(client id, stored callback headers) -> headers to send`` (they are sealed at rest).
OpenHeaders = Callable[[str, dict[str, str]], dict[str, str]]

#: Given claimed ``(webhook id, payload)`` pairs, the payloads to send instead, by id.
Prepare = Callable[[list[tuple[str, str]]], dict[str, str]]


def _no_signing_keys() -> Sequence[Ed25519PrivateKey]:
    return ()


def _new_worker_id() -> str:
    return "w_" + secrets.token_hex(6)


def _new_rng() -> random.Random:
    return random.Random()  # noqa: S311 -- retry jitter, not security


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class DispatcherConfig:
    """Everything a :class:`~bioverify.webhooks.dispatcher.Dispatcher` needs besides
    its database engine. Only ``secrets_for`` has no default."""

    #: Client id -> its webhook secrets (HMAC signatures, one per secret). Called off
    #: the event loop, in the claiming thread, once per client of each claimed batch
    #: (unless ``secrets_for_many`` is given). A message is signed with the secrets
    #: read just after its claim committed, so a rotation applies to every claim taken
    #: after it; the claims already taken (sends in flight, at most a batch waiting for
    #: a slot) still carry the old set. An exception is that message's failed attempt
    #: ("could not sign"), never the loop's.
    secrets_for: Callable[[str], Sequence[str]]
    #: The same for a claimed batch's clients in one go (one query), used instead of
    #: ``secrets_for`` when given.
    secrets_for_many: SecretsForMany | None = None
    #: Ed25519 keys that also sign each webhook (none: HMAC only).
    signing_keys: Callable[[], Sequence[Ed25519PrivateKey]] = _no_signing_keys
    policy: RetryPolicy = dataclasses.field(default_factory=RetryPolicy)
    #: Vets every address a webhook connects to (the default refuses private ones).
    guard: EgressGuard = dataclasses.field(default_factory=EgressGuard)
    #: Sends in flight at once, and the most claimed in one go.
    concurrency: int = 64
    #: Sends in flight to one endpoint (host and port) at once.
    per_endpoint_limit: int = 16
    clock: Callable[[], dt.datetime] = utcnow
    on_dead: Callback | None = None
    on_delivered: Callback | None = None
    #: Batch work on what a transaction delivered or ended, off the event loop (see
    #: :data:`Recorded`); runs before ``on_delivered`` and ``on_dead``.
    on_recorded: Recorded | None = None
    #: How long a claim is this worker's before another worker may take the message.
    lease: dt.timedelta = dt.timedelta(minutes=2)
    poll_interval: float = 0.25
    #: At stop, how long in-flight sends may finish before their claims are handed back.
    shutdown_grace: float = 10.0
    #: The most of a receiver's answer that is read.
    max_response_bytes: int = 64 * 1024
    worker_id: str = dataclasses.field(default_factory=_new_worker_id)
    rng: random.Random = dataclasses.field(default_factory=_new_rng)
    #: Completes payloads finished only at send time (the audit receipt).
    prepare: Prepare | None = None
    #: Opens the sealed callback headers; ``None``: stored headers are plain.
    open_headers: OpenHeaders | None = None
    #: The longest one attempt may take; default: 30 s or half the lease if shorter.
    attempt_deadline: dt.timedelta | None = None
    #: How long a claim over an endpoint's slot cap waits before it is due again.
    endpoint_defer: dt.timedelta = dt.timedelta(seconds=1)

    def __post_init__(self) -> None:
        if self.deadline >= self.lease:
            raise ValueError("attempt_deadline must be shorter than the lease")

    @property
    def deadline(self) -> dt.timedelta:
        """The longest one attempt may take. Every attempt ends (whatever a receiver
        trickles) well before its lease does, so no other claimer can start a second
        attempt of a message still being sent."""
        return self.attempt_deadline or min(dt.timedelta(seconds=30), self.lease / 2)


__all__ = [
    "Callback",
    "DispatcherConfig",
    "OpenHeaders",
    "Prepare",
    "Recorded",
    "SecretsForMany",
]
