"""Keys and cryptography: key ring, capture envelopes, template encryption, rotation."""

from bioverify.crypto.datakeys import (
    DataKeyStore,
    InMemoryDataKeyStore,
    TemplateCipher,
    TemplateDecryptError,
)
from bioverify.crypto.envelope import (
    ENVELOPE_FIELDS,
    EnvelopeError,
    Route,
    check_freshness,
    envelope_aad,
    open_envelope,
)
from bioverify.crypto.keyring import (
    ENVELOPE_ALG,
    KeyRing,
    KeyRingError,
    SigningKey,
    UnknownKeyId,
)
from bioverify.crypto.rotation import Which, rotate_keys

__all__ = [
    "ENVELOPE_ALG",
    "ENVELOPE_FIELDS",
    "DataKeyStore",
    "EnvelopeError",
    "InMemoryDataKeyStore",
    "KeyRing",
    "KeyRingError",
    "Route",
    "SigningKey",
    "TemplateCipher",
    "TemplateDecryptError",
    "UnknownKeyId",
    "Which",
    "check_freshness",
    "envelope_aad",
    "open_envelope",
    "rotate_keys",
]
