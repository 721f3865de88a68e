"""Device facts from a capture request: desktop detection (pure logic)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_MOBILE_UA = re.compile(r"Mobi|Android|iPhone|iPad|iPod|Windows Phone|Tablet", re.IGNORECASE)
_DESKTOP_TYPES = {"desktop", "laptop", "pc", "computer"}


def reported_desktop(device_info: Mapping[str, Any] | None) -> bool | None:
    """What ``deviceInfo`` says (``deviceType`` or ``isMobile``), or None if it is silent."""
    if not device_info:
        return None
    kind = device_info.get("deviceType") or device_info.get("type")
    if isinstance(kind, str):
        return kind.strip().lower() in _DESKTOP_TYPES
    mobile = device_info.get("isMobile")
    if isinstance(mobile, bool):
        return not mobile
    return None


def is_desktop(user_agent: str, device_info: Mapping[str, Any] | None) -> bool:
    """True when the reported device info, or else the User-Agent, says desktop.

    An explicit ``deviceInfo`` wins over the User-Agent, because the hosted page and
    the SDK report what they measured.
    """
    reported = reported_desktop(device_info)
    if reported is not None:
        return reported
    return not _MOBILE_UA.search(user_agent or "")


def fingerprint_material(device_header: str, user_agent: str) -> str:
    """What a device fingerprint is computed from (the caller key-hashes it)."""
    return f"{device_header.strip()}\n{user_agent.strip()}"


__all__ = ["fingerprint_material", "is_desktop", "reported_desktop"]
