"""Enrolment, 1:1 verification and 1:N identification over protected templates.

Templates are SFace embeddings encrypted with the tenant's data key (the client
is the tenant); the engine's gallery holds plaintext vectors in memory only, and
is rebuilt from the store at start.
"""

from __future__ import annotations

import datetime as dt
import hmac
import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from bioverify import errors
from bioverify.crypto.datakeys import TemplateCipher, customer_scope, key_id_of
from bioverify.crypto.models import DataKey
from bioverify.domain import session as sm
from bioverify.engine.gallery import Gallery
from bioverify.engine.matcher import Thresholds, cosine
from bioverify.sessions.models import Enrolment, SessionRow
from bioverify.sessions.service import new_puid
from bioverify.storage.base import new_id
from bioverify.storage.database import transaction

Vector = npt.NDArray[np.float32]

SYNC_MARGIN = dt.timedelta(seconds=30)


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
        # Newest enrolment time this replica's gallery has seen (see ``sync``).
        self._synced_at: dt.datetime | None = None
        self._sync_lock = threading.Lock()

    def _scope_of(self, enrolment: Enrolment) -> str:
        """The key scope of a stored template: the customer's own key, or (templates
        stored before per-customer keys) the tenant's."""
        kid = key_id_of(enrolment.template)
        if self.cipher.has_key(enrolment.client_id, kid):
            return enrolment.client_id
        return customer_scope(enrolment.client_id, enrolment.customer_id)

    def _decrypt(self, enrolment: Enrolment) -> Vector:
        raw = self.cipher.decrypt(
            self._scope_of(enrolment),
            enrolment.template,
            _aad(enrolment.client_id, enrolment.customer_id),
        )
        return np.frombuffer(raw, dtype=np.float32).copy()

    def enrolment(self, db: Session, client_id: str, customer_id: str) -> Enrolment | None:
        return db.scalar(
            select(Enrolment).where(
                Enrolment.client_id == client_id, Enrolment.customer_id == customer_id
            )
        )

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
        db.flush()
        # The in-memory index follows the store; a rolled-back transaction is repaired
        # by the next rebuild (the index is a cache of the table).
        self.gallery.add(client_id, customer_id, embedding)
        return enrolment

    def verify(self, enrolment: Enrolment, embedding: Vector) -> tuple[bool, float]:
        score = cosine(self._decrypt(enrolment), embedding)
        return score >= self.thresholds.verify, score

    def identify(self, db: Session, client_id: str, embedding: Vector) -> Identification | None:
        hits = self.gallery.search(client_id, embedding, k=5)
        top_k = [{"customerId": cid, "score": round(score, 4)} for cid, score in hits]
        if not hits or hits[0][1] < self.thresholds.identify:
            return None
        best_id = hits[0][0]
        enrolment = self.enrolment(db, client_id, best_id)
        if enrolment is None:  # erased since the index saw it
            self.gallery.remove(client_id, best_id)
            return None
        # Confirm against the stored template: the index is only a cache.
        ok, score = self.verify(enrolment, embedding)
        if not ok:
            return None
        return Identification(enrolment.customer_id, enrolment.puid, score, top_k)

    def erase(self, db: Session, client_id: str, customer_id: str) -> bool:
        """Crypto-erase: destroy the customer's data key with the template row and its
        device binding, drop the vector. A copy of the template left anywhere (a WAL,
        a free page, a backup) no longer decrypts."""
        enrolment = self.enrolment(db, client_id, customer_id)
        if enrolment is None:
            return False
        scope = customer_scope(client_id, customer_id)
        db.delete(enrolment)
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
        """Load every stored template of the current model into the gallery."""
        return self._load(factory, since=None)

    def sync(self, factory: sessionmaker[Session]) -> int:
        """Add enrolments made (or replaced) since the last load, e.g. by another replica.

        Erasures need no sync: identification confirms every hit against the store.
        """
        with self._sync_lock:
            since = self._synced_at
        if since is None:
            return self._load(factory, since=None)
        # A margin for clocks of other replicas and transactions that commit late.
        return self._load(factory, since=since - SYNC_MARGIN)

    def _load(self, factory: sessionmaker[Session], *, since: dt.datetime | None) -> int:
        query = select(Enrolment).where(Enrolment.model_version == self.model_version)
        if since is not None:
            query = query.where(Enrolment.enrolled_at >= since)
        with transaction(factory) as db:
            enrolments = list(db.scalars(query))
        # Decrypt outside the transaction: loading data keys reads the store.
        for enrolment in enrolments:
            self.gallery.add(enrolment.client_id, enrolment.customer_id, self._decrypt(enrolment))
        newest = max((e.enrolled_at for e in enrolments), default=since)
        with self._sync_lock:
            if newest is not None and (self._synced_at is None or newest > self._synced_at):
                self._synced_at = newest
            elif self._synced_at is None:
                self._synced_at = dt.datetime.now(dt.UTC)
        return len(enrolments)


__all__ = ["Biometrics", "Identification"]
