"""The gallery's own state: dead rows, bulk loads, and sealed snapshots on disk."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bioverify.crypto import InMemoryDataKeyStore, KeyRing, TemplateCipher, TemplateDecryptError
from bioverify.engine import MemoryGallery
from bioverify.engine import gallery_snapshot as snap


def _unit_vectors(count: int, seed: int) -> np.ndarray:
    vectors = np.random.default_rng(seed).normal(size=(count, 128)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


class _Sealer:
    def __init__(self, cipher: TemplateCipher, tenant: str) -> None:
        self.cipher, self.tenant = cipher, tenant

    def seal(self, data: bytes, aad: bytes) -> bytes:
        return self.cipher.encrypt(self.tenant, data, aad)

    def open(self, blob: bytes, aad: bytes) -> bytes:
        return self.cipher.decrypt(self.tenant, blob, aad)


@pytest.fixture
def cipher(keyring: KeyRing) -> TemplateCipher:
    return TemplateCipher(keyring, InMemoryDataKeyStore())


def test_many_removals_compact_and_answers_stay_right() -> None:
    vectors = _unit_vectors(3000, 1)
    gallery = MemoryGallery(index_threshold=1)
    gallery.add_many("t", [f"c{i}" for i in range(3000)], vectors)
    for i in range(0, 3000, 2):  # erase half: past the dead-row share, rows are rewritten
        gallery.remove("t", f"c{i}")
    assert gallery.size("t") == 1500
    for i in (1, 999, 2999):
        assert gallery.search("t", vectors[i], k=1)[0][0] == f"c{i}"
    assert all(int(c[1:]) % 2 == 1 for c, _ in gallery.search("t", vectors[10], k=20))


def test_bulk_add_replaces_and_last_repeat_wins() -> None:
    vectors = _unit_vectors(4, 2)
    gallery = MemoryGallery(index_threshold=1)
    gallery.add("t", "a", vectors[0])
    gallery.add_many("t", ["a", "b", "b"], vectors[1:4])
    assert gallery.size("t") == 2
    assert gallery.search("t", vectors[1], k=1)[0] == ("a", pytest.approx(1.0, abs=1e-5))
    assert gallery.search("t", vectors[3], k=1)[0] == ("b", pytest.approx(1.0, abs=1e-5))
    assert all(c != "b" or s < 0.99 for c, s in gallery.search("t", vectors[2], k=2))
    with pytest.raises(ValueError, match="one customer id"):
        gallery.add_many("t", ["x"], vectors[:2])


@pytest.mark.parametrize("threshold", [10**9, 1], ids=["exact", "indexed"])
def test_snapshot_round_trip_gives_the_same_answers(
    tmp_path: Path, cipher: TemplateCipher, threshold: int
) -> None:
    vectors = _unit_vectors(800, 3)
    gallery = MemoryGallery(index_threshold=threshold)
    gallery.add_many("t", [f"customer-{i:05d}" for i in range(800)], vectors)
    gallery.remove("t", "customer-00005")
    path = tmp_path / "t.gallery"
    state = gallery.export_state("t")
    snap.write(path, "t", snap.Snapshot("model-x", 42, state), _Sealer(cipher, "t"))
    raw = path.read_bytes()
    assert vectors[6].tobytes()[:32] not in raw  # no plaintext template on disk
    assert b"customer-00006" not in raw
    loaded = snap.read(path, "t", _Sealer(cipher, "t"))
    assert (loaded.model_version, loaded.watermark) == ("model-x", 42)
    restored = MemoryGallery(index_threshold=threshold)
    restored.restore_state("t", loaded.state)
    assert restored.size("t") == 799
    assert restored.uses_index("t") == gallery.uses_index("t")
    probes = vectors[:30] + np.random.default_rng(4).normal(0, 0.1, (30, 128)).astype(np.float32)
    for probe in probes:
        assert restored.search("t", probe, 3) == gallery.search("t", probe, 3)
    restored.add("t", "new", vectors[5])  # a restored index keeps taking enrolments
    assert restored.search("t", vectors[5], 1)[0][0] == "new"


def test_snapshot_of_another_tenant_or_tampered_does_not_load(
    tmp_path: Path, cipher: TemplateCipher
) -> None:
    gallery = MemoryGallery()
    gallery.add_many("t", ["a", "b"], _unit_vectors(2, 5))
    path = tmp_path / "t.gallery"
    snap.write(path, "t", snap.Snapshot("m", 1, gallery.export_state("t")), _Sealer(cipher, "t"))
    with pytest.raises(TemplateDecryptError):
        snap.read(path, "u", _Sealer(cipher, "u"))  # moved to another tenant
    data = bytearray(path.read_bytes())
    data[-5] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(TemplateDecryptError):
        snap.read(path, "t", _Sealer(cipher, "t"))
    path.write_bytes(bytes(data[:-40]))
    with pytest.raises(snap.SnapshotError, match="truncated"):
        snap.read(path, "t", _Sealer(cipher, "t"))


def test_snapshot_spans_chunks(
    tmp_path: Path, cipher: TemplateCipher, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(snap, "CHUNK_BYTES", 4096)  # many chunks from a small gallery
    vectors = _unit_vectors(300, 6)
    gallery = MemoryGallery(index_threshold=1)
    gallery.add_many("t", [str(i) for i in range(300)], vectors)
    path = tmp_path / "t.gallery"
    snap.write(path, "t", snap.Snapshot("m", 7, gallery.export_state("t")), _Sealer(cipher, "t"))
    loaded = snap.read(path, "t", _Sealer(cipher, "t"))
    assert np.array_equal(loaded.state.matrix, gallery.export_state("t").matrix)
    assert oct(path.stat().st_mode & 0o777) == oct(0o600)


def test_dead_rows_below_the_compaction_share_still_give_k_live_answers() -> None:
    # 900 of 1,000 rows erased, the nearest ones first: too few dead rows to rewrite,
    # and the PQ candidates are nearly all dead. The answer is still the k best live rows.
    vectors = _unit_vectors(1000, 4)
    probe = vectors[0]
    order = np.argsort(-(vectors @ probe))
    indexed = MemoryGallery(index_threshold=1, candidates=10)
    exact = MemoryGallery(index_threshold=10**9)
    for gallery in (indexed, exact):
        gallery.add_many("t", [f"c{i}" for i in range(1000)], vectors)
        for i in order[:900]:
            gallery.remove("t", f"c{i}")
    assert indexed.uses_index("t") and indexed.size("t") == 100
    hits, expected = indexed.search("t", probe, k=5), exact.search("t", probe, k=5)
    assert [c for c, _ in hits] == [c for c, _ in expected]
    assert [s for _, s in hits] == pytest.approx([s for _, s in expected], abs=1e-6)
    assert {c for c, _ in hits} <= {f"c{i}" for i in order[900:]}
