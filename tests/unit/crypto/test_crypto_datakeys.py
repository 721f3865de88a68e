"""Template encryption with per-tenant data keys wrapped by the master key."""

from __future__ import annotations

import base64
import shutil
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bioverify import errors
from bioverify.crypto import InMemoryDataKeyStore, KeyRing, TemplateCipher, TemplateDecryptError


@pytest.fixture(scope="module")
def cipher(shared_ring: KeyRing) -> TemplateCipher:
    return TemplateCipher(shared_ring, InMemoryDataKeyStore())


@given(
    tenant=st.text(min_size=1, max_size=20),
    plaintext=st.binary(max_size=2048),
    aad=st.binary(max_size=64),
)
@settings(max_examples=80, deadline=None)
def test_round_trip(cipher: TemplateCipher, tenant: str, plaintext: bytes, aad: bytes) -> None:
    blob = cipher.encrypt(tenant, plaintext, aad)
    assert plaintext == cipher.decrypt(tenant, blob, aad)
    if len(plaintext) >= 16:
        assert plaintext not in blob


@given(position=st.integers(min_value=0), mask=st.integers(min_value=1, max_value=255))
@settings(max_examples=120, deadline=None)
def test_any_flipped_byte_fails(cipher: TemplateCipher, position: int, mask: int) -> None:
    blob = bytearray(cipher.encrypt("tenant-a", b"template bytes" * 8, b"customer-1"))
    blob[position % len(blob)] ^= mask
    with pytest.raises(TemplateDecryptError) as info:
        cipher.decrypt("tenant-a", bytes(blob), b"customer-1")
    assert info.value.crypto_failure
    assert isinstance(info.value, errors.InternalError)


@pytest.mark.parametrize("cut", [0, 1, 5, 20, -1])
def test_truncated_blob_fails(cipher: TemplateCipher, cut: int) -> None:
    blob = cipher.encrypt("tenant-a", b"t" * 64, b"c")
    with pytest.raises(TemplateDecryptError):
        cipher.decrypt("tenant-a", blob[:cut], b"c")


def test_blob_is_bound_to_tenant_and_aad(cipher: TemplateCipher) -> None:
    blob = cipher.encrypt("tenant-a", b"template", b"customer-1")
    cipher.encrypt("tenant-b", b"x", b"")  # tenant-b has keys of its own
    with pytest.raises(TemplateDecryptError):
        cipher.decrypt("tenant-a", blob, b"customer-2")
    with pytest.raises(TemplateDecryptError):
        cipher.decrypt("tenant-b", blob, b"customer-1")


def test_wrapped_keys_do_not_move_between_tenants(shared_ring: KeyRing) -> None:
    store = InMemoryDataKeyStore()
    cipher = TemplateCipher(shared_ring, store)
    blob = cipher.encrypt("tenant-a", b"template", b"c")
    # An attacker with database access copies tenant-a's wrapped key to tenant-b.
    ((key_id, wrapped),) = store.get_wrapped("tenant-a")
    store.put_wrapped("tenant-b", key_id, wrapped)
    with pytest.raises(TemplateDecryptError, match="does not unwrap"):
        TemplateCipher(shared_ring, store).decrypt("tenant-b", blob, b"c")


def test_keys_are_per_tenant_and_stored_wrapped(shared_ring: KeyRing) -> None:
    store = InMemoryDataKeyStore()
    cipher = TemplateCipher(shared_ring, store)
    cipher.encrypt("tenant-a", b"x", b"")
    cipher.encrypt("tenant-a", b"y", b"")
    cipher.encrypt("tenant-b", b"z", b"")
    ((a_id, a_wrapped),) = store.get_wrapped("tenant-a")
    ((b_id, _),) = store.get_wrapped("tenant-b")
    assert a_id != b_id
    assert len(a_wrapped) > 32  # nonce + wrapped key + tag: never the raw key


def test_old_blobs_decrypt_after_tenant_key_rotation(shared_ring: KeyRing) -> None:
    store = InMemoryDataKeyStore()
    cipher = TemplateCipher(shared_ring, store)
    old = cipher.encrypt("t", b"old template", b"c")
    new_id = cipher.rotate("t")
    new = cipher.encrypt("t", b"new template", b"c")
    assert store.get_wrapped("t")[0][0] == new_id
    fresh = TemplateCipher(shared_ring, store)  # another process, empty cache
    assert fresh.decrypt("t", old, b"c") == b"old template"
    assert fresh.decrypt("t", new, b"c") == b"new template"


def test_another_master_key_cannot_decrypt(
    shared_ring: KeyRing, template_keys_dir: Path, tmp_path: Path
) -> None:
    store = InMemoryDataKeyStore()
    blob = TemplateCipher(shared_ring, store).encrypt("t", b"template", b"c")
    keys = tmp_path / "keys"
    shutil.copytree(template_keys_dir, keys)
    other = KeyRing.load_or_create(keys, master_key_b64=base64.b64encode(bytes(32)).decode())
    with pytest.raises(TemplateDecryptError):
        TemplateCipher(other, store).decrypt("t", blob, b"c")


def test_blob_naming_unknown_key_fails(cipher: TemplateCipher, shared_ring: KeyRing) -> None:
    blob = cipher.encrypt("tenant-a", b"template", b"c")
    with pytest.raises(TemplateDecryptError, match="unknown data key"):
        TemplateCipher(shared_ring, InMemoryDataKeyStore()).decrypt("tenant-a", blob, b"c")
