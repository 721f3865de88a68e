"""The egress guard refuses callback URLs that reach inside the network."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from bioverify import errors
from bioverify.webhooks.egress import EgressGuard, EgressRefused


def fake_dns(table: dict[str, Sequence[str]]) -> EgressGuard:
    def resolve(host: str, port: int) -> Sequence[str]:
        if host not in table:
            raise OSError("no such host")
        return table[host]

    return EgressGuard(resolver=resolve)


PUBLIC = fake_dns({"hooks.example.com": ["93.184.216.34", "2606:2800:220:1::1"]})


def test_public_https_url_is_accepted_and_yields_its_addresses() -> None:
    PUBLIC.check_url("https://hooks.example.com/cb?x=1")
    assert PUBLIC.resolve_for_send("https://hooks.example.com:8443/cb") == [
        "93.184.216.34",
        "2606:2800:220:1::1",
    ]


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.1",
        "169.254.169.254",
        "169.254.1.1",
        "100.64.0.1",
        "0.0.0.0",
        "0.1.2.3",
        "224.0.0.1",
        "255.255.255.255",
        "[::1]",
        "[::]",
        "[fe80::1]",
        "[fc00::1]",
        "[fd12::1]",
        "[ff02::1]",
        "[::ffff:127.0.0.1]",
        "[::ffff:10.0.0.1]",
        "[64:ff9b::a9fe:a9fe]",
        "[2002:7f00:1::1]",
        # IPv4-embedding forms a review got through (item 6 of the security review).
        "[::127.0.0.1]",
        "[::ffff:0:127.0.0.1]",
        "[64:ff9b:1::7f00:1]",
        "[64:ff9b:1::cb00:7105]",
        "[2001:0:4136:e378:8000:63bf:3fff:fdd2]",
        "[100::1]",
        "[2001:db8::1]",
    ],
)
def test_internal_addresses_are_refused_with_a_400_naming_the_field(host: str) -> None:
    with pytest.raises(errors.BadRequest, match=r"callback\.url") as info:
        PUBLIC.check_url(f"https://{host}/cb")
    assert info.value.http_status == 400


@pytest.mark.parametrize(
    "url",
    [
        "https://localhost/cb",
        "https://api.localhost/cb",
        "https://metadata.google.internal/x",
        "http://hooks.example.com/cb",
        "ftp://hooks.example.com/cb",
        "https://user:pw@hooks.example.com/",
        "https://hooks.example.com:0/",
        "https://hooks.example.com:99999/",
        "/relative/only",
        "https://nowhere.invalid/cb",
        "https://" + "a" * 3000 + ".com/",
    ],
)
def test_bad_urls_are_refused(url: str) -> None:
    with pytest.raises(EgressRefused, match=r"callback\.url"):
        PUBLIC.check_url(url)


def test_a_name_resolving_to_loopback_is_refused_even_if_one_answer_is_public() -> None:
    guard = fake_dns(
        {
            "evil.example": ["93.184.216.34", "127.0.0.1"],
            "sneaky.example": ["::ffff:169.254.169.254"],
        }
    )
    with pytest.raises(EgressRefused, match="private, loopback"):
        guard.check_url("https://evil.example/cb")
    with pytest.raises(EgressRefused, match="metadata"):
        guard.check_url("https://sneaky.example/cb")


def test_allow_private_opens_loopback_and_http_but_never_metadata() -> None:
    guard = EgressGuard(allow_private=True)
    guard.check_url("http://127.0.0.1:8080/cb")
    guard.check_url("https://10.0.0.1/cb")
    with pytest.raises(EgressRefused, match="metadata"):
        guard.check_url("http://169.254.169.254/latest/meta-data")


def test_allow_http_hosts_permits_plain_http_without_opening_private_ranges() -> None:
    dns = {"hooks.example.com": ["93.184.216.34"], "dev.example.com": ["127.0.0.1"]}
    guard = EgressGuard(allow_http_hosts=frozenset(dns), resolver=lambda host, port: dns[host])
    guard.check_url("http://hooks.example.com/cb")
    with pytest.raises(EgressRefused, match="https"):
        guard.check_url("http://other.example.com/cb")
    with pytest.raises(EgressRefused, match="private"):
        guard.check_url("http://dev.example.com/cb")


def test_dns_rebinding_is_caught_at_send_time() -> None:
    answers = iter([["93.184.216.34"], ["127.0.0.1"]])
    guard = EgressGuard(resolver=lambda host, port: next(answers))
    guard.check_url("https://rebind.example/cb")
    with pytest.raises(EgressRefused):
        guard.resolve_for_send("https://rebind.example/cb")
