"""Opening capture envelopes: round trips, tampering, binding, strict parsing, freshness."""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bioverify import errors
from bioverify.capture.envelope import fresh_nonce, seal, seal_bytes
from bioverify.crypto import (
    ENVELOPE_FIELDS,
    EnvelopeError,
    KeyRing,
    check_freshness,
    open_envelope,
)

SESSION = "3f1c1f0e-6a43-4d7e-9d0c-6c4b2a5b1e11"

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
json_objects = st.dictionaries(st.text(max_size=8), json_values, max_size=6)


def _seal(
    ring: KeyRing,
    plaintext: dict[str, object],
    *,
    session_id: str = SESSION,
    route: str = "capture",
    kid: str | None = None,
) -> dict[str, str]:
    doc = ring.public_key_document()
    return seal(
        plaintext,
        public_key_pem=doc["publicKey"],
        kid=kid or doc["kid"],
        session_id=session_id,
        route=route,
    )


def _open(ring: KeyRing, body: dict[str, object], route: str = "capture") -> dict[str, object]:
    return open_envelope(
        body, keyring=ring, session_id=SESSION, route="capture" if route == "capture" else "events"
    )


@given(plaintext=json_objects, route=st.sampled_from(["events", "capture"]))
@settings(max_examples=60, deadline=None)
def test_seal_open_round_trip(
    shared_ring: KeyRing, plaintext: dict[str, object], route: str
) -> None:
    body = _seal(shared_ring, plaintext, route=route)
    assert _open(shared_ring, dict(body), route) == plaintext


@given(
    field=st.sampled_from(["encryptedKey", "encryptedMessage", "iv", "gcmTag", "gcmAad"]),
    position=st.integers(min_value=0),
    mask=st.integers(min_value=1, max_value=255),
)
@settings(max_examples=150, deadline=None)
def test_any_flipped_byte_is_refused(
    shared_ring: KeyRing, field: str, position: int, mask: int
) -> None:
    body: dict[str, object] = dict(_seal(shared_ring, {"nonce": "x", "n": 1}))
    raw = bytearray(base64.b64decode(str(body[field])))
    raw[position % len(raw)] ^= mask
    body[field] = base64.b64encode(bytes(raw)).decode()
    with pytest.raises(EnvelopeError) as info:
        _open(shared_ring, body)
    assert info.value.crypto_failure
    assert info.value.http_status == 400


def test_flipped_kid_is_unknown(shared_ring: KeyRing) -> None:
    body = _seal(shared_ring, {"a": 1})
    kid = body["kid"]
    body["kid"] = ("A" if kid[0] != "A" else "B") + kid[1:]
    with pytest.raises(EnvelopeError, match="unknown kid"):
        _open(shared_ring, dict(body))


def test_wrapped_key_and_ciphertext_failures_look_the_same(shared_ring: KeyRing) -> None:
    """No oracle: a bad RSA unwrap and a bad GCM tag give one message."""
    messages = set()
    for field in ("encryptedKey", "gcmTag"):
        body: dict[str, object] = dict(_seal(shared_ring, {"a": 1}))
        raw = bytearray(base64.b64decode(str(body[field])))
        raw[-1] ^= 1
        body[field] = base64.b64encode(bytes(raw)).decode()
        with pytest.raises(EnvelopeError) as info:
            _open(shared_ring, body)
        messages.add(info.value.message)
    assert len(messages) == 1
    assert "does not decrypt or authenticate" in messages.pop()


@pytest.mark.parametrize(
    ("session_id", "route"),
    [("another-session", "capture"), (SESSION, "events"), ("another-session", "events")],
)
def test_envelope_for_another_session_or_route_is_refused(
    shared_ring: KeyRing, session_id: str, route: str
) -> None:
    body = _seal(shared_ring, {"a": 1}, session_id=session_id, route=route)
    with pytest.raises(EnvelopeError, match="gcmAad does not match") as info:
        _open(shared_ring, dict(body), "capture")
    assert info.value.crypto_failure


