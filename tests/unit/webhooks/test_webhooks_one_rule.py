"""One implementation per rule: the service reads Retry-After, checks webhook
signatures and builds the SLC message with the client SDK's code, so the two sides
cannot disagree (they did: a ``-0000`` HTTP date under ``TZ=America/New_York``)."""

from __future__ import annotations

import datetime as dt
import email.utils
import os
import time
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

import bioverify.client as sdk
from bioverify.accounts import service as accounts
from bioverify.client import retry as client_retry
from bioverify.client.errors import WebhookVerificationError
from bioverify.client.webhooks import verify_webhook
from bioverify.webhooks import retry as server_retry
from bioverify.webhooks import signing

NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)
SECRET = signing.new_webhook_secret()


@pytest.fixture
def new_york() -> Iterator[None]:
    before = os.environ.get("TZ")
    os.environ["TZ"] = "America/New_York"
    time.tzset()
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = before
        time.tzset()


def test_an_http_date_with_unknown_zone_is_gmt_on_both_sides(new_york: None) -> None:
    later = NOW + dt.timedelta(minutes=28)
    header = later.strftime("%a, %d %b %Y %H:%M:%S -0000")
    server = server_retry.parse_retry_after(header, NOW)
    client = client_retry.parse_retry_after(header, now=NOW.timestamp())
    assert server == dt.timedelta(minutes=28)
    assert client == pytest.approx(28 * 60)


retry_after_values = st.one_of(
    st.text(max_size=40),
    st.integers(min_value=0, max_value=10**12).map(str),
    st.datetimes(min_value=dt.datetime(1990, 1, 1), max_value=dt.datetime(2100, 1, 1)).map(
        lambda d: email.utils.format_datetime(d.replace(tzinfo=dt.UTC), usegmt=True)
    ),
)


@given(retry_after_values)
def test_service_and_sdk_read_retry_after_alike(value: str) -> None:
    server = server_retry.parse_retry_after(value, NOW)
    client = client_retry.parse_retry_after(value, now=NOW.timestamp())
    assert (server is None) == (client is None)
    if server is not None and client is not None:
        assert server.total_seconds() == pytest.approx(min(client, 365 * 24 * 3600.0))


headers_strategy = st.fixed_dictionaries(
    {
        "webhook-id": st.sampled_from(["msg_1", "", "msg_2"]),
        "webhook-timestamp": st.sampled_from(
            [str(int(NOW.timestamp())), str(int(NOW.timestamp()) - 10_000), "x", "", "-5"]
        ),
        "webhook-signature": st.text(max_size=60),
    }
)


@given(headers_strategy, st.binary(max_size=40), st.booleans())
def test_service_and_sdk_accept_the_same_webhooks(
    headers: dict[str, str], body: bytes, sign_it: bool
) -> None:
    if sign_it and headers["webhook-id"] and headers["webhook-timestamp"].isdigit():
        headers = {
            **headers,
            "webhook-signature": signing.sign(
                headers["webhook-id"], int(headers["webhook-timestamp"]), body, secrets=[SECRET]
            )
            + " "
            + headers["webhook-signature"],
        }
    now = NOW.timestamp()
    try:
        signing.verify(body, headers, secrets=[SECRET], now=now)
        server_ok = True
    except signing.SignatureError:
        server_ok = False
    try:
        verify_webhook(body, headers, SECRET, now=now)
        client_ok = True
    except WebhookVerificationError as exc:
        # The SDK also insists on a JSON object body; the signature check is shared.
        client_ok = "JSON" in exc.message
    assert server_ok == client_ok


def test_the_slc_message_is_the_sdks() -> None:
    assert accounts.slc_message is sdk.slc_message


def test_a_non_ascii_signature_entry_does_not_hide_a_valid_one() -> None:
    # Headers decode as Latin-1, so a receiver can see any byte; base64 of a
    # non-ASCII str raised ValueError (not binascii.Error) out of both verifiers.
    stamp = int(NOW.timestamp())
    body = b'{"sessionId":"s"}'
    valid = signing.sign("msg_1", stamp, body, secrets=[SECRET])
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(stamp),
        "webhook-signature": "v1,\u00e9\u00e9\u00e9\u00e9 " + valid,
    }
    signing.verify(body, headers, secrets=[SECRET], now=NOW.timestamp())
    verify_webhook(body, headers, SECRET, now=NOW.timestamp())
