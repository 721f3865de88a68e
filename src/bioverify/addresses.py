"""IP address helpers shared by configuration and the HTTP layer: networks from a
setting, and the real client address behind trusted proxies."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(raw: str) -> tuple[Network, ...]:
    """``"10.0.0.1, 10.1.0.0/16"`` -> networks; :class:`ValueError` naming a bad entry."""
    out: list[Network] = []
    for part in raw.split(","):
        text = part.strip()
        if not text:
            continue
        try:
            out.append(ipaddress.ip_network(text, strict=False))
        except ValueError:
            raise ValueError(f"{text!r} is not an IP address or CIDR range") from None
    return tuple(out)


def parse_ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # "[2001:db8::1]:443"
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # "203.0.113.7:8080"
        text = text.split(":", 1)[0]
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def in_networks(ip: ipaddress.IPv4Address | ipaddress.IPv6Address, nets: Sequence[Network]) -> bool:
    return any(ip.version == net.version and ip in net for net in nets)


def real_client(peer: str, forwarded_for: str | None, trusted: Sequence[Network]) -> str:
    """The client address for a connection from ``peer`` carrying ``X-Forwarded-For``.

    Walks the header from the right (the hop our proxy appended) past trusted proxies;
    the first untrusted hop is the client. Anything unparsable stops the walk there,
    at the last address a trusted proxy vouched for.
    """
    peer_ip = parse_ip(peer)
    if peer_ip is None or not trusted or not forwarded_for or not in_networks(peer_ip, trusted):
        return peer
    current = peer_ip
    for hop in reversed(forwarded_for.split(",")):
        ip = parse_ip(hop)
        if ip is None:
            break
        current = ip
        if not in_networks(ip, trusted):
            break
    return str(current)


__all__ = ["Network", "in_networks", "parse_ip", "parse_networks", "real_client"]
