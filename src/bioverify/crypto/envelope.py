"""Opening the encrypted envelopes that capture clients POST (API.md section 4).

An envelope is ``{"encryptedKey", "encryptedMessage", "iv", "gcmTag", "gcmAad",
"kid"}``: RSA-OAEP-SHA256 wraps a fresh AES-256-GCM key to the capture key ``kid``;
the AAD binds the ciphertext to one session and route. Every failure is a
:class:`EnvelopeError` (400) whose message names what to fix; its
``crypto_failure`` flag tells the caller to audit and alert.

A failed RSA unwrap and a failed GCM tag give the same message and take the same
path (a random key stands in for the one that did not unwrap), so a client cannot
learn which check failed (no padding oracle).
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Mapping
from typing import Final, Literal, NoReturn

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from bioverify import errors, strict_json
from bioverify.crypto import _b64
from bioverify.crypto.keyring import KeyRing, UnknownKeyId

Route = Literal["events", "capture", "document"]

ENVELOPE_FIELDS: Final = frozenset(
    {"encryptedKey", "encryptedMessage", "iv", "gcmTag", "gcmAad", "kid"}
)
_BASE64_FIELDS: Final = ("encryptedKey", "encryptedMessage", "iv", "gcmTag", "gcmAad")
_ROUTES: Final = frozenset({"events", "capture", "document"})
IV_BYTES: Final = 12
TAG_BYTES: Final = 16
AES_KEY_BYTES: Final = 32
MAX_KID_CHARS: Final = 64
NONCE_MIN_BYTES: Final = 16
NONCE_MAX_CHARS: Final = 128
FRESHNESS_WINDOW_S: Final = 300

_OAEP: Final = padding.OAEP(
    mgf=padding.MGF1(algorithm=hashes.SHA256()), algorithm=hashes.SHA256(), label=None
)


class EnvelopeError(errors.BadRequest):
    """A capture body that is not a valid envelope for this session and route."""

    def __init__(self, message: str, *, crypto_failure: bool = False) -> None:
        super().__init__(message)
        #: True when an integrity check failed (AAD binding, key unwrap, GCM tag):
        #: the caller audits it and feeds the crypto-failure alert.
        self.crypto_failure = crypto_failure


def envelope_aad(session_id: str, route: Route) -> bytes:
    """The AAD an envelope for ``session_id`` and ``route`` must carry."""
    if route not in _ROUTES:
        raise ValueError(f"route must be one of {sorted(_ROUTES)}")
    return f"bioverify:v1:{session_id}:{route}".encode()


def _fields(body: object) -> Mapping[str, object]:
    if not isinstance(body, Mapping) or not ENVELOPE_FIELDS & body.keys():
        raise EnvelopeError(
            f"capture bodies must be encrypted envelopes: {{{', '.join(sorted(ENVELOPE_FIELDS))}}}"
        )
    missing = ENVELOPE_FIELDS - body.keys()
    if missing:
        raise EnvelopeError(f"envelope is missing field(s): {', '.join(sorted(missing))}")
    extra = {str(k) for k in body.keys() - ENVELOPE_FIELDS}
    if extra:
        raise EnvelopeError(f"envelope has unknown field(s): {', '.join(sorted(extra))}")
    return body


def _decode(name: str, value: object) -> bytes:
    if not isinstance(value, str):
        raise EnvelopeError(f"{name} must be a string of standard base64")
    try:
        return _b64.decode_std(value)
    except ValueError as exc:
        raise EnvelopeError(
            f"{name} is not standard base64 with padding (RFC 4648 section 4)"
        ) from exc


def _undecryptable(cause: Exception | None = None) -> NoReturn:
    raise EnvelopeError(
        "envelope does not decrypt or authenticate: fetch /public-key and encrypt again",
        crypto_failure=True,
    ) from cause


def _unwrap_key(private_key: rsa.RSAPrivateKey, encrypted_key: bytes) -> bytes:
    """The AES key, or a random stand-in when OAEP fails (which then fails GCM)."""
    try:
        key = private_key.decrypt(encrypted_key, _OAEP)
    except ValueError:
        return secrets.token_bytes(AES_KEY_BYTES)
    return key if len(key) == AES_KEY_BYTES else secrets.token_bytes(AES_KEY_BYTES)


def _parse_plaintext(plaintext: bytes) -> dict[str, object]:
    try:
        doc = strict_json.loads(plaintext, what="The decrypted envelope")
    except strict_json.TooDeep as exc:
        # The field first, as the plaintext schema names the fields it refuses.
        where = exc.path or "the document"
        raise EnvelopeError(
            f"{where} is nested deeper than {strict_json.MAX_DEPTH} levels: the decrypted "
            "envelope must be a UTF-8 JSON object within limits"
        ) from None
    except errors.BadRequest as exc:
        raise EnvelopeError(
            f"the decrypted envelope must be a UTF-8 JSON object within limits ({exc.message})"
        ) from None
    if not isinstance(doc, dict):
        raise EnvelopeError("the decrypted envelope must be a JSON object")
    return doc


def open_envelope(
    body: Mapping[str, object], *, keyring: KeyRing, session_id: str, route: Route
) -> dict[str, object]:
    """Check and decrypt a capture POST body; return its JSON object plaintext."""
    aad = envelope_aad(session_id, route)
    fields = _fields(body)
    raw = {name: _decode(name, fields[name]) for name in _BASE64_FIELDS}
    if len(raw["iv"]) != IV_BYTES:
        raise EnvelopeError(f"iv must be {IV_BYTES} bytes")
    if len(raw["gcmTag"]) != TAG_BYTES:
        raise EnvelopeError(f"gcmTag must be {TAG_BYTES} bytes (a 128-bit tag)")
    if not hmac.compare_digest(raw["gcmAad"], aad):
        raise EnvelopeError(
            "gcmAad does not match this session and route: it must be "
            f"'bioverify:v1:{{sessionId}}:{route}'",
            crypto_failure=True,
        )
    kid = fields["kid"]
    if not isinstance(kid, str) or not 0 < len(kid) <= MAX_KID_CHARS:
        raise EnvelopeError(f"kid must be a string of 1 to {MAX_KID_CHARS} characters")
    try:
        private_key = keyring.capture_private_key(kid)
    except UnknownKeyId as exc:
        raise EnvelopeError("unknown kid: fetch /public-key and encrypt again") from exc
    aes_key = _unwrap_key(private_key, raw["encryptedKey"])
    try:
        plaintext = AESGCM(aes_key).decrypt(raw["iv"], raw["encryptedMessage"] + raw["gcmTag"], aad)
    except InvalidTag as exc:
        _undecryptable(exc)
    return _parse_plaintext(plaintext)


def check_freshness(
    plaintext: Mapping[str, object], *, now: float, window: int = FRESHNESS_WINDOW_S
) -> tuple[str, int]:
    """Check the plaintext's ``nonce`` and ``timestamp``; return (nonce, timestamp).

    The nonce comes back unpadded (its one canonical spelling), ready to be the
    replay key. Replay detection itself is the caller's, since it needs storage.
    """
    nonce = plaintext.get("nonce")
    if not isinstance(nonce, str) or not 0 < len(nonce) <= NONCE_MAX_CHARS:
        raise errors.BadRequest(
            f"nonce must be a base64url string of at most {NONCE_MAX_CHARS} characters"
        )
    try:
        nonce_bytes = _b64.decode_url(nonce)
    except ValueError as exc:
        raise errors.BadRequest("nonce must be base64url (RFC 4648 section 5)") from exc
    if len(nonce_bytes) < NONCE_MIN_BYTES:
        raise errors.BadRequest(
            f"nonce must hold at least {NONCE_MIN_BYTES} random bytes ({NONCE_MIN_BYTES * 8} bits)"
        )
    timestamp = plaintext.get("timestamp")
    if not isinstance(timestamp, int) or isinstance(timestamp, bool):
        raise errors.BadRequest("timestamp must be an integer of unix seconds")
    if abs(now - timestamp) > window:
        raise errors.BadRequest(
            f"timestamp is more than {window} s from the server's "
            "clock: check the device's date and time"
        )
    return _b64.encode_url(nonce_bytes), timestamp


__all__ = [
    "ENVELOPE_FIELDS",
    "EnvelopeError",
    "Route",
    "check_freshness",
    "envelope_aad",
    "open_envelope",
]