def test_rewritten_aad_field_does_not_help(shared_ring: KeyRing) -> None:
    """Claiming the right AAD for a ciphertext sealed to another session fails the tag."""
    body = _seal(shared_ring, {"a": 1}, session_id="another-session")
    body["gcmAad"] = base64.b64encode(f"bioverify:v1:{SESSION}:capture".encode()).decode()
    with pytest.raises(EnvelopeError, match="does not decrypt"):
        _open(shared_ring, dict(body))


def test_unknown_kid(shared_ring: KeyRing) -> None:
    body = _seal(shared_ring, {"a": 1}, kid="no-such-kid")
    with pytest.raises(EnvelopeError, match="unknown kid") as info:
        _open(shared_ring, dict(body))
    assert not info.value.crypto_failure


def test_old_capture_key_opens_within_grace_and_not_after(ring: KeyRing, clock: Any) -> None:
    old_body = _seal(ring, {"a": 1})
    new_kid = ring.rotate_capture_key(dt.timedelta(hours=1))
    assert ring.current_capture_kid == new_kid != old_body["kid"]
    assert _open(ring, dict(old_body)) == {"a": 1}
    assert _open(ring, dict(_seal(ring, {"b": 2}))) == {"b": 2}
    clock.advance(dt.timedelta(hours=1))
    with pytest.raises(EnvelopeError, match="unknown kid"):
        _open(ring, dict(old_body))
    assert _open(ring, dict(_seal(ring, {"b": 3}))) == {"b": 3}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("iv", "AAAAAAAAAAAAAAA"),  # missing padding character
        ("iv", "AAAAAAAAAAAAAAAA="),  # excess padding
        ("iv", "AAAAAAAA AAAAAAA"),  # whitespace
        ("iv", "AAAAAAAAAAAAAA-_"),  # base64url alphabet
        ("gcmTag", "AAAAAAAAAAAAAAAAAAAAAB=="),  # non-zero trailing bits (non-canonical)
        ("gcmTag", "ÄAAAAAAAAAAAAAAAAAAAAA=="),  # non-ASCII
        ("encryptedKey", 12345),  # not a string
        ("gcmAad", None),
    ],
)
def test_non_canonical_base64_is_refused_naming_the_field(
    shared_ring: KeyRing, field: str, value: object
) -> None:
    body: dict[str, object] = dict(_seal(shared_ring, {"a": 1}))
    body[field] = value
    with pytest.raises(EnvelopeError, match=f"^{field} ") as info:
        _open(shared_ring, body)
    assert not info.value.crypto_failure


@pytest.mark.parametrize(
    ("field", "size", "message"),
    [("iv", 16, "iv must be 12 bytes"), ("gcmTag", 12, "gcmTag must be 16 bytes")],
)
def test_wrong_iv_or_tag_length(shared_ring: KeyRing, field: str, size: int, message: str) -> None:
    body: dict[str, object] = dict(_seal(shared_ring, {"a": 1}))
    body[field] = base64.b64encode(bytes(size)).decode()
    with pytest.raises(EnvelopeError, match=message):
        _open(shared_ring, body)


@pytest.mark.parametrize("missing", sorted(ENVELOPE_FIELDS))
def test_missing_field_is_named(shared_ring: KeyRing, missing: str) -> None:
    body: dict[str, object] = dict(_seal(shared_ring, {"a": 1}))
    del body[missing]
    with pytest.raises(EnvelopeError, match=rf"missing field\(s\): {missing}$"):
        _open(shared_ring, body)


def test_extra_field_is_named(shared_ring: KeyRing) -> None:
    body: dict[str, object] = {**_seal(shared_ring, {"a": 1}), "alg": "none"}
    with pytest.raises(EnvelopeError, match=r"unknown field\(s\): alg$"):
        _open(shared_ring, body)


@pytest.mark.parametrize(
    "body", [{"nonce": "abc", "timestamp": 1, "frames": []}, {}, [1, 2], "text"]
)
def test_plain_body_is_refused(shared_ring: KeyRing, body: object) -> None:
    with pytest.raises(EnvelopeError, match="capture bodies must be encrypted envelopes"):
        open_envelope(
            body,
            keyring=shared_ring,
            session_id=SESSION,  # type: ignore[arg-type]
            route="capture",
        )


