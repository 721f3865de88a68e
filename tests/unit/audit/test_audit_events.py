"""The event vocabulary and entry shape: catalogue coverage, privacy guards, canonical JSON."""

from __future__ import annotations

import datetime as dt
import json

import pytest
import rfc8785
from audit_helpers import T0
from hypothesis import given, settings
from hypothesis import strategies as st

from bioverify import errors
from bioverify.audit.events import (
    AuditEntryError,
    AuditEvent,
    build_entry,
    canonical_bytes,
    code_event,
)
from bioverify.audit.verify import parse_canonical


def test_every_catalogue_code_has_exactly_one_event() -> None:
    code_events = {e for e in AuditEvent if e.startswith("session:code:")}
    assert code_events == {code_event(code) for code in errors.CATALOGUE}
    assert code_event(-13) is AuditEvent.CODE_SESSION_EXPIRED  # legacy alias
    assert code_event(errors.FACE_SCAN_ERROR) == "session:code:face_scan_error"


def test_every_event_is_an_area_subject_action_tag() -> None:
    for event in AuditEvent:
        parts = event.split(":")
        assert len(parts) == 3 and all(p and p == p.lower() for p in parts), event
    assert AuditEvent.AUTH_REJECTED == "auth:credentials:rejected"
    assert AuditEvent.CAPTURE_NONCE_REPLAYED == "capture:nonce:replayed"
    assert AuditEvent.SERVER_ERROR == "server:request:failed"


def test_entry_shape_and_canonical_bytes() -> None:
    entry = build_entry(
        AuditEvent.CODE_SPOOF,
        client_id="c1",
        session_id="s1",
        code=1,
        subject_hashes={"device": "ab" * 32},
        details={"attempt": 2, "ok": False},
        at=T0,
    )
    assert entry == {
        "v": 1,
        "event": "session:code:spoof",
        "at": "2025-01-02T03:04:05.000000Z",
        "clientId": "c1",
        "sessionId": "s1",
        "code": 1,
        "subjects": {"device": "ab" * 32},
        "details": {"attempt": 2, "ok": False},
    }
    assert canonical_bytes(entry) == rfc8785.dumps(entry)
    assert json.loads(canonical_bytes(entry)) == entry
    assert build_entry(AuditEvent.SESSION_ENDED, client_id=None, code=-13, at=T0)["code"] == -8


@pytest.mark.parametrize(
    "key",
    [
        "token",
        "captureToken",
        "client_secret",
        "template",
        "imageB64",
        "frames",
        "embedding",
        "customerId",
        "customer_id",
        "deviceFingerprint",
        "apiKey",
        "email",
    ],
)
def test_sensitive_detail_keys_are_refused(key: str) -> None:
    with pytest.raises(AuditEntryError, match="must not hold"):
        build_entry(AuditEvent.SESSION_CREATED, client_id="c", details={key: "x"}, at=T0)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"details": {"note": "x" * 257}},
        {"details": {"score": 0.5}},
        {"details": {"nested": {"a": 1}}},
        {"details": {"big": 2**60}},
        {"details": {"bad key": 1}},
        {"subject_hashes": {"customer": "alice@example.com"}},
        {"subject_hashes": {"customer": "short"}},
        {"code": 99},
        {"session_id": "s" * 200},
    ],
)
def test_malformed_entries_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(AuditEntryError):
        build_entry(AuditEvent.SESSION_CREATED, client_id="c", at=T0, **kwargs)  # type: ignore[arg-type]


def test_naive_times_and_unknown_events_are_refused() -> None:
    with pytest.raises(AuditEntryError):
        build_entry(AuditEvent.SESSION_CREATED, client_id="c", at=dt.datetime(2025, 1, 1))
    with pytest.raises(AuditEntryError):
        build_entry("session:state:exploded", client_id="c", at=T0)  # type: ignore[arg-type]


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(deadline=None)  # timing is not what these test; the machine is shared
@given(st.dictionaries(st.text(max_size=8), json_values, max_size=6))
def test_verifier_canonical_check_agrees_with_rfc8785(obj: dict[str, object]) -> None:
    body = rfc8785.dumps(obj)
    assert parse_canonical(body) == obj
    loose = json.dumps(obj, indent=1).encode()
    if loose != body:
        assert parse_canonical(loose) is None
    reordered = json.dumps(
        dict(reversed(list(obj.items()))), separators=(",", ":"), ensure_ascii=False
    ).encode()
    assert (parse_canonical(reordered) is not None) == (reordered == body)


@settings(deadline=None)  # timing is not what these test; the machine is shared
@given(st.floats(allow_nan=False, allow_infinity=False) | st.integers(min_value=2**53))
def test_numbers_outside_the_fast_path_follow_rfc8785(number: float) -> None:
    body = json.dumps({"n": number}, separators=(",", ":")).encode()
    try:
        expected = rfc8785.dumps({"n": number}) == body
    except rfc8785.CanonicalizationError:
        expected = False
    assert (parse_canonical(body) is not None) == expected
