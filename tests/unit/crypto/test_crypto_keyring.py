"""The key ring on disk: creation, permissions, rotation, reload, JWKS, keyed hashes."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from bioverify import errors
from bioverify.crypto import KeyRing, KeyRingError, UnknownKeyId, rotate_keys


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def test_created_files_are_private_whatever_the_umask(tmp_path: Path) -> None:
    keys = tmp_path / "data" / "keys"
    old = os.umask(0)
    try:
        KeyRing.load_or_create(keys)
    finally:
        os.umask(old)
    assert _mode(keys) == 0o700
    names = {p.name for p in keys.iterdir()}
    assert {"keyring.json", "hash.key", "master.key"} <= names
    assert any(n.startswith("capture-") for n in names)
    assert any(n.startswith("signing-") for n in names)
    for path in keys.iterdir():
        assert _mode(path) == 0o600, path.name


def test_reopening_keeps_the_same_keys(keys_dir: Path, ring: KeyRing) -> None:
    again = KeyRing.load_or_create(keys_dir)
    assert again.public_key_document() == ring.public_key_document()
    assert again.jwks() == ring.jwks()
    assert again.keyed_hash("cust-1", "customer-id") == ring.keyed_hash("cust-1", "customer-id")


def test_world_readable_key_file_is_refused_naming_it(keys_dir: Path) -> None:
    victim = next(keys_dir.glob("capture-*.pem"))
    victim.chmod(0o644)
    with pytest.raises(KeyRingError, match=re.escape(str(victim))) as info:
        KeyRing.load_or_create(keys_dir)
    assert "chmod 600" in info.value.message


def test_group_bits_and_open_directory_are_repaired(keys_dir: Path) -> None:
    key_file = keys_dir / "hash.key"
    key_file.chmod(0o640)
    keys_dir.chmod(0o755)
    KeyRing.load_or_create(keys_dir)
    assert _mode(key_file) == 0o600
    assert _mode(keys_dir) == 0o700


def test_corrupt_manifest_is_named(keys_dir: Path) -> None:
    (keys_dir / "keyring.json").write_text('{"version": 1, "capture": []}')
    with pytest.raises(KeyRingError, match=r"keyring\.json is corrupt"):
        KeyRing.load_or_create(keys_dir)


_CHILD = """
import json, sys
from pathlib import Path
from bioverify.crypto import KeyRing
ring = KeyRing.load_or_create(Path(sys.argv[1]))
print(json.dumps({"pub": ring.public_key_document(), "jwks": ring.jwks(),
                  "hash": ring.keyed_hash("x", "test"),
                  "wrapped": ring.wrap_key(bytes(32), aad=b"t").hex()}))
