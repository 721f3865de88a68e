"""Type-checked, never run: how an integrator uses the SDK's public API.

``mypy --strict`` must pass on this file (tests/typing/test_sdk_typing.py). The
``# type: ignore[...]`` lines are misuse the SDK's types must reject: strict mode
warns about unused ignores, so if the types ever got looser, the check fails.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from bioverify.client import (
    AsyncClient,
    AuditEntry,
    BioverifyError,
    Checkpoint,
    Client,
    Customer,
    Failed,
    Outcome,
    PermanentError,
    RetryConfig,
    Session,
    Succeeded,
    TransientError,
    WebhookVerificationError,
    verify_receipt,
    verify_webhook,
)
from bioverify.client.testing import instant_retries


def start_verification(client: Client, user_id: str) -> str:
    session: Session = client.create_session(
        type="VERIFY",
        customer_id=user_id,
        callback_url="https://example.com/hooks",
        callback_headers={"X-Tenant": "t1"},
        session_expiry=dt.timedelta(minutes=10),
        liveness="active",
        transaction_id="order-1",
        idempotency_key="order-1",
    )
    expires: dt.datetime | None = session.expires_at
    assert expires is not None
    if session.launch_url is None:
        raise RuntimeError("no launch URL")
    return session.launch_url


def decide(outcome: Outcome | None) -> str:
    match outcome:
        case Succeeded(session=session):
            return f"welcome {session.customer_id}"
        case Failed(name=name, remedy=remedy) as failed:
            if failed.should_retry_with_new_session:
                return f"{name}: {remedy}"
            return f"denied: {failed.code}"
        case None:
            return "still open"


def handle_errors(client: Client, session_id: str) -> int | None:
    try:
        return client.get_session(session_id).attempts_left
    except TransientError as exc:
        wait: float | None = exc.retry_after
        return None if wait is None else int(wait)
    except PermanentError as exc:
        codes: tuple[int, ...] = exc.error_codes
        status: int | None = exc.status
        remedy: str | None = exc.remedy
        return len(codes) + (status or 0) + len(remedy or "")


def receive(
    body: bytes, headers: Mapping[str, str], secret: str, jwks: Mapping[str, Any]
) -> dict[str, Any]:
    try:
        return verify_webhook(body, headers, secret, tolerance=300)
    except WebhookVerificationError:
        return verify_webhook(body, headers, jwks)


def check_receipt(client: Client, payload: Mapping[str, Any], jwks: Mapping[str, Any]) -> None:
    checkpoint: Checkpoint = client.audit_checkpoint()
    entry: AuditEntry = client.audit_entry(int(payload["audit"]["index"]))
    verify_receipt(payload, entry, jwks, checkpoint.key_name, checkpoint.origin)


async def poll(client: AsyncClient, session_id: str) -> Outcome | None:
    session = await client.wait_for_result(session_id, timeout=120, poll=2.0)
    customer: Customer = await client.get_customer(session.customer_id or "")
    assert customer.enrolled
    return session.outcome()


def configured() -> Client:
    with instant_retries() as slept:
        delays: list[float] = slept
        assert not delays
    return Client(
        "https://verify.example.com",
        api_key="k",
        client_id="c",
        client_secret="s",
        retries=RetryConfig(max_attempts=3, max_total_s=20),
        timeout=5.0,
    )


def misuse(client: Client) -> None:
    client.create_session(type="ENROL")  # type: ignore[arg-type]
    client.create_session(type="ENROLL", customer="x")  # type: ignore[call-arg]
    client.create_session(type="ENROLL", session_expiry="15m")  # type: ignore[arg-type]
    client.get_session(42)  # type: ignore[arg-type]
    verify_webhook({"parsed": "json"}, {}, "whsec_x")  # type: ignore[arg-type]
    error: BioverifyError = PermanentError("x")
    error.status = "401"  # type: ignore[assignment]
