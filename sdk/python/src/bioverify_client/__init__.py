"""Integrator SDK for the bioverify Session API (sync and asyncio).

The ``bioverify-client`` distribution: it needs only httpx, cryptography and
rfc8785, never the server (which re-exports it as ``bioverify.client``).

    from bioverify_client import Client, PermanentError, TransientError, verify_webhook

    with Client("https://verify.example.com", api_key=..., client_id=...,
                client_secret=...) as client:
        session = client.create_session(type="VERIFY", customer_id="user-42",
                                        callback_url="https://example.com/hooks/bioverify")
        # send the user to session.launch_url

Errors say whether to retry (:class:`PermanentError` / :class:`TransientError`,
classified from the service's error catalogue, carried in
:mod:`bioverify_client.catalogue`); transient failures are retried automatically.
Guide: ``docs/sdk.md``.
"""

from __future__ import annotations

from bioverify_client._async import AsyncClient
from bioverify_client._core import Requirement, SessionOptions, SessionType, slc_message
from bioverify_client._sync import Client
from bioverify_client.errors import (
    BioverifyError,
    PermanentError,
    ReceiptVerificationError,
    TransientError,
    VerificationError,
    WaitTimeout,
    WebhookVerificationError,
)
from bioverify_client.models import (
    AuditEntry,
    Checkpoint,
    ConsistencyProof,
    Customer,
    Delivery,
    ErrorRecord,
    Failed,
    IdentityInformation,
    InclusionProof,
    Outcome,
    PublicKey,
    RiskEvaluation,
    Session,
    Succeeded,
)
from bioverify_client.receipts import verify_receipt
from bioverify_client.retry import NO_RETRIES, RetryConfig
from bioverify_client.webhooks import verify_webhook

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
    "IdentityInformation",
    "InclusionProof",
    "Outcome",
    "PermanentError",
    "PublicKey",
    "ReceiptVerificationError",
    "Requirement",
    "RetryConfig",
    "RiskEvaluation",
    "Session",
    "SessionOptions",
    "SessionType",
    "Succeeded",
    "TransientError",
    "VerificationError",
    "WaitTimeout",
    "WebhookVerificationError",
    "slc_message",
    "verify_receipt",
    "verify_webhook",
]
