"""``deviceInfo``: what the integrator sent at create, and what the capture client saw.

The capture client's object has a closed schema (known keys, scalar values, bounded
strings): it arrives from an unauthenticated device and ends up in the signed
webhook. The integrator's object is free-form but flat and bounded (at most
:data:`MAX_KEYS` keys, scalar values), for the same reason. The published
``deviceInfo`` merges both; where both name a key, the integrator's value wins,
because the integrator is authenticated and the device is not.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from bioverify.validation import parse_model

MAX_KEYS = 32
MAX_KEY_LENGTH = 64
MAX_TEXT = 256

_Text = Field(default=None, max_length=64)


class _Closed(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class ScreenDimensions(_Closed):
    width: int = Field(ge=0, le=100_000)
    height: int = Field(ge=0, le=100_000)


class ObservedDevice(_Closed):
    """``deviceInfo`` as a capture client (hosted page, SDK) reports it."""

    browserType: str | None = _Text
    browserVersion: str | None = _Text
    osName: str | None = _Text
    osVersion: str | None = _Text
    deviceType: Literal["mobile", "tablet", "desktop"] | None = None
    isMobile: bool | None = None
    screenDimensions: ScreenDimensions | None = None
    orientation: Literal["portrait", "landscape"] | None = None
    pixelRatio: float | None = Field(default=None, ge=0, le=16)
    platform: str | None = _Text
    language: str | None = _Text
    touch: bool | None = None


def parse_observed(raw: object) -> ObservedDevice:
    """Validate a capture client's ``deviceInfo``; 400 naming the offending key."""
    return parse_model(ObservedDevice, raw, prefix="deviceInfo")


def observed_dict(device: ObservedDevice) -> dict[str, Any]:
    return device.model_dump(exclude_none=True)


def integrator_problem(value: Mapping[str, Any]) -> str | None:
    """Why an integrator's ``deviceInfo`` is refused, or ``None``."""
    if len(value) > MAX_KEYS:
        return f"at most {MAX_KEYS} keys"
    for key, item in value.items():
        if len(key) > MAX_KEY_LENGTH:
            return f"keys must be at most {MAX_KEY_LENGTH} characters"
        if key == "screenDimensions":
            if not isinstance(item, Mapping) or set(item) - {"width", "height"}:
                return 'screenDimensions must be {"width", "height"}'
            if not all(
                isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 100_000
                for v in item.values()
            ):
                return "screenDimensions width and height must be integers"
            continue
        if isinstance(item, str):
            if len(item) > MAX_TEXT:
                return f"{key}: text values must be at most {MAX_TEXT} characters"
        elif item is not None and not isinstance(item, (bool, int, float)):
            return f"{key}: values must be text, numbers, booleans or null (no objects or lists)"
    return None


def merged(
    integrator: Mapping[str, Any] | None, observed: Mapping[str, Any] | None
) -> dict[str, Any] | None:
    """The published ``deviceInfo``: the capture client's facts, the integrator's on top."""
    out = {**(observed or {}), **(integrator or {})}
    return out or None


__all__ = [
    "ObservedDevice",
    "ScreenDimensions",
    "integrator_problem",
    "merged",
    "observed_dict",
    "parse_observed",
]