"""


def test_parallel_processes_create_one_ring(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _CHILD, str(keys)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(3)
    ]
    outs = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()
        outs.append(json.loads(out))
    assert all(
        o["pub"] == outs[0]["pub"] and o["jwks"] == outs[0]["jwks"] and o["hash"] == outs[0]["hash"]
        for o in outs
    )
    ring = KeyRing.load_or_create(keys)
    # Every process got the one master key: each one's wrapped key unwraps here.
    for o in outs:
        assert ring.unwrap_key(bytes.fromhex(o["wrapped"]), aad=b"t") == bytes(32)
    assert len(list(keys.glob("capture-*.pem"))) == 1


def test_public_key_document_is_the_rsa_3072_capture_key(ring: KeyRing) -> None:
    doc = ring.public_key_document()
    assert set(doc) == {"kid", "alg", "publicKey"}
    assert doc["alg"] == "RSA-OAEP-256+A256GCM"
    assert doc["kid"] == ring.current_capture_kid
    public = serialization.load_pem_public_key(doc["publicKey"].encode())
    assert isinstance(public, rsa.RSAPublicKey)
    assert public.key_size == 3072
    assert public.public_numbers() == (
        ring.capture_private_key(doc["kid"]).public_key().public_numbers()
    )


def test_unknown_capture_kid_is_a_bad_request(ring: KeyRing) -> None:
    with pytest.raises(UnknownKeyId) as info:
        ring.capture_private_key("nope")
    assert isinstance(info.value, errors.BadRequest)


def _verify_with_jwks(jwks: dict[str, Any], kid: str, signature: bytes, message: bytes) -> None:
    (jwk,) = [k for k in jwks["keys"] if k["kid"] == kid]
    assert {k: jwk[k] for k in ("kty", "crv", "use", "alg")} == {
        "kty": "OKP",
        "crv": "Ed25519",
        "use": "sig",
        "alg": "EdDSA",
    }
    assert "=" not in jwk["x"]
    ed25519.Ed25519PublicKey.from_public_bytes(_b64url_decode(jwk["x"])).verify(signature, message)


def test_jwks_verifies_a_signature_of_the_signing_key(ring: KeyRing) -> None:
    key = ring.signing_key()
    message = b"checkpoint body"
    signature = key.sign(message)
    jwks = ring.jwks()
    assert set(jwks) == {"keys"}
    _verify_with_jwks(jwks, key.kid, signature, message)
    with pytest.raises(InvalidSignature):
        _verify_with_jwks(jwks, key.kid, signature, message + b"!")


def test_signing_rotation_keeps_old_key_in_jwks_during_grace(ring: KeyRing, clock: Any) -> None:
    old = ring.signing_key()
    old_sig = old.sign(b"m")
    new_kid = ring.rotate_signing_key(dt.timedelta(days=1))
    assert ring.signing_key().kid == new_kid != old.kid
    assert [k["kid"] for k in ring.jwks()["keys"]] == [new_kid, old.kid]
    _verify_with_jwks(ring.jwks(), old.kid, old_sig, b"m")
    clock.advance(dt.timedelta(days=1))
    assert [k["kid"] for k in ring.jwks()["keys"]] == [new_kid]
    # Old checkpoints stay verifiable through the ring's key history.
    ring.signing_public_key(old.kid).verify(old_sig, b"m")
    with pytest.raises(UnknownKeyId):
        ring.signing_public_key("never-existed")


def test_capture_rotation_with_zero_grace_destroys_the_old_key(
    keys_dir: Path, ring: KeyRing
) -> None:
    old = ring.current_capture_kid
    ring.rotate_capture_key(dt.timedelta(0))
    with pytest.raises(UnknownKeyId):
        ring.capture_private_key(old)
    assert not (keys_dir / f"capture-{old}.pem").exists()
    assert len(list(keys_dir.glob("capture-*.pem"))) == 1


def test_expired_keys_are_pruned_on_next_rotation(
    keys_dir: Path, ring: KeyRing, clock: Any
) -> None:
    first = ring.current_capture_kid
    second = ring.rotate_capture_key(dt.timedelta(minutes=5))
    clock.advance(dt.timedelta(minutes=10))
    third = ring.rotate_capture_key(dt.timedelta(minutes=5))
    kept = {p.name for p in keys_dir.glob("capture-*.pem")}
    assert kept == {f"capture-{second}.pem", f"capture-{third}.pem"}
    listed = [k["kid"] for k in json.loads((keys_dir / "keyring.json").read_text())["capture"]]
    assert listed == [third, second]
    assert first != second


def test_rotate_keys_from_another_process_is_picked_up(keys_dir: Path, ring: KeyRing) -> None:
    before_capture, before_signing = ring.current_capture_kid, ring.signing_key().kid
    assert ring.reload_if_changed() is False
    result = rotate_keys(
        keys_dir,
        which="all",
        grace=dt.timedelta(hours=1),
        now=dt.datetime(2030, 1, 1, tzinfo=dt.UTC),
    )
    assert result["capture"]["retired"] == before_capture
    assert result["signing"]["retired"] == before_signing
    assert ring.reload_if_changed() is True
    assert ring.current_capture_kid == result["capture"]["current"]
    assert ring.signing_key().kid == result["signing"]["current"]
    ring.capture_private_key(before_capture)  # still within grace
    assert ring.reload_if_changed() is False


@pytest.mark.parametrize("which", ["capture", "signing"])
def test_rotate_keys_only_touches_what_was_asked(keys_dir: Path, ring: KeyRing, which: str) -> None:
    before = {"capture": ring.current_capture_kid, "signing": ring.signing_key().kid}
    result = rotate_keys(keys_dir, which=which, grace=dt.timedelta(0))  # type: ignore[arg-type]
    assert set(result) == {which}
    ring.reload_if_changed()
    after = {"capture": ring.current_capture_kid, "signing": ring.signing_key().kid}
    assert {k for k in before if before[k] != after[k]} == {which}


def test_rotate_keys_refuses_a_directory_without_a_ring(tmp_path: Path) -> None:
    with pytest.raises(KeyRingError, match="no key ring"):
        rotate_keys(tmp_path, which="all", grace=dt.timedelta(0))
    assert list(tmp_path.iterdir()) == []


def test_negative_grace_is_refused(ring: KeyRing) -> None:
    with pytest.raises(ValueError, match="grace"):
        ring.rotate_capture_key(dt.timedelta(seconds=-1))


def test_keyed_hash_is_stable_and_separated_by_purpose(ring: KeyRing, tmp_path: Path) -> None:
    digest = ring.keyed_hash("customer-42", "customer-id")
    assert len(digest) == 64
    assert int(digest, 16) >= 0
    assert digest == ring.keyed_hash("customer-42", "customer-id")
    assert digest != ring.keyed_hash("customer-42", "device")
    assert digest != ring.keyed_hash("customer-43", "customer-id")
    other = KeyRing.load_or_create(tmp_path / "other")
    assert other.keyed_hash("customer-42", "customer-id") != digest
    with pytest.raises(ValueError, match="purpose"):
        ring.keyed_hash("x", "Bad Purpose:")


def test_master_key_from_environment(tmp_path: Path, template_keys_dir: Path) -> None:
    keys = tmp_path / "keys"
    shutil.copytree(template_keys_dir, keys)
    (keys / "master.key").unlink()
    secret = base64.b64encode(bytes(range(32))).decode()
    ring = KeyRing.load_or_create(keys, master_key_b64=secret)
    assert not (keys / "master.key").exists()  # the environment's key is never written
    wrapped = ring.wrap_key(b"k" * 32, aad=b"tenant-a")
    same = KeyRing.load_or_create(keys, master_key_b64=secret)
    assert same.unwrap_key(wrapped, aad=b"tenant-a") == b"k" * 32
    with pytest.raises(KeyRingError, match="does not authenticate"):
        same.unwrap_key(wrapped, aad=b"tenant-b")
    other = base64.b64encode(bytes(32)).decode()
    with pytest.raises(KeyRingError, match="BIOVERIFY_MASTER_KEY"):
        KeyRing.load_or_create(keys, master_key_b64=other).unwrap_key(wrapped, aad=b"tenant-a")


@pytest.mark.parametrize("value", ["not base64!", base64.b64encode(bytes(16)).decode(), ""])
def test_bad_master_key_names_the_variable(tmp_path: Path, value: str) -> None:
    with pytest.raises(KeyRingError, match="BIOVERIFY_MASTER_KEY") as info:
        KeyRing.load_or_create(tmp_path / "keys", master_key_b64=value)
    assert value not in info.value.message or not value
    assert not (tmp_path / "keys").exists()


def test_private_material_never_in_reprs(keys_dir: Path, ring: KeyRing) -> None:
    key = ring.signing_key()
    raw_private = key.private_key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    texts = [repr(ring), repr(key), str(ring)]
    assert key.kid in repr(key)
    for text in texts:
        assert "PRIVATE" not in text
        for encoded in (raw_private.hex(), base64.b64encode(raw_private).decode()):
            assert encoded not in text
