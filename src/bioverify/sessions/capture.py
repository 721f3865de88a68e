"""The capture protocol's steps: session load, client event reports, face frames.

Every step runs under :class:`~bioverify.sessions.capture_guard.CaptureGuard` (token,
secret, ended, expired, desktop, device, envelope). Frame analysis runs outside any
transaction; its outcome is applied in a second guarded transaction that re-checks
the session. The document step (:mod:`.document_step`) shares the same guard.
"""

from __future__ import annotations

import datetime as dt
import hmac
from collections.abc import Mapping
from functools import partial
from typing import Any

import numpy as np
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from bioverify import errors
from bioverify.accounts import framing
from bioverify.crypto.keyring import KeyRing
from bioverify.domain import session as sm
from bioverify.engine.interfaces import (
    Analysis,
    Engine,
    LivenessMode,
    Outcome,
)
from bioverify.metrics import observe_stages
from bioverify.sessions import challenges, views
from bioverify.sessions.biometrics import Biometrics
from bioverify.sessions.capture_guard import (
    WRONG_TOKEN_LIMIT,
    CaptureGuard,
    Deferred,
    DeviceFacts,
    SecurityHook,
    validated,
)
from bioverify.sessions.capture_models import CapturePlaintext, EventsPlaintext
from bioverify.sessions.capture_request import CaptureRequest, capture_request
from bioverify.sessions.capture_views import (
    final_redirect,
    next_view,
    portrait_aad,
    retry_view,
    status_view,
    success_view,
)
from bioverify.sessions.document_step import needs_document
from bioverify.sessions.engine_share import TenantShare
from bioverify.sessions.identity_vault import DocumentState, IdentityVault
from bioverify.sessions.models import SessionRow
from bioverify.sessions.service import SessionService
from bioverify.storage.database import transaction

CHALLENGE_TTL = dt.timedelta(minutes=5)
#: Page loads (each issues a challenge) one session may answer, then 429; the steps
#: themselves stop changing earlier (challenges.MAX_CHALLENGES).
MAX_CHALLENGE_LOADS = 10
#: How long a capture holds its session's one analysis slot at most (a crashed
#: replica's hold runs out by itself).
CAPTURE_HOLD = dt.timedelta(seconds=60)

_OUTCOME_CODES = {
    Outcome.LOW_LIGHT: errors.LOW_LIGHT,
    Outcome.MULTIPLE_FACES: errors.MULTIPLE_FACES,
    Outcome.SPOOF: errors.SPOOF,
}


