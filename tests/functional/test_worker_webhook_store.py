"""The real worker's store work around webhooks: the clients' secrets are read per
claimed batch and the kept portraits dropped after delivery, both off the event loop
(a blocked loop stalls every send); a rotation signs the next webhooks; a secret that
does not open fails only its client's attempts."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import Engine, event, text, update
from standardwebhooks.webhooks import Webhook
from test_capture_protocol import Capture
from test_webhooks_e2e import fail_session

from bioverify.accounts.models import Client
from bioverify.accounts.secretbox import KeyRingSealer
from bioverify.config import Settings
from bioverify.crypto.keyring import KeyRing
from bioverify.sessions.capture_views import portrait_aad
from bioverify.storage.database import session_factory, transaction
from bioverify.webhooks.signing import new_webhook_secret
from bioverify.worker import Worker
from support import Creds, Receiver, make_client, on_loop, serve

CREATE = "/v2/verification-session"


@pytest.fixture
def live(settings: Settings, make_app: Callable[..., FastAPI]) -> Iterator[tuple[Any, Any]]:
    fast = settings.with_overrides(webhook_test_schedule=True, sweep_interval_s=0.1)
    app = make_app(
        settings=fast, run_worker=True, worker_factory=Worker, clock=lambda: dt.datetime.now(dt.UTC)
    )
    with serve(app) as client:
        yield app, client


def wait_until(check: Callable[[], bool], timeout: float = 20) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)  # bounded poll for the worker's commit
    return True


def set_secrets(engine: Engine, client_id: str, sealed: list[str]) -> None:
    with transaction(session_factory(engine)) as db:
        db.execute(update(Client).where(Client.id == client_id).values(webhook_secrets=sealed))


def test_secrets_and_portrait_drops_stay_off_the_event_loop(
    live: tuple[Any, httpx.Client], creds: Creds, db_engine: Engine
) -> None:
    app, client = live
    seen: list[tuple[str, bool]] = []
    lock = threading.Lock()

    def watch(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        flat = " ".join(statement.split())
        if "clients.webhook_secrets" in flat and "WHERE clients.id" in flat:
            kind = "secrets"
        elif flat.startswith("UPDATE sessions SET portrait"):
            kind = "portrait"
        else:
            return
        with lock:
            seen.append((kind, on_loop()))

    event.listen(db_engine, "before_cursor_execute", watch)
    try:
        with Receiver() as receiver:
            made = client.post(
                CREATE,
                json={"type": "ENROLL", "callback": {"url": receiver.url}, "sendImages": True},
                headers=creds.headers(),
            ).json()
            session_id = made["sessionId"]
            # A kept portrait, as a successful capture with sendImages leaves it.
            cipher = app.state.services.biometrics.cipher
            blob = cipher.encrypt(creds.client_id, b"\xff\xd8portrait", portrait_aad(session_id))
            with db_engine.begin() as conn:
                conn.execute(
                    text("UPDATE sessions SET portrait = :p WHERE id = :id"),
                    {"p": blob, "id": session_id},
                )
            capture = Capture(client, made["launchUrl"])
            assert capture.load().status_code == 200
            assert capture.events(-7).json()["status"] == "FAILED"
            other = fail_session(client, creds, receiver.url)
            hooks = {h.json()["sessionId"]: h for h in receiver.wait_for(2)}
            assert set(hooks) == {session_id, other}
            assert hooks[session_id].json()["images"][0]["type"] == "portrait"
            for hook in hooks.values():
                Webhook(creds.webhook_secret).verify(hook.body, hook.headers)

            def dropped() -> bool:
                with db_engine.connect() as conn:
                    return (
                        conn.scalar(
                            text("SELECT portrait FROM sessions WHERE id = :id"),
                            {"id": session_id},
                        )
                        is None
                    )

            assert wait_until(dropped)
    finally:
        event.remove(db_engine, "before_cursor_execute", watch)
    kinds = {kind for kind, _ in seen}
    assert kinds == {"secrets", "portrait"}
    assert [s for s in seen if s[1]] == []  # none on the event loop's thread


def test_a_rotation_signs_the_next_webhooks_with_the_new_set(
    live: tuple[Any, httpx.Client], creds: Creds, db_engine: Engine, keyring: KeyRing
) -> None:
    _, client = live
    sealer = KeyRingSealer(keyring)
    old, new = creds.webhook_secret, new_webhook_secret()
    with Receiver() as receiver:
        fail_session(client, creds, receiver.url)
        [first] = receiver.wait_for(1)
        Webhook(old).verify(first.body, first.headers)
        # Rotated: the new secret first, the old one still signing during the roll-over.
        set_secrets(
            db_engine,
            creds.client_id,
            [sealer.seal(creds.client_id, new), sealer.seal(creds.client_id, old)],
        )
        fail_session(client, creds, receiver.url)
        second = receiver.wait_for(2)[1]
        Webhook(new).verify(second.body, second.headers)
        Webhook(old).verify(second.body, second.headers)
        assert second.headers["webhook-signature"].count("v1,") == 2
        # The old one withdrawn.
        set_secrets(db_engine, creds.client_id, [sealer.seal(creds.client_id, new)])
        fail_session(client, creds, receiver.url)
        third = receiver.wait_for(3)[2]
        Webhook(new).verify(third.body, third.headers)
        assert third.headers["webhook-signature"].count("v1,") == 1
        with pytest.raises(Exception, match="No matching signature"):
            Webhook(old).verify(third.body, third.headers)


def test_a_secret_that_does_not_open_fails_only_its_clients_attempts(
    live: tuple[Any, httpx.Client], creds: Creds, db_engine: Engine, keyring: KeyRing
) -> None:
    _, client = live
    broken = make_client(db_engine, name="broken")
    # Sealed for another client: it does not authenticate under this client's id.
    sealed = KeyRingSealer(keyring).seal(creds.client_id, broken.webhook_secret)
    set_secrets(db_engine, broken.client_id, [sealed])
    with Receiver() as receiver:
        failing = fail_session(client, broken, receiver.url)
        fine = fail_session(client, creds, receiver.url)
        [hook] = receiver.wait_for(1)
        assert hook.json()["sessionId"] == fine
        Webhook(creds.webhook_secret).verify(hook.body, hook.headers)

        def attempts() -> list[Any]:
            got = client.get(f"{CREATE}/{failing}/deliveries", headers=broken.headers())
            return list(got.json()["deliveries"])

        assert wait_until(lambda: bool(attempts()))
        first = attempts()[0]
        assert first["httpStatus"] is None
        assert first["error"].startswith("could not sign the webhook")
        assert all(h.json()["sessionId"] == fine for h in receiver.received)
