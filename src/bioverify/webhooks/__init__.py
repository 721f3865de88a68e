"""Webhooks that are never lost: a durable outbox, Standard Webhooks signatures,
a retrying dispatcher and an egress guard against SSRF.

The lead wires: :func:`enqueue` inside the transaction that ends a session,
:class:`EgressGuard.check_url` at session create, :class:`Dispatcher` in the
worker, and the read helpers for the webhook/deliveries routes.
"""

from bioverify.webhooks.dispatch_config import DispatcherConfig
from bioverify.webhooks.dispatcher import Dispatcher
from bioverify.webhooks.egress import EgressGuard, EgressRefused, system_resolver
from bioverify.webhooks.models import (
    MessageKind,
    MessageStatus,
    WebhookDelivery,
    WebhookMessage,
)
from bioverify.webhooks.outbox import (
    DeliveryView,
    MessageView,
    enqueue,
    final_payload,
    get_message,
    list_deliveries,
    list_messages,
    redeliver,
)
from bioverify.webhooks.retry import Action, Decision, RetryPolicy
from bioverify.webhooks.signing import SignatureError, new_webhook_secret, sign, verify

__all__ = [
    "Action",
    "Decision",
    "DeliveryView",
    "Dispatcher",
    "DispatcherConfig",
    "EgressGuard",
    "EgressRefused",
    "MessageKind",
    "MessageStatus",
    "MessageView",
    "RetryPolicy",
    "SignatureError",
    "WebhookDelivery",
    "WebhookMessage",
    "enqueue",
    "final_payload",
    "get_message",
    "list_deliveries",
    "list_messages",
    "new_webhook_secret",
    "redeliver",
    "sign",
    "system_resolver",
    "verify",
]
