"""Enrolment, 1:1 verification and 1:N identification over protected templates.

Templates are SFace embeddings encrypted with the tenant's data key (the client
is the tenant); the engine's gallery holds plaintext vectors in memory (and in
sealed snapshots), loaded at start and kept up to date by ``gallery_sync.py``.
Every enrolment and erasure is logged for the other replicas in the same transaction.
"""

from __future__ import annotations

import datetime as dt
import hmac
import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import bindparam, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from bioverify import errors
from bioverify.crypto.datakeys import TemplateCipher, customer_scope, key_id_of
from bioverify.crypto.models import DataKey
from bioverify.domain import session as sm
from bioverify.engine.gallery import Gallery, MemoryGallery
from bioverify.engine.matcher import Thresholds, cosine
from bioverify.sessions.gallery_log import record_change
from bioverify.sessions.gallery_sync import GallerySync
from bioverify.sessions.models import Enrolment, SessionRow
from bioverify.sessions.service import new_puid
from bioverify.storage.base import new_id

#: A customer's enrolment, read by every 1:1 decision and device check: built once.
_ENROLMENT = select(Enrolment).where(
    Enrolment.client_id == bindparam("client_id"),
    Enrolment.customer_id == bindparam("customer_id"),
)

Vector = npt.NDArray[np.float32]


def _aad(client_id: str, customer_id: str) -> bytes:
    return f"template:{client_id}:{customer_id}".encode()


@dataclass(frozen=True)
class Identification:
    customer_id: str
    puid: str
    score: float
    top_k: list[dict[str, Any]] = field(default_factory=list)