class CaptureService:
    """The capture routes' logic: load, events, face capture."""

    def __init__(
        self,
        sessions: SessionService,
        factory: sessionmaker[Session],
        *,
        keyring: KeyRing,
        engine: Engine | None,
        biometrics: Biometrics | None,
        vault: IdentityVault,
        on_security_event: SecurityHook | None = None,
        freshness_window_s: int = 300,
    ) -> None:
        self.sessions = sessions
        self._factory = factory
        self.keyring = keyring
        self.engine = engine
        self.biometrics = biometrics
        self.vault = vault
        self.guard = CaptureGuard(
            sessions,
            factory,
            keyring=keyring,
            on_security_event=on_security_event,
            freshness_window_s=freshness_window_s,
        )
        self._share = TenantShare(int(getattr(engine, "capacity", 1)))
        # Sessions this process is analysing a capture of (see ``_hold_is_live``).
        self._analysing: set[str] = set()
        bind = factory.kw.get("bind")
        self._single_writer = bind is not None and bind.dialect.name == "sqlite"

    def device_hash(self, facts: DeviceFacts) -> str:
        return self.guard.device_hash(facts)

    # ------------------------------------------------------------------ load

    def load(self, token: str, facts: DeviceFacts) -> dict[str, Any]:
        """``GET /v2/verification-session/{token}``: bind the device, issue a challenge."""

        def body(db: Session, row: SessionRow, now: dt.datetime) -> dict[str, Any]:
            if (
                row.bind_device
                and sm.matches_one_to_one(sm.SessionType(row.type), row.customer_id)
                and self.biometrics is not None
                and row.customer_id is not None
            ):
                enrolment = self.biometrics.enrolment(db, row.client_id, row.customer_id)
                if (
                    enrolment is not None
                    and enrolment.device_hash is not None
                    and not hmac.compare_digest(enrolment.device_hash, row.device_hash or "")
                ):
                    raise Deferred(self.guard.fail(db, row, errors.DEVICE_MISMATCH))
            transition = sm.load(views.state_of(row))
            self.sessions.apply(db, row, transition)
            if transition.changed:
                self.sessions.effects.session_loaded(db, row)
            view: dict[str, Any] = {
                "sessionId": row.id,
                "type": row.type,
                "status": row.status,
                "requirements": row.requirements,
                "enableDesktop": row.enable_desktop,
                "locale": row.locale,
                "expiresAt": views.rfc3339(row.expires_at),
                "attemptsLeft": row.attempts_left,
                "liveness": row.liveness,
                "errorCodes": [int(c["code"]) for c in row.codes],
                # The page adds the outcome itself when the session ends (API.md 4).
                "redirectURL": row.redirect_url,
                # Where the page may postMessage its progress when it is framed.
                "frameAncestors": framing.ancestors_of(db, row.client_id),
            }
            if row.document_state is not None:
                # The face passed before this load: the page goes on with the document.
                view["next"] = "document"
            if row.liveness == LivenessMode.ACTIVE:
                # A page-load budget as well as the re-roll bound of challenges.issue:
                # loading is a write on the locked row, so it must not be unbounded.
                if (row.challenges_issued or 0) >= MAX_CHALLENGE_LOADS:
                    raise Deferred(
                        errors.TooManyRequests(
                            f"This session already issued {MAX_CHALLENGE_LOADS} liveness "
                            "challenges; start a new session",
                            retry_after=max(1, int((row.expires_at - now).total_seconds())),
                        )
                    )
                row.challenges_issued = (row.challenges_issued or 0) + 1
                row.challenge, view["challenge"] = challenges.issue(
                    row.challenge, now=now, ttl=CHALLENGE_TTL, ends=row.expires_at
                )
            return view

        result: dict[str, Any] = self.guard.locked(token, facts, body)
        return result

    # ------------------------------------------------------------------ events

    def events(
        self, token: str, envelope: Mapping[str, object], facts: DeviceFacts
    ) -> dict[str, Any]:
        """``POST .../events``: client-side codes (fatal ends, diagnostics once)."""

        def body(db: Session, row: SessionRow, now: dt.datetime) -> dict[str, Any]:
            plaintext = self.guard.open(db, row, envelope, "events", now, address=facts.address)
            parsed = validated(EventsPlaintext, plaintext)
            self.guard.observed(row, parsed.deviceInfo, parsed.indicators)
            self.guard.check_desktop(db, row, row.client_device_info)
            codes = []
            for index, event in enumerate(parsed.events):
                try:
                    code = errors.canonical(event.code)
                except errors.UnknownErrorCode:
                    raise Deferred(
                        errors.BadRequest(
                            f"events[{index}].code {event.code} is not a code a capture client "
                            "may report"
                        )
                    ) from None
                if code not in errors.CLIENT_REPORTABLE:
                    raise Deferred(
                        errors.BadRequest(
                            f"events[{index}].code {event.code} is not a code a capture client "
                            "may report"
                        )
                    )
                codes.append(code)
            for code in codes:
                if self.sessions.record_code(db, row, code).ended:
                    break
            return status_view(row)

        result: dict[str, Any] = self.guard.locked(token, facts.with_info(None), body)
        return result

    # ------------------------------------------------------------------ capture

    async def capture(
        self, token: str, envelope: Mapping[str, object], facts: DeviceFacts
    ) -> dict[str, Any]:
        """``POST .../capture``: analyse frames and end (or continue) the session."""
        held: list[str] = []
        try:
            return await self._capture(token, envelope, facts, held)
        finally:
            for session_id in held:
                self._analysing.discard(session_id)

    async def _capture(
        self, token: str, envelope: Mapping[str, object], facts: DeviceFacts, held: list[str]
    ) -> dict[str, Any]:
        # One thread hop for the accept transaction and what follows it before the
        # analysis (each hop costs the loop a handover).
        request: CaptureRequest = await run_in_threadpool(
            self._accept_and_prepare, token, envelope, facts, held
        )
        engine = self.engine
        assert engine is not None  # checked by _accept_and_prepare
        try:
            async with self._share.slot(request.client_id):
                analysis = await engine.analyze(
                    request.frames,
                    liveness=request.liveness,
                    challenge=request.challenge,
                    frame_times=request.frame_times,
                    want_portrait=request.want_portrait,
                )
        except BaseException:
            await run_in_threadpool(self._release_hold, request.session_id)
            raise
        observe_stages(analysis.timings_ms)
        result: dict[str, Any] = await run_in_threadpool(
            partial(self._conclude, token, facts, analysis, puid_if_new=request.puid_if_new)
        )
        return result

    def _accept_and_prepare(
        self, token: str, envelope: Mapping[str, object], facts: DeviceFacts, held: list[str]
    ) -> CaptureRequest:
        """Accept the capture (its own transaction), then, outside it, check the engine
        and prepare the matching; any failure after the accept releases the hold."""
        request = self._accept(token, envelope, facts, held)
        engine = self.engine
        try:
            if engine is None or not engine.ready():
                self._engine_down(token, facts)
                raise errors.ServiceUnavailable(
                    "The face models are not loaded; try again shortly",
                    codes=[errors.MODEL_LOAD_FAILED],
                    retry_after=30,
                )
            if self.biometrics is not None:
                self._prepare_matching(self.biometrics, request)
        except BaseException:
            self._release_hold(request.session_id)
            raise
        return request

    def _prepare_matching(self, biometrics: Biometrics, request: CaptureRequest) -> None:
        """Load the data keys the decision will need (outside the locked transaction)
        and, for an identification, catch the gallery up: another replica may have
        enrolled someone since this one last looked."""
        biometrics.prepare(request.client_id, request.customer_key, enrolling=request.enrolling)
        if request.needs_gallery:
            biometrics.sync(self._factory)

    def _hold_is_live(self, row: SessionRow, now: dt.datetime) -> bool:
        """A capture of ``row`` is being analysed. On SQLite this process is the only
        writer, so a hold it is not analysing was left by a crash and is void; on a shared
        store another replica may hold it, until ``capture_until``."""
        if row.capture_until is None or row.capture_until <= now:
            return False
        return row.id in self._analysing or not self._single_writer

    def _release_hold(self, session_id: str) -> None:
        with transaction(self._factory) as db:
            db.execute(
                update(SessionRow).where(SessionRow.id == session_id).values(capture_until=None)
            )

    def _accept(
        self, token: str, envelope: Mapping[str, object], facts: DeviceFacts, held: list[str]
    ) -> CaptureRequest:
        def body(db: Session, row: SessionRow, now: dt.datetime) -> CaptureRequest:
            plaintext = self.guard.open(db, row, envelope, "capture", now, address=facts.address)
            parsed = validated(CapturePlaintext, plaintext)
            # One capture in flight per session: two at once on one link would double
            # what a single user can make the engine do.
            if row.capture_until is not None and self._hold_is_live(row, now):
                raise Deferred(
                    errors.TooManyRequests(
                        "A capture of this session is still being analysed; wait for its answer",
                        retry_after=max(1, int((row.capture_until - now).total_seconds())),
                    )
                )
            self.guard.observed(row, parsed.deviceInfo, parsed.indicators)
            self.guard.check_desktop(db, row, row.client_device_info)
            if row.document_state is not None:
                raise Deferred(
                    errors.BadRequest(
                        "The face capture has passed; send the identity document to .../document"
                    )
                )
            # A client may capture without loading first: the session is under way now.
            self.sessions.apply(db, row, sm.load(views.state_of(row)))
            request = capture_request(row, parsed, now)
            row.capture_until = now + CAPTURE_HOLD
            self._analysing.add(row.id)
            held.append(row.id)
            return request

        request: CaptureRequest = self.guard.locked(token, facts, body)
        return request

    def _engine_down(self, token: str, facts: DeviceFacts) -> None:
        def body(db: Session, row: SessionRow, now: dt.datetime) -> None:
            row.capture_until = None
            self.sessions.record_code(db, row, errors.MODEL_LOAD_FAILED)

        self.guard.locked(token, facts, body)

    def _conclude(
        self, token: str, facts: DeviceFacts, analysis: Analysis, *, puid_if_new: str | None
    ) -> dict[str, Any]:
        def body(db: Session, row: SessionRow, now: dt.datetime) -> dict[str, Any]:
            row.capture_until = None
            liveness = analysis.liveness
            result: dict[str, Any] = dict(row.result or {})
            if liveness is not None:
                result["livenessScore"] = round(liveness.score, 4)
                result["liveness"] = {
                    "method": liveness.method,
                    "score": round(liveness.score, 4),
                    "certifiedPad": False,
                }
                if "planarity_residual" in liveness.signals:
                    # A risk signal, not a gate: low = the face moved like a flat
                    # picture (docs/engine.md); riskEvaluation should weigh it.
                    result["liveness"]["planarityResidual"] = round(
                        float(liveness.signals["planarity_residual"]), 5
                    )
            result["quality"] = {k: round(float(v), 3) for k, v in analysis.quality.items()}
            row.result = result
            if analysis.outcome is Outcome.NO_FACE:
                transition = sm.failed_attempt(views.state_of(row), errors.FACE_SCAN_ERROR, now)
                self.sessions.apply(db, row, transition, code=errors.FACE_SCAN_ERROR)
                if transition.ended:
                    row.token_consumed = True
                    raise Deferred(
                        errors.SessionOutcomeError(
                            "No usable face was found and no attempts are left",
                            codes=[errors.FACE_SCAN_ERROR],
                            session_id=row.id,
                        )
                    )
                return retry_view(row, errors.FACE_SCAN_ERROR)
            if (
                analysis.portrait_jpeg is not None
                and row.send_images
                and self.biometrics is not None
            ):
                row.portrait = self.biometrics.cipher.encrypt(
                    row.client_id, analysis.portrait_jpeg, portrait_aad(row.id)
                )
            code = _OUTCOME_CODES.get(analysis.outcome)
            document = needs_document(row)
            if code is None:
                if self.biometrics is None or analysis.embedding is None:
                    raise Deferred(
                        errors.ServiceUnavailable("Matching is not available", retry_after=30)
                    )
                # A document ENROLL enrols when the document passes too (document_step).
                if not (document and row.type == sm.SessionType.ENROLL):
                    code = self.biometrics.decide(
                        db, row, analysis.embedding, now, puid_if_new=puid_if_new
                    )
            if code is not None:
                row.token_consumed = True
                raise Deferred(self.guard.fail(db, row, code))
            if document and analysis.embedding is not None:
                # The face passed; the document comes next and is matched to this selfie.
                self.vault.seal_state(row, DocumentState(selfie=np.asarray(analysis.embedding)))
                return next_view(row, "document")
            row.token_consumed = True
            self.sessions.apply(db, row, sm.succeed(views.state_of(row), now))
            return success_view(row)

        result: dict[str, Any] = self.guard.locked(token, facts, body)
        return result


__all__ = [
    "CAPTURE_HOLD",
    "MAX_CHALLENGE_LOADS",
    "WRONG_TOKEN_LIMIT",
    "CaptureService",
    "DeviceFacts",
    "final_redirect",
    "portrait_aad",
]