@pytest.mark.parametrize(
    "message",
    [b"[1, 2]", b'"text"', b"not json", b"\xff\xfe{}", b'{"a": 1, "a": 2}', b'{"a": NaN}'],
)
def test_plaintext_must_be_a_utf8_json_object(shared_ring: KeyRing, message: bytes) -> None:
    doc = shared_ring.public_key_document()
    body = seal_bytes(
        message,
        public_key_pem=doc["publicKey"],
        kid=doc["kid"],
        session_id=SESSION,
        route="capture",
    )
    with pytest.raises(EnvelopeError, match=r"must be a (UTF-8 )?JSON object") as info:
        _open(shared_ring, dict(body))
    assert not info.value.crypto_failure


def test_unknown_route_is_programmer_error(shared_ring: KeyRing) -> None:
    with pytest.raises(ValueError, match="route"):
        open_envelope({}, keyring=shared_ring, session_id=SESSION, route="admin")  # type: ignore[arg-type]


# ------------------------------------------------------------------ freshness

NOW = 1_900_000_000


@pytest.mark.parametrize("offset", [-300, 0, 300])
def test_timestamp_inside_window(offset: int) -> None:
    nonce = fresh_nonce()
    assert check_freshness({"nonce": nonce, "timestamp": NOW + offset}, now=NOW) == (
        nonce,
        NOW + offset,
    )


@pytest.mark.parametrize("offset", [-301, 301, -(10**9)])
def test_timestamp_outside_window(offset: int) -> None:
    with pytest.raises(errors.BadRequest, match=r"^timestamp .* check the device"):
        check_freshness({"nonce": fresh_nonce(), "timestamp": NOW + offset}, now=NOW)


def test_window_is_configurable() -> None:
    plain = {"nonce": fresh_nonce(), "timestamp": NOW + 31}
    with pytest.raises(errors.BadRequest, match="30 s"):
        check_freshness(plain, now=NOW, window=30)
    assert check_freshness(plain, now=NOW, window=31)[1] == NOW + 31


@pytest.mark.parametrize("timestamp", [None, "1900000000", 1_900_000_000.5, True])
def test_timestamp_must_be_an_integer(timestamp: object) -> None:
    with pytest.raises(errors.BadRequest, match=r"^timestamp must be an integer"):
        check_freshness({"nonce": fresh_nonce(), "timestamp": timestamp}, now=NOW)


def _b64url(raw: bytes, *, pad: bool = False) -> str:
    text = base64.urlsafe_b64encode(raw).decode()
    return text if pad else text.rstrip("=")


@pytest.mark.parametrize(
    "nonce",
    [_b64url(bytes(range(16))), _b64url(bytes(range(96))), _b64url(bytes(range(17)), pad=True)],
)
def test_nonce_accepted_and_returned_unpadded(nonce: str) -> None:
    got, _ = check_freshness({"nonce": nonce, "timestamp": NOW}, now=NOW)
    assert got == nonce.rstrip("=")


@pytest.mark.parametrize(
    ("nonce", "message"),
    [
        (_b64url(bytes(range(15))), "at least 16"),
        (_b64url(bytes(97)), "at most 128"),
        ("a+b/" * 6, "base64url"),
        ("AAAAAAAAAAAAAAAAAAAAAB", "base64url"),  # non-zero trailing bits
        ("", "base64url string"),
        (12345, "base64url string"),
        (None, "base64url string"),
    ],
)
def test_bad_nonce_is_named(nonce: object, message: str) -> None:
    with pytest.raises(errors.BadRequest, match=f"^nonce .*{message}"):
        check_freshness({"nonce": nonce, "timestamp": NOW}, now=NOW)


def test_freshness_applies_to_an_opened_envelope(shared_ring: KeyRing) -> None:
    nonce = fresh_nonce()
    plain = _open(shared_ring, dict(_seal(shared_ring, {"nonce": nonce, "timestamp": NOW})))
    assert check_freshness(plain, now=NOW + 5) == (nonce, NOW)
