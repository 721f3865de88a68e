"""The integrator SDK against the real service: in-process (ASGI) and over real HTTP.

Faults are injected by a transport that wraps the real one, AFTER the server has
processed the request where that matters, so the idempotency of retried creates is
proven against the real store (sessions are counted in the database).
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from fastapi import FastAPI
from sqlalchemy import Engine, func, select
from test_capture_protocol import Capture

from bioverify.client import (
    AsyncClient,
    AuditEntry,
    Client,
    Failed,
    PermanentError,
    ReceiptVerificationError,
    RetryConfig,
    Session,
    TransientError,
    WebhookVerificationError,
    verify_receipt,
    verify_webhook,
)
from bioverify.client.testing import instant_retries
from bioverify.config import Settings
from bioverify.sessions.models import SessionRow
from bioverify.worker import Worker
from support import Creds, Receiver, make_client, serve

sqlite_only = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)


class FaultyTransport(httpx.BaseTransport):
    """Forwards to the real server; the next queued fault applies to each request.

    ``refuse``: fail before sending. ``503``/``500``: the server processes the
    request, then the answer is replaced by an error (a proxy giving up on a slow
    upstream). ``reset``: the server processes it, then the connection drops.
    """

    def __init__(self, faults: list[str]) -> None:
        self.inner = httpx.HTTPTransport()
        self.faults = list(faults)
        self.sent: list[httpx.Request] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(request)
        fault = self.faults.pop(0) if self.faults else None
        if fault == "refuse":
            raise httpx.ConnectError("injected: connection refused", request=request)
        response = self.inner.handle_request(request)
        if fault is None:
            return response
        response.read()
        response.close()
        if fault == "reset":
            raise httpx.ReadError("injected: connection reset by peer", request=request)
        status = int(fault)
        return httpx.Response(
            status,
            headers={"retry-after": "1"} if status == 503 else {},
            json={
                "status": "error",
                "message": "injected",
                "errorCodes": [],
                "requestId": "injected",
            },
        )

    def close(self) -> None:
        self.inner.close()


def sessions_in_store(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.scalar(select(func.count()).select_from(SessionRow)) or 0)


def slc_client(engine: Engine) -> tuple[Creds, Ed25519PrivateKey]:
    key = Ed25519PrivateKey.generate()
    pem = key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    return make_client(engine, name="slc", public_key_pem=pem.decode()), key


@pytest.fixture
def no_sleeping() -> Iterator[list[float]]:
    with instant_retries() as slept:
        yield slept


# ------------------------------------------------------------------ real HTTP, faults


def test_retried_create_opens_exactly_one_session(
    make_app: Callable[..., FastAPI], db_engine: Engine, no_sleeping: list[float]
) -> None:
    creds, key = slc_client(db_engine)
    faults = FaultyTransport(["refuse", "503", "500", "reset"])
    with (
        serve(make_app()) as http,
        Client(
            str(http.base_url),
            api_key=creds.api_key,
            client_id=creds.client_id,
            signing_key=key,
            transport=faults,
            # The budget is about attempts here; a loaded machine must not run it out of time.
            retries=RetryConfig(max_attempts=5, max_total_s=600),
        ) as sdk,
    ):
        session = sdk.create_session(type="ENROLL", transaction_id="order-1")
        # Every attempt after the refused one reached the server; one session exists.
        assert sessions_in_store(db_engine) == 1
        assert sdk.get_session(session.session_id).transaction_id == "order-1"
    creates = [r for r in faults.sent if r.method == "POST"]
    assert len(creates) == 5
    assert len({r.headers["idempotency-key"] for r in creates}) == 1
    assert len({r.headers["x-request-id"] for r in creates}) == 5  # fresh SLC each time
    assert 1.0 in no_sleeping  # the 503's Retry-After was honoured
    assert session.status == "PENDING" and session.launch_url
    assert session.expires_at is not None and session.expires_at > dt.datetime.now(dt.UTC)


@sqlite_only
def test_exhausted_retries_raise_transient_and_the_key_still_finds_the_session(
    make_app: Callable[..., FastAPI], db_engine: Engine, creds: Creds, no_sleeping: list[float]
) -> None:
    faults = FaultyTransport(["503", "503", "503"])
    with (
        serve(make_app()) as http,
        Client(
            str(http.base_url),
            api_key=creds.api_key,
            client_id=creds.client_id,
            client_secret=creds.client_secret,
            transport=faults,
            retries=RetryConfig(max_attempts=3, max_total_s=600),
        ) as sdk,
    ):
        with pytest.raises(TransientError) as caught:
            sdk.create_session(type="ENROLL", idempotency_key="order-2")
        assert caught.value.status == 503 and caught.value.request_retryable
        # The caller retries later with the same key: the one session comes back.
        again = sdk.create_session(type="ENROLL", idempotency_key="order-2")
    assert len(faults.sent) == 4
    assert sessions_in_store(db_engine) == 1
    assert again.launch_url


@sqlite_only
def test_bad_credentials_and_bad_requests_raise_permanent_after_one_request(
    make_app: Callable[..., FastAPI], creds: Creds, no_sleeping: list[float]
) -> None:
    with serve(make_app()) as http:
        url = str(http.base_url)
        wrong = FaultyTransport([])
        with (
            Client(
                url,
                api_key=creds.api_key,
                client_id=creds.client_id,
                client_secret="bvs_wrong",
                transport=wrong,
            ) as sdk,
            pytest.raises(PermanentError) as unauthorized,
        ):
            sdk.create_session(type="ENROLL")
        assert unauthorized.value.status == 401
        assert unauthorized.value.request_id
        assert len(wrong.sent) == 1

        bad = FaultyTransport([])
        with (
            Client(
                url,
                api_key=creds.api_key,
                client_id=creds.client_id,
                client_secret=creds.client_secret,
                transport=bad,
            ) as sdk,
            pytest.raises(PermanentError) as invalid,
        ):
            sdk.create_session(type="VERIFY_ULTRA")  # VERIFY_ULTRA needs a customer
        assert invalid.value.status == 400 and "customerId" in invalid.value.message
        assert len(bad.sent) == 1
    assert no_sleeping == []


# ------------------------------------------------------------------ real webhooks


@pytest.fixture
def live(settings: Settings, make_app: Callable[..., FastAPI]) -> Callable[..., Any]:
    def start() -> Any:
        fast = settings.with_overrides(webhook_test_schedule=True, sweep_interval_s=0.1)
        return serve(
            make_app(
                settings=fast,
                run_worker=True,
                worker_factory=Worker,
                clock=lambda: dt.datetime.now(dt.UTC),
            )
        )

    return start


def sdk_for(http: httpx.Client, creds: Creds) -> Client:
    return Client(
        str(http.base_url),
        api_key=creds.api_key,
        client_id=creds.client_id,
        client_secret=creds.client_secret,
    )


def camera_failure(http: httpx.Client, sdk: Client, receiver: Receiver) -> Session:
    """A real session that the capture client ends with -7 (CAMERA_FAIL)."""
    session = sdk.create_session(
        type="ENROLL", liveness="passive", callback_url=receiver.url, transaction_id="tx-sdk"
    )
    assert session.launch_url is not None
    capture = Capture(http, session.launch_url)
    assert capture.load().status_code == 200
    assert capture.events(-7).json()["status"] == "FAILED"
    return session


@sqlite_only
def test_real_webhooks_verify_and_tampering_fails(live: Callable[..., Any], creds: Creds) -> None:
    with Receiver() as receiver, live() as http, sdk_for(http, creds) as sdk:
        session = camera_failure(http, sdk, receiver)
        [hook] = receiver.wait_for(1)
        payload = verify_webhook(hook.body, hook.headers, creds.webhook_secret)
        assert payload == json.loads(hook.body)
        assert payload["sessionId"] == session.session_id
        # v1a: the service's Ed25519 signature checks out against its JWKS.
        assert verify_webhook(hook.body, hook.headers, sdk.jwks()) == payload

        tampered = hook.body.replace(b'"FAILED"', b'"SUCCESS"')
        assert tampered != hook.body
        other = "whsec_" + base64.b64encode(b"x" * 32).decode()
        for body, secret, now in (
            (tampered, creds.webhook_secret, None),
            (hook.body, other, None),
            (hook.body, creds.webhook_secret, time.time() + 301),
        ):
            with pytest.raises(WebhookVerificationError):
                verify_webhook(body, hook.headers, secret, now=now)

        outcome = Session.from_json(payload).outcome()
        assert isinstance(outcome, Failed) and outcome.name == "CAMERA_FAIL"
        assert outcome.should_retry_with_new_session and outcome.remedy

        # Polling fallback and the typed outcome agree with the webhook.
        assert sdk.wait_for_result(session.session_id, timeout=5).status == "FAILED"
        assert sdk.get_webhook_payload(session.session_id)["audit"] == payload["audit"]
        assert isinstance(sdk.outcome(session.session_id), Failed)
        # Redelivery keeps the webhook-id.
        assert sdk.redeliver(session.session_id) == hook.headers["webhook-id"]
        second = receiver.wait_for(2)[1]
        assert second.headers["webhook-id"] == hook.headers["webhook-id"]
        deliveries = sdk.list_deliveries(session.session_id)
        assert deliveries and deliveries[0].webhook_id == hook.headers["webhook-id"]


@sqlite_only
def test_receipt_of_a_real_final_webhook_verifies_and_an_altered_byte_fails(
    live: Callable[..., Any], creds: Creds
) -> None:
    with Receiver() as receiver, live() as http, sdk_for(http, creds) as sdk:
        camera_failure(http, sdk, receiver)
        payload = verify_webhook(
            receiver.wait_for(1)[0].body, receiver.received[0].headers, creds.webhook_secret
        )
        jwks = sdk.jwks()
        checkpoint = sdk.audit_checkpoint()
        entry = sdk.audit_entry(payload["audit"]["index"])
        assert entry.entry["event"] == "session:state:ended"

        verify_receipt(payload, entry, jwks, checkpoint.key_name, checkpoint.origin)
        verify_receipt(
            payload["audit"], entry.leaf_hash, jwks, checkpoint.key_name, checkpoint.origin
        )

        leaf = bytearray(entry.leaf_hash)
        leaf[0] ^= 0x01
        altered_body = AuditEntry(entry.index, b"", {**entry.entry, "event": "session:x"})
        note = payload["audit"]["checkpoint"]
        flipped_note = {**payload["audit"], "checkpoint": note.replace("\n", "\n ", 1)}
        for receipt, evidence in (
            (payload, bytes(leaf)),
            (payload, altered_body),
            (flipped_note, entry),
        ):
            with pytest.raises(ReceiptVerificationError):
                verify_receipt(receipt, evidence, jwks, checkpoint.key_name, checkpoint.origin)
        with pytest.raises(ReceiptVerificationError):
            verify_receipt(payload, entry, jwks, checkpoint.key_name, "another.origin/log")


# ------------------------------------------------------------------ in-process (ASGI)


@sqlite_only
def test_async_client_in_process_reads_typed_answers_and_raises_classified_errors(
    make_app: Callable[..., FastAPI], db_engine: Engine, creds: Creds
) -> None:
    app = make_app()
    signer, key = slc_client(db_engine)
    key_only = make_client(db_engine, name="legacy", key_only=True)

    def sdk(**auth: Any) -> AsyncClient:
        return AsyncClient("http://testserver", transport=httpx.ASGITransport(app=app), **auth)

    async def scenario() -> None:
        async with sdk(
            api_key=creds.api_key, client_id=creds.client_id, client_secret=creds.client_secret
        ) as client:
            made = await client.create_session(
                type="ENROLL", customer_id="cust-1", transaction_id="t-1", session_expiry=600
            )
            assert made.launch_url and made.launch_url.startswith("http://testserver/capture/")
            read = await client.get_session(made.session_id)
            assert (read.status, read.customer_id, read.attempts_left) == ("PENDING", "cust-1", 3)
            assert read.expires_at is not None and read.created_at is not None
            assert (read.expires_at - read.created_at).total_seconds() == pytest.approx(600)
            assert read.outcome() is None
            with pytest.raises(PermanentError) as still_open:
                await client.get_webhook_payload(made.session_id)
            assert still_open.value.status == 409
            with pytest.raises(PermanentError) as unknown:
                await client.get_customer("nobody")
            assert unknown.value.status == 404
            assert (await client.public_key()).alg == "RSA-OAEP-256+A256GCM"
            assert (await client.jwks())["keys"][0]["crv"] == "Ed25519"

        # SLC signs the query string too; another client's sessions are unknown.
        async with sdk(
            api_key=signer.api_key, client_id=signer.client_id, signing_key=key
        ) as client:
            mine = await client.create_session(type="SIGN-IN")
            assert [e.index for e in await client.audit_entries(start=0)]
            with pytest.raises(PermanentError) as foreign:
                await client.get_session(made.session_id)
            assert foreign.value.status == 404
            assert (await client.get_session(mine.session_id)).type == "SIGN-IN"

        async with sdk(api_key=key_only.api_key) as client:
            assert (await client.create_session(type="ENROLL")).status == "PENDING"
        async with sdk(api_key=creds.api_key) as client:
            with pytest.raises(PermanentError) as key_alone:
                await client.create_session(type="ENROLL")
            assert key_alone.value.status == 401

    asyncio.run(scenario())
    assert sessions_in_store(db_engine) == 3
