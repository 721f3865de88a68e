"""The real client address behind trusted proxies (BIOVERIFY_TRUSTED_PROXIES)."""

from __future__ import annotations

import pytest

from bioverify.addresses import parse_networks, real_client
from bioverify.config import ConfigError, Settings

PROXIES = parse_networks("127.0.0.1, 10.0.0.0/8")


@pytest.mark.parametrize(
    ("peer", "forwarded_for", "expected"),
    [
        # Unset or untrusted peer: the header is ignored, whatever it says.
        ("203.0.113.5", "198.51.100.1", "203.0.113.5"),
        ("127.0.0.1", None, "127.0.0.1"),
        # The first untrusted hop from the right is the client.
        ("127.0.0.1", "203.0.113.7", "203.0.113.7"),
        ("127.0.0.1", "198.51.100.9, 203.0.113.7, 10.1.2.3", "203.0.113.7"),
        # What the client wrote itself (left of the real hop) does not count.
        ("127.0.0.1", "1.2.3.4, 203.0.113.7", "203.0.113.7"),
        ("127.0.0.1", "[2001:db8::1]:443", "2001:db8::1"),
        ("127.0.0.1", "203.0.113.7:5000", "203.0.113.7"),
        # Garbage stops the walk at the last address a trusted proxy vouched for.
        ("127.0.0.1", "203.0.113.7, not-an-ip", "127.0.0.1"),
        ("127.0.0.1", "10.0.0.2", "10.0.0.2"),
    ],
)
def test_real_client(peer: str, forwarded_for: str | None, expected: str) -> None:
    assert real_client(peer, forwarded_for, PROXIES) == expected


def test_no_trusted_proxies_means_headers_are_ignored() -> None:
    assert real_client("127.0.0.1", "203.0.113.7", ()) == "127.0.0.1"


def test_setting_is_parsed_and_bad_values_name_the_variable() -> None:
    cfg = Settings.from_env({"BIOVERIFY_TRUSTED_PROXIES": "10.0.0.1, 192.0.2.0/24"})
    assert [str(n) for n in cfg.trusted_proxies] == ["10.0.0.1/32", "192.0.2.0/24"]
    assert Settings.from_env({}).trusted_proxies == ()
    with pytest.raises(ConfigError, match="BIOVERIFY_TRUSTED_PROXIES"):
        Settings.from_env({"BIOVERIFY_TRUSTED_PROXIES": "10.0.0.1, nope"})
