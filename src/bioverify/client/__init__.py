"""Integrator SDK for the bioverify Session API (sync and asyncio).

    from bioverify.client import Client, PermanentError, TransientError, verify_webhook

    with Client("https://verify.example.com", api_key=..., client_id=...,
                client_secret=...) as client:
        session = client.create_session(type="VERIFY", customer_id="user-42",
                                        callback_url="https://example.com/hooks/bioverify")
        # send the user to session.launch_url

Errors say whether to retry (:class:`PermanentError` / :class:`TransientError`,
classified from the service's error catalogue); transient failures are retried
automatically. Imports nothing from the server except the error catalogue and the
pure audit verifiers. Guide: ``docs/sdk.md``.
"""

from __future__ import annotations

from bioverify.client._async import AsyncClient
from bioverify.client._core import SessionOptions, SessionType
from bioverify.client._sync import Client
from bioverify.client.errors import (
    BioverifyError,
    PermanentError,
    ReceiptVerificationError,
    TransientError,
    VerificationError,
    WaitTimeout,
    WebhookVerificationError,
)
from bioverify.client.models import (
    AuditEntry,
    Checkpoint,
    ConsistencyProof,
    Customer,
    Delivery,
    ErrorRecord,
    Failed,
    InclusionProof,
    Outcome,
    PublicKey,
    Session,
    Succeeded,
)
from bioverify.client.receipts import verify_receipt
from bioverify.client.retry import NO_RETRIES, RetryConfig
from bioverify.client.webhooks import verify_webhook

__all__ = [
    "NO_RETRIES",
    "AsyncClient",
    "AuditEntry",
    "BioverifyError",
    "Checkpoint",
    "Client",
    "ConsistencyProof",
    "Customer",
    "Delivery",
    "ErrorRecord",
    "Failed",
    "InclusionProof",
    "Outcome",
    "PermanentError",
    "PublicKey",
    "ReceiptVerificationError",
    "RetryConfig",
    "Session",
    "SessionOptions",
    "SessionType",
    "Succeeded",
    "TransientError",
    "VerificationError",
    "WaitTimeout",
    "WebhookVerificationError",
    "verify_receipt",
    "verify_webhook",
]
