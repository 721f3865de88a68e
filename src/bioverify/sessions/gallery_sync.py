"""Keep a replica's 1:N gallery up to date: sealed snapshots, then the change log.

At start a replica loads each tenant's snapshot (encrypted with the tenant's data
key, ``engine/gallery_snapshot.py``) and replays the change log after the snapshot's
watermark; a tenant without a usable snapshot is loaded from ``enrolments``. Then
:meth:`GallerySync.catch_up` runs on every 1:N request and every ``poll_seconds`` in
the background, so an enrolment or erasure made by another replica arrives within
about ``poll_seconds``. Snapshots are rewritten when they fall ``snapshot_seconds``
behind, and within ``erasure_snapshot_seconds`` after an erasure, so an erased
template does not linger on disk. Identification never trusts the gallery alone: it
confirms every hit against the store (``biometrics.py``), so a replica that has not
caught up still never returns an erased customer.

PostgreSQL hands out sequence numbers before commit, so a later row can become
visible before an earlier one: a missing number below a seen one is waited for up
to ``gap_seconds`` (a rolled-back transaction leaves a permanent hole).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt
import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bioverify.accounts.models import Client
from bioverify.crypto.datakeys import TemplateCipher, TemplateDecryptError
from bioverify.engine import gallery_snapshot
from bioverify.engine.gallery import MemoryGallery
from bioverify.sessions.gallery_log import changes_after, last_seq
from bioverify.sessions.models import Enrolment
from bioverify.storage.database import transaction

log = structlog.get_logger("bioverify.gallery")

Vector = npt.NDArray[np.float32]
#: (client_id, customer_id, encrypted template) -> plaintext template
Decrypt = Callable[[str, str, bytes], Vector]

_BATCH: Final = 5000
_LOAD_BATCH: Final = 20_000
_IN_CHUNK: Final = 500


class _TenantSealer:
    """Snapshot sealing with the tenant's data key (the same cipher as templates)."""

    def __init__(self, cipher: TemplateCipher, tenant: str) -> None:
        self._cipher = cipher
        self._tenant = tenant

    def seal(self, data: bytes, aad: bytes) -> bytes:
        return self._cipher.encrypt(self._tenant, data, aad)

    def open(self, blob: bytes, aad: bytes) -> bytes:
        return self._cipher.decrypt(self._tenant, blob, aad)


