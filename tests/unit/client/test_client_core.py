"""The sans-IO core and both clients over httpx.MockTransport: signing, bodies, retries."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
from collections.abc import Callable, Iterator

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from bioverify.accounts.service import slc_message as server_slc_message
from bioverify_client import (
    AsyncClient,
    Client,
    PermanentError,
    RetryConfig,
    Session,
    TransientError,
    WaitTimeout,
)
from bioverify_client._core import Call, Credentials, create_session_body, path_segment, prepare
from bioverify_client.testing import instant_retries

BASE = "https://verify.example"
SESSION_ID = "7f1d2c1e-8d7a-4a35-9a3c-1b1e1f0a2b3c"
KEY = Ed25519PrivateKey.generate()


def view(status: str = "PENDING", codes: list[int] | None = None) -> dict[str, object]:
    return {
        "sessionId": SESSION_ID,
        "type": "ENROLL",
        "status": status,
        "customerId": None,
        "puid": None,
        "transactionID": None,
        "createdAt": "2025-01-01T00:00:00.000Z",
        "expiresAt": "2025-01-01T00:15:00.000Z",
        "completedAt": None,
        "attemptsLeft": 3,
        "errorCodes": codes or [],
        "errors": [],
        "message": "",
        "result": {},
    }


def error(
    status: int, codes: list[int] | None = None, headers: dict[str, str] | None = None
) -> httpx.Response:
    return httpx.Response(
        status,
        headers=headers,
        json={
            "status": "error",
            "message": f"status {status}",
            "errorCodes": codes or [],
            "requestId": "r",
        },
    )


class Script:
    """A MockTransport handler answering from a list (then 200 with ``last``)."""

    def __init__(
        self,
        answers: list[httpx.Response | Exception],
        last: Callable[[httpx.Request], httpx.Response] | None = None,
    ) -> None:
        self.answers = answers
        self.last = last or (lambda _r: httpx.Response(200, json=view()))
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.answers:
            answer = self.answers.pop(0)
            if isinstance(answer, Exception):
                raise answer
            return answer
        return self.last(request)


def client(script: Script, retries: RetryConfig | None = None) -> Client:
    return Client(
        BASE,
        api_key="bvk_k",
        client_id="cid",
        client_secret="bvs_s",
        transport=httpx.MockTransport(script),
        retries=retries,
    )


@pytest.fixture(autouse=True)
def no_sleeping() -> Iterator[list[float]]:
    with instant_retries() as slept:
        yield slept


def _never_sent(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"prepare() must not send {request.method} {request.url}")


@settings(deadline=None)  # a loaded machine must not fail a test of correctness
@given(
    method=st.sampled_from(["GET", "POST", "DELETE"]),
    segment=st.text(min_size=1, max_size=20),
    start=st.integers(0, 10**6),
    body=st.binary(max_size=200),
)
def test_slc_signature_verifies_with_the_servers_message(
    method: str, segment: str, start: int, body: bytes
) -> None:
    creds = Credentials("bvk_k", "cid", signing_key=KEY)
    # A transport of its own: the request is only prepared, never sent, and a default
    # client would load the system CA bundle on every one of thousands of examples.
    with httpx.Client(base_url=BASE, transport=httpx.MockTransport(_never_sent)) as http:
        call: Call[None] = Call(
            method,
            f"/v2/customers/{path_segment(segment)}",
            lambda _d: None,
            params={"start": start},
            body=body,
        )
        request = prepare(http, call, creds)
    headers = request.headers
    assert "clientsecret" not in headers
    signature = base64.urlsafe_b64decode(headers["slc"] + "=" * (-len(headers["slc"]) % 4))
    message = server_slc_message(
        method, request.url.raw_path.decode(), headers["x-timestamp"], headers["x-request-id"], body
    )
    KEY.public_key().verify(signature, message)  # raises if the server would refuse it


def test_create_session_body_uses_wire_names_and_leaves_out_absent_options() -> None:
    body = create_session_body(
        "VERIFY",
        {
            "customer_id": "u-1",
            "callback_url": "https://h/x",
            "callback_headers": {"A": "b"},
            "session_expiry": dt.timedelta(minutes=5),
            "enable_desktop": False,
            "transaction_id": "tx",
            "send_event_webhooks": True,
            "external_uuid": "u",
        },
    )
    assert body == {
        "type": "VERIFY",
        "customerId": "u-1",
        "callback": {"url": "https://h/x", "headers": {"A": "b"}},
        "sessionExpiry": 300,
        "enableDesktop": False,
        "transactionID": "tx",
        "sendEventWebhooks": True,
        "uuid": "u",
    }
    with pytest.raises(ValueError, match="callback_url"):
        create_session_body("ENROLL", {"callback_headers": {"A": "b"}})


def test_retried_create_resends_identical_bytes_and_key_with_fresh_signatures(
    no_sleeping: list[float],
) -> None:
    made = {**view(), "launchUrl": "https://verify.example/capture/tok"}
    script = Script(
        [error(503, headers={"retry-after": "3"}), httpx.ConnectError("reset"), error(500)],
        last=lambda _r: httpx.Response(201, json=made),
    )
    with Client(
        BASE,
        api_key="bvk_k",
        client_id="cid",
        signing_key=KEY,
        transport=httpx.MockTransport(script),
        retries=RetryConfig(max_attempts=5),
    ) as sdk:
        session = sdk.create_session(type="ENROLL", transaction_id="tx")
    assert session.launch_url == "https://verify.example/capture/tok"
    assert len(script.requests) == 4
    keys = {r.headers["idempotency-key"] for r in script.requests}
    bodies = {r.content for r in script.requests}
    request_ids = {r.headers["x-request-id"] for r in script.requests}
    assert len(keys) == 1 and len(bodies) == 1 and len(request_ids) == 4
    assert json.loads(next(iter(bodies))) == {"type": "ENROLL", "transactionID": "tx"}
    assert no_sleeping[0] == 3.0  # Retry-After honoured


def test_given_idempotency_key_is_sent() -> None:
    made = {**view(), "launchUrl": "u"}
    script = Script([], last=lambda _r: httpx.Response(201, json=made))
    with client(script) as sdk:
        sdk.create_session(type="ENROLL", idempotency_key="order-17")
    assert script.requests[0].headers["idempotency-key"] == "order-17"


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409])
def test_permanent_errors_raise_after_one_request(status: int) -> None:
    script = Script([error(status)])
    with client(script) as sdk, pytest.raises(PermanentError) as caught:
        sdk.get_session(SESSION_ID)
    assert len(script.requests) == 1
    assert caught.value.status == status


def test_exhausted_budget_raises_the_last_transient_error() -> None:
    script = Script([error(503)] * 10)
    with (
        client(script, retries=RetryConfig(max_attempts=3)) as sdk,
        pytest.raises(TransientError) as caught,
    ):
        sdk.get_session(SESSION_ID)
    assert len(script.requests) == 3
    assert caught.value.status == 503


def test_key_only_client_sends_the_key_alone() -> None:
    script = Script([])
    with Client(BASE, api_key="bvk_k", transport=httpx.MockTransport(script)) as sdk:
        sdk.get_session(SESSION_ID)
    sent = {k.lower() for k in script.requests[0].headers}
    assert "x_api_key" in sent
    assert not sent & {"clientid", "clientsecret", "slc"}


def test_public_routes_send_no_credentials() -> None:
    script = Script([], last=lambda _r: httpx.Response(200, json={"keys": []}))
    with client(script) as sdk:
        assert sdk.jwks() == {"keys": []}
    assert "x_api_key" not in script.requests[0].headers


def test_ids_cannot_escape_their_path_segment() -> None:
    script = Script([])
    with client(script) as sdk:
        sdk.get_session("../../v2/audit/entries")
    assert script.requests[0].url.raw_path == (
        b"/v2/verification-session/..%2F..%2Fv2%2Faudit%2Fentries"
    )


def test_erase_is_done_when_a_retry_finds_the_customer_gone() -> None:
    # The first DELETE was processed but its answer lost: the retry's 404 is success.
    script = Script([httpx.ReadError("reset"), error(404)])
    with client(script) as sdk:
        sdk.erase_customer("c-1")  # no error: the customer is gone, as asked
    assert [r.method for r in script.requests] == ["DELETE", "DELETE"]
    with client(Script([error(404)])) as sdk, pytest.raises(PermanentError):
        sdk.erase_customer("c-1")


def test_wait_for_result_polls_with_backoff_until_finished(no_sleeping: list[float]) -> None:
    script = Script(
        [httpx.Response(200, json=view("PENDING")), httpx.Response(200, json=view("IN_PROGRESS"))],
        last=lambda _r: httpx.Response(200, json=view("FAILED", [-7])),
    )
    with client(script) as sdk:
        session = sdk.wait_for_result(SESSION_ID, timeout=60, poll=2)
    assert session.status == "FAILED"
    assert no_sleeping == [2, 3]


def test_wait_for_result_times_out_with_a_transient_timeout() -> None:
    script = Script([], last=lambda _r: httpx.Response(200, json=view("IN_PROGRESS")))
    with client(script) as sdk, pytest.raises(WaitTimeout) as caught:
        sdk.wait_for_result(SESSION_ID, timeout=10, poll=1)
    assert isinstance(caught.value, TransientError)
    assert caught.value.session_id == SESSION_ID
    assert 4 <= len(script.requests) <= 8  # backed off, not a busy loop


def test_async_client_retries_and_classifies_like_the_sync_one() -> None:
    script = Script(
        [error(503), httpx.ConnectTimeout("slow")],
        last=lambda _r: httpx.Response(200, json=view("SUCCESS")),
    )

    async def run() -> Session:
        async with AsyncClient(
            BASE,
            api_key="bvk_k",
            client_id="cid",
            client_secret="s",
            transport=httpx.MockTransport(script),
        ) as sdk:
            found = await sdk.get_session(SESSION_ID)
            script.answers.append(error(401))
            with pytest.raises(PermanentError):
                await sdk.get_session(SESSION_ID)
            return found

    session = asyncio.run(run())
    assert session.status == "SUCCESS"
    assert len(script.requests) == 4


def test_credentials_never_show_secrets() -> None:
    creds = Credentials("bvk_secret_key", "cid", client_secret="bvs_secret")
    assert "secret" not in repr(creds)
    sdk = Client(BASE, api_key="bvk_secret_key", client_id="cid", client_secret="bvs_secret")
    assert "secret" not in repr(sdk)
    sdk.close()
    with pytest.raises(ValueError, match="not both"):
        Credentials("k", "cid", client_secret="s", signing_key=KEY)
    with pytest.raises(ValueError, match="client_id"):
        Credentials("k", None, client_secret="s")
