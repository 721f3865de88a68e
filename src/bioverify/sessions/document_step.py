"""The document step of ``identity_document`` sessions (API.md section 4).

``POST /v2/verification-session/{token}/document`` runs under the same guard as the
face capture. The face comes first: its success keeps the selfie's embedding
(encrypted) and answers ``next: document``. Then each photographed side is read in
memory (:class:`~bioverify.documents.scanner.DocumentScanner`) and decided here:

- a passport or TD2 card: the MRZ and the portrait are on one side -> decided;
- an ID-1 card (TD1 ID card, North American licence): a front with a portrait and no
  machine-readable zone -> ``next: back``; the back's MRZ or PDF417 -> decided;
- nothing read, an unreadable MRZ or a failed check digit -> -23, one attempt spent
  (FAILED with -23 when none is left); a side with data but no portrait -> -23;
- decided: portrait not matching the selfie -> -9 (422); expired -> FAILED with -23
  and ``checks.expired: true``; otherwise SUCCESS. ``identityInformation`` is sealed
  with the tenant's data key in each case where the document was read.

Nothing read from the document is logged, audited or answered to the capture client.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from bioverify import errors
from bioverify.documents.aamva import AamvaRecord
from bioverify.documents.identity import PortraitCheck, identity_information
from bioverify.documents.mrz_fields import MrzRecord
from bioverify.documents.portrait import portrait_score
from bioverify.documents.reader import NOTHING_FOUND, DocumentReading
from bioverify.documents.scanner import DocumentScanner
from bioverify.domain import session as sm
from bioverify.engine.interfaces import Embedding
from bioverify.sessions import views
from bioverify.sessions.biometrics import Biometrics
from bioverify.sessions.capture_guard import CaptureGuard, Deferred, DeviceFacts, validated
from bioverify.sessions.capture_models import DocumentPlaintext
from bioverify.sessions.capture_views import next_view, retry_view, success_view
from bioverify.sessions.identity_vault import DocumentState, IdentityVault
from bioverify.sessions.models import SessionRow
from bioverify.sessions.service import new_puid

#: The ``requirements`` value that adds this step.
IDENTITY_DOCUMENT = "identity_document"
#: A card front's printed portrait is a small part of the photo: measured on generated
#: ID-1 fronts with the tests' face photos, 0.12-0.22 of the photo's shorter side (the
#: card filling 80-95 % of the frame width); the same photos alone, 0.36-0.56. A
#: larger face is a photo of a face, not of a card, and never stands in for its front.
CARD_PORTRAIT_MAX_SHARE = 0.3


def needs_document(row: SessionRow) -> bool:
    return IDENTITY_DOCUMENT in (row.requirements or [])


@dataclass(frozen=True)
class _Side:
    side: str
    image: bytes
    client_id: str
    #: An ENROLL enrols when its document passes: the customer whose own data key the
    #: template needs, made before the locked transaction (see Biometrics.prepare).
    enrol_as: str | None = None
    #: The puid chosen for an ENROLL that names neither customer nor puid.
    puid_if_new: str | None = None


class DocumentStep:
    """``POST .../document``: read a side, then continue, retry, fail or succeed."""

    def __init__(
        self,
        guard: CaptureGuard,
        *,
        vault: IdentityVault,
        biometrics: Biometrics,
        scanner: DocumentScanner,
        threshold: float,
    ) -> None:
        self.guard = guard
        self.sessions = guard.sessions
        self.vault = vault
        self.biometrics = biometrics
        self.scanner = scanner
        #: The measured document-to-selfie threshold (documents/thresholds.json).
        self.threshold = threshold

    async def submit(
        self, token: str, envelope: Mapping[str, object], facts: DeviceFacts
    ) -> dict[str, Any]:
        side: _Side = await run_in_threadpool(self._accept, token, envelope, facts)
        await run_in_threadpool(self.vault.prepare, side.client_id)
        if side.enrol_as is not None:
            await run_in_threadpool(
                partial(self.biometrics.prepare, side.client_id, side.enrol_as, enrolling=True)
            )
        reading = await self.scanner.read(side.image, today=self.sessions.now().date())
        result: dict[str, Any] = await run_in_threadpool(
            partial(self._conclude, token, facts, side.side, reading, side.puid_if_new)
        )
        return result

    def _accept(self, token: str, envelope: Mapping[str, object], facts: DeviceFacts) -> _Side:
        def body(db: Session, row: SessionRow, now: dt.datetime) -> _Side:
            plaintext = self.guard.open(db, row, envelope, "document", now, address=facts.address)
            parsed = validated(DocumentPlaintext, plaintext)
            if not needs_document(row):
                raise Deferred(
                    errors.BadRequest(
                        "This session does not ask for an identity document "
                        "(its requirements do not include identity_document)"
                    )
                )
            if row.document_state is None:
                raise Deferred(
                    errors.BadRequest(
                        "The face capture comes first: POST .../capture, then the document"
                    )
                )
            try:
                image = base64.b64decode(parsed.image, validate=True)
            except (binascii.Error, ValueError):
                raise Deferred(errors.BadRequest("image is not standard base64")) from None
            if row.type != sm.SessionType.ENROLL:
                return _Side(parsed.side, image, row.client_id)
            puid_if_new = None if (row.customer_id or row.puid) else new_puid()
            enrol_as = row.customer_id or row.puid or puid_if_new
            return _Side(parsed.side, image, row.client_id, enrol_as, puid_if_new)

        side: _Side = self.guard.locked(token, facts, body)
        return side

    def _conclude(
        self,
        token: str,
        facts: DeviceFacts,
        side: str,
        reading: DocumentReading,
        puid_if_new: str | None,
    ) -> dict[str, Any]:
        def body(db: Session, row: SessionRow, now: dt.datetime) -> dict[str, Any]:
            state = self.vault.open_state(row)
            if state is None:  # the step ended while this side was being read
                raise Deferred(errors.BadRequest("The face capture comes first"))
            record = reading.mrz or reading.aamva
            if side == "back":
                if state.front_portrait is None:
                    raise Deferred(
                        errors.BadRequest(
                            'side "back": send the front first (this document has no '
                            "front with a portrait yet)"
                        )
                    )
                if record is None:
                    return self._retry(db, row, now)
                return self._decide(
                    db,
                    row,
                    now,
                    record=record,
                    portrait=state.front_portrait,
                    selfie=state.selfie,
                    puid_if_new=puid_if_new,
                )
            if record is not None:
                if reading.portrait is None:
                    return self._retry(db, row, now)
                return self._decide(
                    db,
                    row,
                    now,
                    record=record,
                    portrait=reading.portrait,
                    selfie=state.selfie,
                    puid_if_new=puid_if_new,
                )
            if (
                reading.failure == NOTHING_FOUND
                and reading.portrait is not None
                and (reading.portrait_share or 1.0) <= CARD_PORTRAIT_MAX_SHARE
            ):
                # A card front: its portrait now, its data on the back.
                self.vault.seal_state(
                    row, DocumentState(selfie=state.selfie, front_portrait=reading.portrait)
                )
                return next_view(row, "back")
            return self._retry(db, row, now)

        result: dict[str, Any] = self.guard.locked(token, facts, body)
        return result

    def _retry(self, db: Session, row: SessionRow, now: dt.datetime) -> dict[str, Any]:
        """Nothing usable (or a failed check digit): -23, one attempt spent."""
        code = errors.DOCUMENT_SCAN_ERROR
        transition = sm.failed_attempt(views.state_of(row), code, now)
        self.sessions.apply(db, row, transition, code=code)
        if transition.ended:
            self._close(row)
            raise Deferred(
                errors.SessionOutcomeError(
                    "No identity document could be read and no attempts are left",
                    codes=[code],
                    session_id=row.id,
                )
            )
        return retry_view(row, code)

    def _decide(
        self,
        db: Session,
        row: SessionRow,
        now: dt.datetime,
        *,
        record: MrzRecord | AamvaRecord,
        portrait: Embedding,
        selfie: Embedding,
        puid_if_new: str | None,
    ) -> dict[str, Any]:
        score = portrait_score(portrait, selfie)
        check = PortraitCheck(score=score, matched=score >= self.threshold)
        info = identity_information(record, portrait=check, today=now.date(), now=now)
        self.vault.seal_identity(row, info)
        row.result = {**(row.result or {}), "documentThreshold": self.threshold}
        if not check.matched:
            self._close(row)
            raise Deferred(self.guard.fail(db, row, errors.FACE_NOT_MATCH))
        if info["checks"]["expired"]:
            code = errors.DOCUMENT_SCAN_ERROR
            self.sessions.apply(db, row, sm.fail(views.state_of(row), code, now), code=code)
            self._close(row)
            raise Deferred(
                errors.SessionOutcomeError(
                    "The identity document has expired", codes=[code], session_id=row.id
                )
            )
        if sm.SessionType(row.type) is sm.SessionType.ENROLL:
            # Enrolled only now, when the whole session succeeds: a failed document
            # never leaves a template behind.
            failed = self.biometrics.decide(db, row, selfie, now, puid_if_new=puid_if_new)
            if failed is not None:
                self._close(row)
                raise Deferred(self.guard.fail(db, row, failed))
        self._close(row)
        self.sessions.apply(db, row, sm.succeed(views.state_of(row), now))
        return success_view(row)

    @staticmethod
    def _close(row: SessionRow) -> None:
        """The step is over: the link is spent and the embeddings are dropped."""
        row.token_consumed = True
        row.document_state = None


__all__ = ["IDENTITY_DOCUMENT", "DocumentStep", "needs_document"]