class GallerySync:
    """Loads, follows and snapshots one replica's gallery (thread-safe)."""

    def __init__(
        self,
        *,
        gallery: MemoryGallery,
        factory: sessionmaker[Session],
        cipher: TemplateCipher,
        decrypt: Decrypt,
        model_version: str,
        snapshot_dir: Path | None = None,
        poll_seconds: float = 0.5,
        snapshot_seconds: float = 300.0,
        erasure_snapshot_seconds: float = 60.0,
        gap_seconds: float = 10.0,
    ) -> None:
        self.gallery = gallery
        self.poll_seconds = poll_seconds
        self._factory = factory
        self._cipher = cipher
        self._decrypt = decrypt
        self._model_version = model_version
        self._snapshot_dir = snapshot_dir
        self._snapshot_seconds = snapshot_seconds
        self._erasure_snapshot_seconds = erasure_snapshot_seconds
        self._gap_seconds = gap_seconds
        self._lock = threading.RLock()
        self._watermark = 0  # every change <= this has been applied (or given up on)
        self._seen: set[int] = set()  # applied changes above the watermark
        self._gap_since: dict[int, float] = {}
        # tenant -> (first unsnapshotted change time, an erasure is among them)
        self._dirty: dict[str, tuple[float, bool]] = {}
        self._written_at: dict[str, float] = {}

    @property
    def watermark(self) -> int:
        with self._lock:
            return self._watermark

    def snapshot_path(self, tenant: str) -> Path | None:
        if self._snapshot_dir is None:
            return None
        # Hashed: file names do not reveal tenant ids.
        name = hashlib.sha256(tenant.encode("utf-8")).hexdigest()[:32]
        return self._snapshot_dir / f"{name}.gallery"

    # -- start-up ---------------------------------------------------------------

    def load(self) -> int:
        """Fill the gallery from snapshots and the store; returns templates held."""
        with self._lock:
            with transaction(self._factory) as db:
                start = last_seq(db)
                # Every client is a tenant; the clients table is small, while a
                # DISTINCT over a million enrolments scans them all.
                tenants = [str(t) for t in db.scalars(select(Client.id))]
            floor = start
            for tenant in tenants:
                snapshot = self._read_snapshot(tenant)
                if snapshot is not None:
                    self.gallery.restore_state(tenant, snapshot.state)
                    floor = min(floor, snapshot.watermark)
                    self._written_at[tenant] = time.monotonic()
                else:
                    self._load_tenant(tenant)
                    # Due at once: the next start should not pay for a store load again.
                    self._mark_dirty(tenant, erased=False)
            self._watermark, self._seen, self._gap_since = floor, set(), {}
        self.catch_up()
        return sum(self.gallery.size(t) for t in tenants)

    def _read_snapshot(self, tenant: str) -> gallery_snapshot.Snapshot | None:
        path = self.snapshot_path(tenant)
        if path is None or not path.is_file():
            return None
        try:
            snapshot = gallery_snapshot.read(path, tenant, _TenantSealer(self._cipher, tenant))
        except (OSError, gallery_snapshot.SnapshotError, TemplateDecryptError) as exc:
            # The store is the truth: an unusable snapshot costs time, not answers.
            log.warning("gallery_snapshot_unusable", reason=type(exc).__name__)
            return None
        if snapshot.model_version != self._model_version:
            log.info("gallery_snapshot_other_model")
            return None
        return snapshot

    def _load_tenant(self, tenant: str) -> None:
        # Pages in separate transactions, decrypted outside them: loading a data key
        # reads the store, which must not wait on our own open transaction (SQLite).
        after = ""
        while True:
            with transaction(self._factory) as db:
                page = list(
                    db.execute(
                        # (client_id, customer_id) is the unique index: a range scan.
                        select(Enrolment.customer_id, Enrolment.template, Enrolment.model_version)
                        .where(Enrolment.client_id == tenant, Enrolment.customer_id > after)
                        .order_by(Enrolment.customer_id)
                        .limit(_LOAD_BATCH)
                    )
                )
            if not page:
                return
            after = str(page[-1][0])
            page = [row for row in page if row[2] == self._model_version]
            if page:
                ids = [str(cid) for cid, _, _ in page]
                rows = np.stack([self._decrypt(tenant, cid, bytes(blob)) for cid, blob, _ in page])
                self.gallery.add_many(tenant, ids, rows)

    # -- following the log ------------------------------------------------------

    def catch_up(self) -> int:
        """Apply changes committed since the last call; returns how many were applied."""
        applied = 0
        with self._lock:
            while True:
                with transaction(self._factory) as db:
                    rows = changes_after(db, self._watermark, _BATCH)
                    fresh = [(s, c, k) for s, c, k in rows if s not in self._seen]
                    current = self._current(db, {(c, k) for _, c, k in fresh})
                # Decrypt outside the transaction: loading data keys reads the store.
                for client_id, customer_id in {(c, k) for _, c, k in fresh}:
                    blob = current.get((client_id, customer_id))
                    if blob is None:
                        self.gallery.remove(client_id, customer_id)
                    else:
                        vec = self._decrypt(client_id, customer_id, blob)
                        self.gallery.add(client_id, customer_id, vec)
                    self._mark_dirty(client_id, erased=blob is None)
                    applied += 1
                before = self._watermark
                self._seen.update(s for s, _, _ in rows)
                self._advance()
                if len(rows) < _BATCH or (not fresh and self._watermark == before):
                    return applied

    def _current(self, db: Session, keys: set[tuple[str, str]]) -> dict[tuple[str, str], bytes]:
        """Encrypted templates of the current model for ``keys`` (absent: erased)."""
        by_client: dict[str, list[str]] = defaultdict(list)
        for client_id, customer_id in keys:
            by_client[client_id].append(customer_id)
        found: dict[tuple[str, str], bytes] = {}
        for client_id, customers in by_client.items():
            for i in range(0, len(customers), _IN_CHUNK):
                rows = db.execute(
                    select(Enrolment.customer_id, Enrolment.template).where(
                        Enrolment.client_id == client_id,
                        Enrolment.customer_id.in_(customers[i : i + _IN_CHUNK]),
                        Enrolment.model_version == self._model_version,
                    )
                )
                found.update(((client_id, str(cid)), bytes(blob)) for cid, blob in rows)
        return found

    def _advance(self) -> None:
        now = time.monotonic()
        while True:
            following = self._watermark + 1
            if following in self._seen:
                self._seen.discard(following)
                self._watermark = following
                continue
            if self._seen and following < min(self._seen):
                # A hole below a visible change: wait for its transaction to commit.
                since = self._gap_since.setdefault(following, now)
                if now - since >= self._gap_seconds:
                    del self._gap_since[following]
                    self._watermark = following
                    continue
            return

    def _mark_dirty(self, tenant: str, *, erased: bool) -> None:
        since, had_erasure = self._dirty.get(tenant, (time.monotonic(), False))
        self._dirty[tenant] = (since, had_erasure or erased)

    # -- snapshots --------------------------------------------------------------

    def write_snapshots(self, *, force: bool = False) -> int:
        """Write the snapshots that are due (all with ``force``); returns files written."""
        if self._snapshot_dir is None:
            return 0
        written = 0
        now = time.monotonic()
        for tenant in self.gallery.tenants():
            with self._lock:
                dirty = self._dirty.get(tenant)
                last = self._written_at.get(tenant, float("-inf"))
                due = force or (
                    dirty is not None
                    and (
                        now - last >= self._snapshot_seconds
                        or (dirty[1] and now - last >= self._erasure_snapshot_seconds)
                    )
                )
                if not due:
                    continue
                # Under the lock: the rows and the watermark describe the same moment.
                state = self.gallery.export_state(tenant)
                watermark = self._watermark
                self._dirty.pop(tenant, None)
                self._written_at[tenant] = now
            path = self.snapshot_path(tenant)
            assert path is not None
            snapshot = gallery_snapshot.Snapshot(self._model_version, watermark, state)
            gallery_snapshot.write(path, tenant, snapshot, _TenantSealer(self._cipher, tenant))
            written += 1
        return written

    # -- background -------------------------------------------------------------

    def tick(self) -> None:
        self.catch_up()
        self.write_snapshots()

    async def run(self, stop: asyncio.Event) -> None:
        """Follow the log until ``stop``; failures are logged and retried next round."""
        while not stop.is_set():
            try:
                await asyncio.to_thread(self.tick)
            except Exception as exc:  # noqa: BLE001  # the store may be down briefly
                log.warning("gallery_sync_failed", error=type(exc).__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.poll_seconds)


__all__ = ["GallerySync"]
