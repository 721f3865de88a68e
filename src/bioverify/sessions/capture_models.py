"""Plaintexts of the capture envelopes (API.md section 4), validated strictly."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from bioverify.errors import BadRequest
from bioverify.sessions.device_info import ObservedDevice
from bioverify.sessions.indicators import Indicators
from bioverify.validation import describe_validation

M = TypeVar("M", bound=BaseModel)


class _Plain(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class ClientEvent(_Plain):
    code: int
    detail: Annotated[str, StringConstraints(max_length=512)] | None = None


class EventsPlaintext(_Plain):
    nonce: str
    timestamp: int
    events: list[ClientEvent] = Field(min_length=1, max_length=20)
    deviceInfo: ObservedDevice | None = None
    indicators: Indicators | None = None


class CapturePlaintext(_Plain):
    nonce: str
    timestamp: int
    frames: list[str] = Field(min_length=1, max_length=24)
    frameTimes: list[float] | None = Field(default=None, max_length=24)
    challengeId: str | None = None
    deviceInfo: ObservedDevice | None = None
    indicators: Indicators | None = None


def parse_plaintext(model: type[M], plaintext: Mapping[str, object]) -> M:
    """Validate a decrypted plaintext; 400 naming the field on any problem."""
    try:
        return model.model_validate(dict(plaintext))
    except ValidationError as exc:
        raise BadRequest(describe_validation(exc.errors())) from None


__all__ = ["CapturePlaintext", "ClientEvent", "EventsPlaintext", "parse_plaintext"]
