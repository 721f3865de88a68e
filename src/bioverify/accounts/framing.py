"""Who may frame the hosted capture page: per-client frame ancestors (API.md section 4).

By default the page may not be framed (``frame-ancestors 'none'``). A client may
register origins, as CSP host-sources allow: ``https://app.example.com``,
``https://app.example.com:8443``, or a host wildcard ``https://*.example.com``.
Plain ``http`` is accepted only for loopback hosts (development); a framed page on
plain http elsewhere would expose the camera to anyone on the path.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from bioverify.accounts.models import Client
from bioverify.errors import BadRequest

MAX_ANCESTORS = 16

_ORIGIN = re.compile(
    r"^(?P<scheme>https?)://(?P<host>\*\.[a-z0-9.-]+|[a-z0-9.-]+|\[[0-9a-f:.]+\])"
    r"(?::(?P<port>\*|[0-9]{1,5}))?$"
)
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def normalise_origin(raw: str) -> str:
    """The origin in canonical form (lower case, no trailing slash), or 400 saying why."""
    text = raw.strip().lower().removesuffix("/")
    match = _ORIGIN.match(text)
    if match is None:
        raise BadRequest(
            f"frame ancestor {raw!r} is not an origin: use scheme://host[:port], e.g. "
            "https://app.example.com or https://*.example.com (no path, query or quotes)"
        )
    host, port = match["host"], match["port"]
    if not host.startswith("["):
        name = host.removeprefix("*.")
        if not all(_LABEL.match(label) for label in name.split(".")):
            raise BadRequest(f"frame ancestor {raw!r} has an invalid host name")
        if host.startswith("*.") and "." not in name:
            raise BadRequest(
                f"frame ancestor {raw!r}: a wildcard needs a registrable domain after '*.'"
            )
    if port is not None and port != "*" and not 1 <= int(port) <= 65535:
        raise BadRequest(f"frame ancestor {raw!r} has an invalid port")
    if match["scheme"] == "http" and not _is_loopback(host):
        raise BadRequest(
            f"frame ancestor {raw!r}: plain http is allowed only for loopback hosts; use https"
        )
    return text


def normalise_all(origins: Iterable[str]) -> list[str]:
    """Validated, de-duplicated origins, in the order given."""
    out = list(dict.fromkeys(normalise_origin(o) for o in origins))
    if len(out) > MAX_ANCESTORS:
        raise BadRequest(f"at most {MAX_ANCESTORS} frame ancestors per client")
    return out


#: Read on every capture page load: built once, not per call.
_ANCESTORS = select(Client.frame_ancestors).where(Client.id == bindparam("client_id"))


def ancestors_of(db: Session, client_id: str) -> list[str]:
    """The client's registered frame ancestors (empty: no framing)."""
    found = db.scalar(_ANCESTORS, {"client_id": client_id})
    return list(found or [])


__all__ = ["MAX_ANCESTORS", "ancestors_of", "normalise_all", "normalise_origin"]