class Biometrics:
    """Decisions that need templates; every call runs in the caller's transaction."""

    def __init__(
        self,
        *,
        cipher: TemplateCipher,
        gallery: Gallery,
        thresholds: Thresholds,
        model_version: str,
    ) -> None:
        self.cipher = cipher
        self.gallery = gallery
        self.thresholds = thresholds
        self.model_version = model_version
        #: Loads and follows the gallery (set by the app with a snapshot folder, or
        #: made by the first :meth:`rebuild`).
        self.syncer: GallerySync | None = None
        self._sync_lock = threading.Lock()

    def _scope_of(self, client_id: str, customer_id: str, blob: bytes) -> str:
        """The key scope of a stored template: the customer's own key, or (templates
        stored before per-customer keys) the tenant's."""
        if self.cipher.has_key(client_id, key_id_of(blob)):
            return client_id
        return customer_scope(client_id, customer_id)

    def template(self, client_id: str, customer_id: str, blob: bytes) -> Vector:
        """Decrypt a stored template."""
        raw = self.cipher.decrypt(
            self._scope_of(client_id, customer_id, blob), blob, _aad(client_id, customer_id)
        )
        return np.frombuffer(raw, dtype=np.float32).copy()

    def _decrypt(self, enrolment: Enrolment) -> Vector:
        return self.template(enrolment.client_id, enrolment.customer_id, enrolment.template)

    def make_syncer(self, factory: sessionmaker[Session], **options: Any) -> GallerySync:
        """A :class:`GallerySync` for this gallery (``options``: snapshot_dir, intervals)."""
        if not isinstance(self.gallery, MemoryGallery):
            raise TypeError("gallery sync needs a MemoryGallery")
        return GallerySync(
            gallery=self.gallery,
            factory=factory,
            cipher=self.cipher,
            decrypt=self.template,
            model_version=self.model_version,
            **options,
        )

    def enrolment(self, db: Session, client_id: str, customer_id: str) -> Enrolment | None:
        return db.scalar(_ENROLMENT, {"client_id": client_id, "customer_id": customer_id})

    def duplicates(self, client_id: str, customer_id: str, embedding: Vector) -> list[str]:
        """Other customers of the tenant whose template already matches this face."""
        hits = self.gallery.search(client_id, embedding, k=3)
        return [
            cid for cid, score in hits if cid != customer_id and score >= self.thresholds.identify
        ]

    def enrol(
        self,
        db: Session,
        *,
        client_id: str,
        customer_id: str,
        puid: str,
        embedding: Vector,
        device_hash: str | None,
        now: dt.datetime,
    ) -> Enrolment:
        """Store (or replace) the customer's protected template and device binding."""
        blob = self.cipher.encrypt(
            customer_scope(client_id, customer_id),
            np.asarray(embedding, np.float32).tobytes(),
            _aad(client_id, customer_id),
        )
        enrolment = self.enrolment(db, client_id, customer_id)
        if enrolment is None:
            enrolment = Enrolment(
                client_id=client_id,
                customer_id=customer_id,
                puid=puid,
                guid=new_id(),
                template=blob,
                model_version=self.model_version,
                device_hash=device_hash,
                enrolled_at=now,
            )
            try:
                with db.begin_nested():
                    db.add(enrolment)
            except IntegrityError:
                # A concurrent enrolment of the same customer won (PostgreSQL): update it.
                enrolment = self.enrolment(db, client_id, customer_id)
                assert enrolment is not None
        if enrolment.template != blob:
            enrolment.template = blob
            enrolment.model_version = self.model_version
            enrolment.device_hash = device_hash
            enrolment.enrolled_at = now
        record_change(db, client_id, customer_id)
        db.flush()
        # The in-memory index follows the store; a rolled-back transaction leaves a
        # vector that identification refuses (it confirms hits against the store).
        self.gallery.add(client_id, customer_id, embedding)
        return enrolment

    def verify(self, enrolment: Enrolment, embedding: Vector) -> tuple[bool, float]:
        score = cosine(self._decrypt(enrolment), embedding)
        return score >= self.thresholds.verify, score

    def identify(self, db: Session, client_id: str, embedding: Vector) -> Identification | None:
        """The best stored customer above the threshold, or None.

        The gallery is a cache that may lag the store (another replica's erasure not
        yet applied): every hit is confirmed against the stored template, and one no
        longer stored is dropped, so an erased customer is never returned.
        """
        hits = self.gallery.search(client_id, embedding, k=5)
        above = [cid for cid, score in hits if score >= self.thresholds.identify]
        if not above:
            return None
        stored = {
            e.customer_id: e
            for e in db.scalars(
                select(Enrolment).where(
                    Enrolment.client_id == client_id, Enrolment.customer_id.in_(above)
                )
            )
        }
        confirmed: list[tuple[Enrolment, float]] = []
        for customer_id in above:
            enrolment = stored.get(customer_id)
            if enrolment is None:  # erased since the index saw it
                self.gallery.remove(client_id, customer_id)
                continue
            ok, score = self.verify(enrolment, embedding)
            if ok:
                confirmed.append((enrolment, score))
        if not confirmed:
            return None
        confirmed.sort(key=lambda pair: -pair[1])
        top_k = [{"customerId": e.customer_id, "score": round(s, 4)} for e, s in confirmed]
        best, score = confirmed[0]
        return Identification(best.customer_id, best.puid, score, top_k)

    def erase(self, db: Session, client_id: str, customer_id: str) -> bool:
        """Crypto-erase: destroy the customer's data key with the template row and its
        device binding, drop the vector. A copy of the template left anywhere (a WAL,
        a free page, a backup) no longer decrypts."""
        enrolment = self.enrolment(db, client_id, customer_id)
        if enrolment is None:
            return False
        scope = customer_scope(client_id, customer_id)
        db.delete(enrolment)
        record_change(db, client_id, customer_id)
        db.execute(delete(DataKey).where(DataKey.tenant_id == scope))
        db.flush()
        self.cipher.forget(scope)
        self.gallery.remove(client_id, customer_id)
        return True

    def decide(
        self,
        db: Session,
        row: SessionRow,
        embedding: Vector,
        now: dt.datetime,
        *,
        puid_if_new: str | None = None,
    ) -> int | None:
        """Match a capture by session type; the failing code, or None on success.

        Writes the match details (scores, identification, risk flags) into
        ``row.result``. An ENROLL that succeeds names the enrolled ``puid``/``guid``;
        an identification (SIGN-IN, VERIFY without customerId) that succeeds takes the
        identified customer's id, puid and guid. ``puid_if_new`` is the puid chosen
        (and its data key made, see :meth:`prepare`) before the locked transaction for
        an ENROLL that names neither customer nor puid.
        """
        result: dict[str, Any] = dict(row.result or {})
        flags: list[str] = []
        kind = sm.SessionType(row.type)
        if kind is sm.SessionType.ENROLL:
            puid = row.puid or puid_if_new or new_puid()
            customer_id = row.customer_id or puid
            duplicates = self.duplicates(row.client_id, customer_id, embedding)
            if duplicates:
                flags.append("DUPLICATE_ENROLMENT")
            enrolment = self.enrol(
                db,
                client_id=row.client_id,
                customer_id=customer_id,
                puid=puid,
                embedding=np.asarray(embedding),
                device_hash=row.device_hash,
                now=now,
            )
            row.puid, row.guid = enrolment.puid, enrolment.guid
            result["identification"] = {"puid": row.puid, "confidence": 1.0, "topKMatches": []}
        elif sm.matches_one_to_one(kind, row.customer_id):
            claimed = self.enrolment(db, row.client_id, row.customer_id or "")
            if claimed is None:
                return errors.FACE_NOT_MATCH
            ok, score = self.verify(claimed, embedding)
            result.update(matchScore=round(score, 4), threshold=self.thresholds.verify)
            row.result = result
            if not ok:
                return errors.FACE_NOT_MATCH
            if (
                row.bind_device
                and claimed.device_hash is not None
                and not hmac.compare_digest(claimed.device_hash, row.device_hash or "")
            ):
                return errors.DEVICE_MISMATCH
        else:
            found = self.identify(db, row.client_id, embedding)
            result["threshold"] = self.thresholds.identify
            if found is None:
                result["identification"] = {"puid": None, "confidence": 0.0, "topKMatches": []}
                row.result = result
                return errors.FACE_NOT_MATCH
            result.update(
                matchScore=round(found.score, 4),
                identification={
                    "puid": found.puid,
                    "confidence": round(found.score, 4),
                    "topKMatches": found.top_k[:1],
                },
            )
            identified = self.enrolment(db, row.client_id, found.customer_id)
            if (
                row.bind_device
                and identified is not None
                and identified.device_hash
                and not hmac.compare_digest(identified.device_hash, row.device_hash or "")
            ):
                row.result = result
                return errors.DEVICE_MISMATCH
            row.customer_id = found.customer_id
            row.puid = found.puid
            row.guid = identified.guid if identified is not None else None
        # The risk evaluation itself is computed from the outcome and the indicators
        # when the session is read (sessions.risk); the match adds its own flags.
        result["riskFlags"] = flags
        row.result = result
        return None

    def prepare(
        self, client_id: str, customer_id: str | None = None, *, enrolling: bool = False
    ) -> None:
        """Load the data keys a capture will need before a locked transaction does: the
        tenant's, and the customer's own when the capture names one (made if enrolling)."""
        self.cipher.ensure_key(client_id)
        if customer_id:
            scope = customer_scope(client_id, customer_id)
            if enrolling:
                self.cipher.ensure_key(scope)
            else:
                self.cipher.has_key(scope, "")  # reads the customer's key into the cache

    def rebuild(self, factory: sessionmaker[Session]) -> int:
        """Load the gallery (snapshots, then the store); returns the templates held."""
        with self._sync_lock:
            if self.syncer is None:
                self.syncer = self.make_syncer(factory)
            syncer = self.syncer
        return syncer.load()

    def sync(self, factory: sessionmaker[Session]) -> int:
        """Apply enrolments and erasures made since the last look, e.g. by another replica."""
        syncer = self.syncer
        if syncer is None:
            return self.rebuild(factory)
        return syncer.catch_up()


__all__ = ["Biometrics", "Identification"]
