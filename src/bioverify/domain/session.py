"""The session state machine: pure logic, no I/O.

``PENDING -> IN_PROGRESS -> SUCCESS | FAILED``. Invariants (checked by property
tests): an ended session never changes; the first fatal code is the outcome; each
diagnostic code appears once, in order of first occurrence; a session whose
no-face attempts run out fails with the diagnostic that exhausted them.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType

from bioverify import errors


class Status(enum.StrEnum):
    PENDING = "PENDING"
    IN_PROGRESS = "IN_PROGRESS"
    SUCCESS = "SUCCESS"
    FAILED = "FAILED"


class SessionType(enum.StrEnum):
    ENROLL = "ENROLL"
    VERIFY = "VERIFY"
    VERIFY_ULTRA = "VERIFY_ULTRA"
    SIGN_IN = "SIGN-IN"

    @classmethod
    def parse(cls, raw: str) -> SessionType:
        """``REGISTER`` is PrivateID's alias of ``ENROLL``."""
        return cls.ENROLL if raw == "REGISTER" else cls(raw)


#: Every ``type`` a create request may name (API.md section 3).
WIRE_TYPES: tuple[str, ...] = ("ENROLL", "REGISTER", "VERIFY", "VERIFY_ULTRA", "SIGN-IN")

#: Every ``requirements`` value; ``verification`` is PrivateID's synonym of ``face``.
REQUIREMENTS: tuple[str, ...] = ("face", "identity_document", "verification")
REQUIREMENT_SYNONYMS: Mapping[str, str] = MappingProxyType({"verification": "face"})


def matches_one_to_one(kind: SessionType, customer_id: str | None) -> bool:
    """VERIFY with a customer id and VERIFY_ULTRA compare 1:1; VERIFY without one
    and SIGN-IN identify 1:N among the client's enrolled customers."""
    return kind is SessionType.VERIFY_ULTRA or (
        kind is SessionType.VERIFY and customer_id is not None
    )


def identifies(kind: SessionType, customer_id: str | None) -> bool:
    return kind is SessionType.SIGN_IN or (kind is SessionType.VERIFY and customer_id is None)


ENDED = frozenset({Status.SUCCESS, Status.FAILED})


@dataclass(frozen=True, slots=True)
class CodeRecord:
    code: int
    at: dt.datetime


@dataclass(frozen=True, slots=True)
class SessionState:
    status: Status
    attempts_left: int
    codes: tuple[CodeRecord, ...] = ()
    completed_at: dt.datetime | None = None

    @property
    def ended(self) -> bool:
        return self.status in ENDED

    @property
    def error_codes(self) -> list[int]:
        return [record.code for record in self.codes]

    @property
    def outcome_code(self) -> int | None:
        """The code that ended a failed session: its first fatal code, else its last code."""
        if self.status is not Status.FAILED:
            return None
        for record in self.codes:
            if errors.lookup(record.code).is_fatal:
                return record.code
        return self.codes[-1].code if self.codes else None


@dataclass(frozen=True, slots=True)
class Transition:
    state: SessionState
    changed: bool
    #: True when this step ended the session (the caller writes the final webhook).
    ended: bool


def new_state(max_attempts: int) -> SessionState:
    if not 1 <= max_attempts <= 10:
        raise ValueError("max_attempts must be within 1..10")
    return SessionState(status=Status.PENDING, attempts_left=max_attempts)


def _same(state: SessionState) -> Transition:
    return Transition(state, changed=False, ended=False)


def _with_code(state: SessionState, code: int, now: dt.datetime) -> tuple[CodeRecord, ...]:
    if any(record.code == code for record in state.codes):
        return state.codes
    return (*state.codes, CodeRecord(code, now))


def load(state: SessionState) -> Transition:
    """The capture client loaded the session."""
    if state.status is not Status.PENDING:
        return _same(state)
    return Transition(replace(state, status=Status.IN_PROGRESS), changed=True, ended=False)


def record(state: SessionState, code: int, now: dt.datetime) -> Transition:
    """Record ``code``: a fatal one ends the session, a diagnostic is kept once."""
    if state.ended:
        return _same(state)
    code = errors.canonical(code)
    if errors.lookup(code).is_fatal:
        ended = replace(
            state, status=Status.FAILED, codes=_with_code(state, code, now), completed_at=now
        )
        return Transition(ended, changed=True, ended=True)
    codes = _with_code(state, code, now)
    if codes == state.codes:
        return _same(state)
    return Transition(replace(state, codes=codes), changed=True, ended=False)


def failed_attempt(state: SessionState, code: int, now: dt.datetime) -> Transition:
    """A capture attempt found no usable face: record ``code`` and spend one attempt.

    When the last attempt is spent, the session fails with that code.
    """
    if state.ended:
        return _same(state)
    code = errors.canonical(code)
    left = state.attempts_left - 1
    codes = _with_code(state, code, now)
    if left <= 0:
        return Transition(
            replace(state, status=Status.FAILED, codes=codes, attempts_left=0, completed_at=now),
            changed=True,
            ended=True,
        )
    return Transition(replace(state, codes=codes, attempts_left=left), changed=True, ended=False)


def succeed(state: SessionState, now: dt.datetime) -> Transition:
    if state.ended:
        return _same(state)
    return Transition(
        replace(state, status=Status.SUCCESS, completed_at=now), changed=True, ended=True
    )


def is_expired(expires_at: dt.datetime, now: dt.datetime) -> bool:
    return now >= expires_at


__all__ = [
    "ENDED",
    "REQUIREMENTS",
    "REQUIREMENT_SYNONYMS",
    "WIRE_TYPES",
    "CodeRecord",
    "SessionState",
    "SessionType",
    "Status",
    "Transition",
    "failed_attempt",
    "identifies",
    "is_expired",
    "load",
    "matches_one_to_one",
    "new_state",
    "record",
    "succeed",
]
