"""Creating and reading sessions over HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Callable

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import Engine, select

from bioverify.config import Settings
from bioverify.sessions.models import SessionRow
from bioverify.storage.database import session_factory
from bioverify.worker import Worker
from support import Creds, FakeClock, assert_envelope, make_client, serve

CREATE = "/v2/verification-session"


def create(client: httpx.Client, creds: Creds, **fields: object) -> dict[str, object]:
    body = {"type": "ENROLL", **fields}
    response = client.post(CREATE, json=body, headers=creds.headers())
    assert response.status_code == 201, response.text
    return dict(response.json())


def test_created_session_reads_back_pending(app_client: httpx.Client, creds: Creds) -> None:
    made = create(
        app_client, creds, customerId="alice", transactionID="tx-1", productGroupId="pg", uuid="u-1"
    )
    assert made["status"] == "PENDING"
    assert made["type"] == "ENROLL"
    assert made["customerId"] == "alice"
    launch = str(made["launchUrl"])
    assert launch.startswith("http://testserver/capture/")
    token = launch.rsplit("/", 1)[1]
    assert token != made["sessionId"] and len(token) > 43
    got = app_client.get(f"{CREATE}/{made['sessionId']}", headers=creds.headers()).json()
    assert got["status"] == "PENDING"
    assert got["errorCodes"] == [] and got["errors"] == []
    assert got["attemptsLeft"] == 3
    assert got["transactionID"] == "tx-1"
    assert got["productGroupId"] == "pg" and got["uuid"] == "u-1"
    # A new customer has no puid until the enrolment succeeds.
    assert "puid" not in made and got["puid"] is None


def test_register_alias_and_empty_redirect_mean_enroll_without_redirect(
    app_client: httpx.Client, creds: Creds
) -> None:
    made = create(app_client, creds, type="REGISTER", redirectURL="")
    assert made["type"] == "ENROLL"


def test_another_clients_session_is_unknown(
    app_client: httpx.Client, creds: Creds, db_engine: Engine
) -> None:
    made = create(app_client, creds)
    other = make_client(db_engine, name="other")
    response = app_client.get(f"{CREATE}/{made['sessionId']}", headers=other.headers())
    assert_envelope(response, 404, [])
    assert_envelope(app_client.get(f"{CREATE}/{uuid.uuid4()}", headers=creds.headers()), 404)


def test_verify_of_unenrolled_customer_is_404(app_client: httpx.Client, creds: Creds) -> None:
    response = app_client.post(
        CREATE, json={"type": "VERIFY", "customerId": "nobody"}, headers=creds.headers()
    )
    body = assert_envelope(response, 404, [])
    assert "ENROLL" in body["message"]


def test_document_requirement_needs_the_face_too(app_client: httpx.Client, creds: Creds) -> None:
    response = app_client.post(
        CREATE,
        json={"type": "ENROLL", "requirements": ["identity_document"]},
        headers=creds.headers(),
    )
    assert '["face", "identity_document"]' in assert_envelope(response, 400)["message"]
    both = app_client.post(
        CREATE,
        json={"type": "ENROLL", "requirements": ["face", "identity_document"]},
        headers=creds.headers(),
    )
    assert both.status_code == 201, both.text


def test_idempotency_key_replays_the_first_answer(app_client: httpx.Client, creds: Creds) -> None:
    headers = {**creds.headers(), "Idempotency-Key": "create-42"}
    first = app_client.post(CREATE, json={"type": "ENROLL"}, headers=headers)
    second = app_client.post(CREATE, json={"type": "ENROLL"}, headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    clash = app_client.post(CREATE, json={"type": "SIGN-IN"}, headers=headers)
    assert "Idempotency-Key" in assert_envelope(clash, 409, [])["message"]


def test_idempotency_key_over_255_characters_is_400_and_creates_nothing(
    app_client: httpx.Client, creds: Creds, db_engine: Engine
) -> None:
    longest = {**creds.headers(), "Idempotency-Key": "k" * 255}
    assert app_client.post(CREATE, json={"type": "ENROLL"}, headers=longest).status_code == 201
    too_long = {**creds.headers(), "Idempotency-Key": "k" * 256}
    response = app_client.post(CREATE, json={"type": "ENROLL"}, headers=too_long)
    assert "Idempotency-Key" in assert_envelope(response, 400, [])["message"]
    with session_factory(db_engine)() as db:
        assert len(db.scalars(select(SessionRow.id)).all()) == 1


@pytest.mark.parametrize(
    "url", ["ftp://example.test/hook", "https://user:pw@example.test/x", "not a url"]
)
def test_bad_callback_urls_are_refused(app_client: httpx.Client, creds: Creds, url: str) -> None:
    response = app_client.post(
        CREATE, json={"type": "ENROLL", "callback": {"url": url}}, headers=creds.headers()
    )
    assert "callback.url" in assert_envelope(response, 400)["message"]


def test_private_callbacks_are_refused_unless_allowed(
    settings: Settings, make_app: Callable[..., FastAPI], creds: Creds
) -> None:
    strict = settings.with_overrides(allow_private_callbacks=False)
    with serve(make_app(settings=strict)) as client:
        for url in (
            "https://127.0.0.1/hook",
            "https://10.0.0.1/hook",
            "https://169.254.169.254/latest",
            "http://example.test/hook",
        ):
            response = client.post(
                CREATE, json={"type": "ENROLL", "callback": {"url": url}}, headers=creds.headers()
            )
            assert_envelope(response, 400, [])


def test_session_reads_failed_expired_after_ttl(
    app_client: httpx.Client, creds: Creds, clock: FakeClock
) -> None:
    made = create(app_client, creds, sessionExpiry=60)
    clock.advance(61)
    got = app_client.get(f"{CREATE}/{made['sessionId']}", headers=creds.headers()).json()
    assert got["status"] == "FAILED"
    assert got["errorCodes"] == [-8]
    assert got["errors"][0]["name"] == "SESSION_EXPIRED"
    assert got["completedAt"] is not None


def test_the_sweeper_expires_sessions_nobody_calls(
    settings: Settings,
    db_engine: Engine,
    make_app: Callable[..., FastAPI],
    clock: FakeClock,
    creds: Creds,
) -> None:
    fast = settings.with_overrides(sweep_interval_s=0.05)
    app = make_app(settings=fast, run_worker=True, worker_factory=Worker)
    factory = session_factory(db_engine)
    with serve(app) as client:
        made = create(client, creds, sessionExpiry=60)
        clock.advance(61)
        # Wait (bounded) for the worker's sweeper; no client call touches the session.
        ended = threading.Event()
        for _ in range(400):
            with factory() as db:
                row = db.scalar(select(SessionRow).where(SessionRow.id == made["sessionId"]))
                assert row is not None
                if row.status == "FAILED":
                    ended.set()
                    break
            asyncio.run(asyncio.sleep(0.025))
        assert ended.is_set(), "the sweeper did not expire the session"
        assert [c["code"] for c in row.codes] == [-8]
        got = client.get(f"{CREATE}/{made['sessionId']}", headers=creds.headers()).json()
        assert got["status"] == "FAILED" and got["errorCodes"] == [-8]
