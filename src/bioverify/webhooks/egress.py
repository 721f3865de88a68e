"""Egress guard: callback URLs may not reach inside the operator's network (SSRF).

Checked twice: when a session is created (:meth:`EgressGuard.check_url`, a 400
naming ``callback.url``) and again at every connection (:meth:`EgressGuard.
resolve_for_send`), because DNS can answer differently the second time
(rebinding). The dispatcher's transport connects to the vetted address itself, so
what was checked is what is reached.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from urllib.parse import SplitResult, urlsplit

from bioverify import errors

#: ``(host, port) -> addresses``; injectable so tests need no DNS.
Resolver = Callable[[str, int], Sequence[str]]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_FIELD = "callback.url"
_MAX_URL = 2048

# Ranges that are never "the internet", beyond what ``is_global`` already says.
_BLOCKED_NETS = tuple(
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "224.0.0.0/4",
        "240.0.0.0/4",
        "::/128",
        "::1/128",
        "fc00::/7",
        "fe80::/10",
        "ff00::/8",
    )
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
#: IPv6 callbacks must be global unicast (2000::/3, RFC 4291 section 2.4) ...
_GLOBAL_UNICAST_V6 = ipaddress.ip_network("2000::/3")
#: ... and not one of the forms that carry an IPv4 address inside.
_EMBEDDING_V6 = tuple(
    ipaddress.ip_network(n)
    for n in (
        "2002::/16",  # 6to4
        "2001::/32",  # Teredo
        "64:ff9b::/96",  # NAT64 well-known prefix
        "64:ff9b:1::/48",  # NAT64 local use
        "::/96",  # IPv4-compatible (deprecated)
        "::ffff:0:0/96",  # IPv4-mapped
        "::ffff:0:0:0/96",  # IPv4-translated (SIIT)
    )
)

# Cloud metadata services: refused even when private addresses are allowed, since no
# development setup needs to post webhooks to them.
_METADATA_IPS = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",
        "169.254.170.2",
        "100.100.100.200",
        "fd00:ec2::254",
    )
)
_METADATA_NAMES = frozenset(
    {
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "instance-data",
        "instance-data.ec2.internal",
        "metadata.azure.com",
        "metadata.tencentyun.com",
    }
)


class EgressRefused(errors.BadRequest):
    """A callback URL (or what its host resolves to) is not allowed."""


def system_resolver(host: str, port: int) -> list[str]:
    """Every address ``getaddrinfo`` gives for ``host`` (TCP)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _embedded_v4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 form carries (mapped, 6to4, Teredo, NAT64), if any."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def is_internal(ip: IPAddress) -> bool:
    """True for anything but global unicast: loopback, private, link-local, multicast,
    unspecified, CGNAT, reserved, documentation, and every IPv6 form that embeds an
    IPv4 address (mapped, compatible, translated, NAT64, 6to4, Teredo), whatever it
    embeds: those reach IPv4 hosts through paths this check cannot see."""
    if isinstance(ip, ipaddress.IPv6Address):
        return (
            ip not in _GLOBAL_UNICAST_V6
            or any(ip in net for net in _EMBEDDING_V6)
            or (not ip.is_global)
        )
    return (
        any(ip in net for net in _BLOCKED_NETS if net.version == 4)
        or not ip.is_global
        or ip.is_multicast
    )


def _parse_ip(text: str) -> IPAddress | None:
    try:
        # Zone ids ("fe80::1%eth0") are link-local by definition.
        return ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None


@dataclass(frozen=True)
class EgressGuard:
    """Decides which callback URLs and addresses the dispatcher may reach.

    ``allow_private`` (``BIOVERIFY_ALLOW_PRIVATE_CALLBACKS``) lets URLs use plain
    ``http`` and reach loopback/private addresses: development and tests only.
    ``allow_http_hosts`` permits plain ``http`` to these host names without opening
    private ranges.
    """

    allow_private: bool = False
    allow_http_hosts: frozenset[str] = frozenset()
    resolver: Resolver = field(default=system_resolver, repr=False)

    def _split(self, url: str) -> tuple[SplitResult, str, int]:
        if len(url) > _MAX_URL:
            raise EgressRefused(f"{_FIELD} is longer than {_MAX_URL} characters")
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise EgressRefused(f"{_FIELD} is not a valid URL (bad host or port)") from exc
        host = (parts.hostname or "").rstrip(".").lower()
        if parts.scheme not in ("https", "http") or not host:
            raise EgressRefused(f"{_FIELD} must be an absolute https:// URL")
        if parts.scheme == "http" and not (self.allow_private or host in self.allow_http_hosts):
            raise EgressRefused(f"{_FIELD} must use https (plain http is not allowed here)")
        if parts.username is not None or parts.password is not None:
            raise EgressRefused(f"{_FIELD} must not contain a user name or password")
        if port == 0:
            raise EgressRefused(f"{_FIELD} has an invalid port")
        return parts, host, port or (443 if parts.scheme == "https" else 80)

    def _check_host_name(self, host: str) -> None:
        if host in _METADATA_NAMES:
            raise EgressRefused(f"{_FIELD} points at a cloud metadata service")
        if not self.allow_private and (host == "localhost" or host.endswith(".localhost")):
            raise EgressRefused(f"{_FIELD} points at this machine (localhost)")

    def allowed_addresses(self, host: str, port: int) -> list[str]:
        """Resolve ``host`` and return its addresses, refusing if any is off limits.

        One bad address refuses the whole name: a name that mixes public and
        internal answers is an attack, not a misconfiguration.
        """
        host = host.rstrip(".").lower().strip("[]")
        self._check_host_name(host)
        literal = _parse_ip(host)
        if literal is not None:
            answers: Iterable[str] = [host]
        else:
            try:
                answers = self.resolver(host, port)
            except (OSError, UnicodeError) as exc:
                raise EgressRefused(f"{_FIELD} host does not resolve") from exc
        addresses: list[str] = []
        for text in answers:
            ip = _parse_ip(text)
            if ip is None:
                raise EgressRefused(f"{_FIELD} host resolved to an unusable address")
            if ip in _METADATA_IPS or (
                isinstance(ip, ipaddress.IPv6Address) and _embedded_v4(ip) in _METADATA_IPS
            ):
                raise EgressRefused(f"{_FIELD} points at a cloud metadata service")
            if not self.allow_private and is_internal(ip):
                raise EgressRefused(
                    f"{_FIELD} resolves to a private, loopback, link-local or reserved "
                    "address; use a public https endpoint"
                )
            addresses.append(str(ip))
        if not addresses:
            raise EgressRefused(f"{_FIELD} host does not resolve")
        return addresses

    def check_url(self, url: str) -> None:
        """Validate a callback URL at session create; raises :class:`EgressRefused` (400)."""
        _, host, port = self._split(url)
        self.allowed_addresses(host, port)

    def resolve_for_send(self, url: str) -> list[str]:
        """Re-check ``url`` at send time and return the addresses it may connect to."""
        _, host, port = self._split(url)
        return self.allowed_addresses(host, port)


__all__ = ["EgressGuard", "EgressRefused", "Resolver", "is_internal", "system_resolver"]
