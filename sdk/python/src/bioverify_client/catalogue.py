"""The service's error catalogue, as the SDK carries it (no server installed).

The rows are generated from the server's ``bioverify.errors`` into
``_catalogue_data.py``; a test in the server's suite fails when they drift, so
there is one catalogue, written once.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from bioverify_client._catalogue_data import LEGACY_ALIASES as _ALIASES
from bioverify_client._catalogue_data import ROWS


class Kind(enum.StrEnum):
    """Fatal codes end the session; diagnostic codes are recorded once and never end it."""

    FATAL = "fatal"
    DIAGNOSTIC = "diagnostic"


class RetryClass(enum.StrEnum):
    """Whether trying again can change the outcome."""

    PERMANENT = "permanent"
    TRANSIENT = "transient"


@dataclass(frozen=True, slots=True)
class ErrorCode:
    """One row of the catalogue."""

    code: int
    name: str
    kind: Kind
    retry: RetryClass
    http_status: int
    message: str
    remedy: str

    @property
    def is_fatal(self) -> bool:
        return self.kind is Kind.FATAL

    @property
    def is_permanent(self) -> bool:
        return self.retry is RetryClass.PERMANENT


#: code -> row, read-only.
CATALOGUE: Final = MappingProxyType(
    {
        code: ErrorCode(code, name, Kind(kind), RetryClass(retry), status, message, remedy)
        for code, name, kind, retry, status, message, remedy in ROWS
    }
)

#: Codes accepted on input as another code's alias (-13 for -8); never emitted.
LEGACY_ALIASES: Final = MappingProxyType(dict(_ALIASES))


def lookup(code: int) -> ErrorCode:
    """The row of ``code`` (legacy aliases resolved); ``KeyError`` if unknown."""
    return CATALOGUE[LEGACY_ALIASES.get(code, code)]


def is_known(code: int) -> bool:
    """Whether ``code`` (or the code it is an alias of) is in the catalogue."""
    return LEGACY_ALIASES.get(code, code) in CATALOGUE


__all__ = ["CATALOGUE", "LEGACY_ALIASES", "ErrorCode", "Kind", "RetryClass", "is_known", "lookup"]
