"""Browser integrity ``indicators`` from the capture client (API.md section 5).

The capture client (hosted page or SDK) reports boolean flags in PrivateID's
documented shape: ``headless``, ``virtualCamera`` and ``browserAnomalies``. The
schema is closed (known keys only, scalar values, three levels at most), so a
client cannot put arbitrary, huge or deeply nested data into the signed webhook;
anything else is 400.

The ``virtualCamera`` summary (``riskLevel``, ``overallConfidence``) is computed
here from the flags, never taken from the client: a client that sends its own
is accepted (PrivateID's library sends them) but overruled.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from bioverify.errors import BadRequest
from bioverify.validation import parse_model


class _Flags(BaseModel):
    # Closed and strict: unknown keys are 400, "true" is not a bool.
    model_config = ConfigDict(extra="forbid", strict=True)


class Headless(_Flags):
    """Signs of an automated or headless browser."""

    webdriver: bool = False
    headlessUserAgent: bool = False
    noPlugins: bool = False
    noLanguages: bool = False
    windowSizeMismatch: bool = False


class BrowserCompatibility(_Flags):
    browser: str = Field(default="", max_length=32)
    supportLevel: Literal["full", "partial", "none"] = "full"


class VirtualCamera(_Flags):
    """Signs that the camera is software, not a sensor."""

    virtualCameraSoftware: bool = False
    suspiciousLabels: bool = False
    noMediaDevices: bool = False
    mediaDevicesError: bool = False
    # Accepted for PrivateID compatibility, recomputed by the server (see summary()).
    riskLevel: Literal["LOW", "MEDIUM", "HIGH"] | None = None
    overallConfidence: int | None = Field(default=None, ge=0, le=100)
    browserCompatibility: BrowserCompatibility | None = None


class BrowserAnomalies(_Flags):
    """Inconsistencies between what the browser claims and what it can do."""

    missingWebAPIs: bool = False
    inconsistentFingerprint: bool = False
    automationProperties: bool = False


class Indicators(_Flags):
    """The ``indicators`` object a capture client may send with ``/events`` and ``/capture``."""

    headless: Headless | None = None
    virtualCamera: VirtualCamera | None = None
    browserAnomalies: BrowserAnomalies | None = None


def parse_indicators(raw: Mapping[str, Any]) -> Indicators:
    """Validate client-sent indicators; 400 naming the offending key."""
    return parse_model(Indicators, raw, prefix="indicators")


def automation(ind: Indicators) -> bool:
    """A WebDriver-controlled or headless browser, by the client's own report."""
    h, a = ind.headless, ind.browserAnomalies
    return bool((h and (h.webdriver or h.headlessUserAgent)) or (a and a.automationProperties))


def virtual_camera(ind: Indicators) -> bool:
    vc = ind.virtualCamera
    return bool(vc and (vc.virtualCameraSoftware or vc.suspiciousLabels))


def anomalies(ind: Indicators) -> bool:
    a, h = ind.browserAnomalies, ind.headless
    return bool(
        (a and (a.missingWebAPIs or a.inconsistentFingerprint))
        or (h and (h.noPlugins or h.noLanguages or h.windowSizeMismatch))
    )


def summary(ind: Indicators) -> dict[str, Any]:
    """The stored and published form: every flag explicit, the camera summary computed.

    ``riskLevel`` is HIGH for virtual-camera software or a suspicious camera label,
    MEDIUM when no camera could be listed or listing failed, LOW otherwise;
    ``overallConfidence`` (0-100) is how sure the camera looks real, lowered by each
    raised camera flag and by automation.
    """
    headless = ind.headless or Headless()
    camera = ind.virtualCamera or VirtualCamera()
    browser = ind.browserAnomalies or BrowserAnomalies()
    if camera.virtualCameraSoftware or camera.suspiciousLabels:
        level = "HIGH"
    elif camera.noMediaDevices or camera.mediaDevicesError:
        level = "MEDIUM"
    else:
        level = "LOW"
    confidence = 97
    confidence -= 45 * camera.virtualCameraSoftware + 30 * camera.suspiciousLabels
    confidence -= 20 * camera.noMediaDevices + 15 * camera.mediaDevicesError
    confidence -= 10 * automation(ind)
    compat = camera.browserCompatibility or BrowserCompatibility()
    return {
        "headless": headless.model_dump(),
        "virtualCamera": {
            **camera.model_dump(exclude={"riskLevel", "overallConfidence", "browserCompatibility"}),
            "riskLevel": level,
            "overallConfidence": max(0, min(100, confidence)),
            "browserCompatibility": compat.model_dump(),
        },
        "browserAnomalies": browser.model_dump(),
    }


def stored_indicators(raw: Mapping[str, Any] | None) -> Indicators | None:
    """Indicators as stored on a session row (already validated), or ``None``.

    A row written before the schema existed may hold another shape: it is read as
    "no indicators" rather than failing the webhook or the polling route.
    """
    if not raw:
        return None
    try:
        return parse_indicators(raw)
    except BadRequest:
        return None


__all__ = [
    "BrowserAnomalies",
    "Headless",
    "Indicators",
    "VirtualCamera",
    "anomalies",
    "automation",
    "parse_indicators",
    "stored_indicators",
    "summary",
    "virtual_camera",
]
