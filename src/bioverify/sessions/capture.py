"""The capture protocol's steps: session load, client event reports, face frames.

Every step runs under :class:`~bioverify.sessions.capture_guard.CaptureGuard` (token,
secret, ended, expired, desktop, device, envelope). Frame analysis runs outside any
transaction; its outcome is applied in a second guarded transaction that re-checks
the session. The document step (:mod:`.document_step`) shares the same guard.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from bioverify import errors
from bioverify.accounts import framing
from bioverify.crypto.keyring import KeyRing
from bioverify.domain import session as sm
from bioverify.engine.interfaces import (
    Analysis,
    Challenge,
    ChallengeStep,
    Engine,
    LivenessMode,
    Outcome,
)
from bioverify.metrics import observe_stages
from bioverify.sessions import challenges, views
from bioverify.sessions.biometrics import Biometrics
from bioverify.sessions.capture_guard import (
    CaptureGuard,
    Deferred,
    DeviceFacts,
    SecurityHook,
    validated,
)
from bioverify.sessions.capture_models import CapturePlaintext, EventsPlaintext
from bioverify.sessions.capture_views import (
    final_redirect,
    next_view,
    portrait_aad,
    retry_view,
    status_view,
    success_view,
)
from bioverify.sessions.document_step import needs_document
from bioverify.sessions.identity_vault import DocumentState, IdentityVault
from bioverify.sessions.models import SessionRow
from bioverify.sessions.service import SessionService

MAX_PASSIVE_FRAMES = 5
MAX_ACTIVE_FRAMES = 24
CHALLENGE_TTL = dt.timedelta(minutes=5)

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
            plaintext = self.guard.open(db, row, envelope, "events", now)
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
        request: _CaptureRequest = await run_in_threadpool(self._accept, token, envelope, facts)
        engine = self.engine
        if engine is None or not engine.ready():
            await run_in_threadpool(self._engine_down, token, facts)
            raise errors.ServiceUnavailable(
                "The face models are not loaded; try again shortly",
                codes=[errors.MODEL_LOAD_FAILED],
                retry_after=30,
            )
        if self.biometrics is not None:
            await run_in_threadpool(self.biometrics.prepare, request.client_id)
            if request.needs_gallery:
                # Another replica may have enrolled someone since this one last looked.
                await run_in_threadpool(self.biometrics.sync, self._factory)
        analysis = await engine.analyze(
            request.frames,
            liveness=request.liveness,
            challenge=request.challenge,
            frame_times=request.frame_times,
            want_portrait=request.want_portrait,
        )
        observe_stages(analysis.timings_ms)
        result: dict[str, Any] = await run_in_threadpool(self._conclude, token, facts, analysis)
        return result

    def _accept(
        self, token: str, envelope: Mapping[str, object], facts: DeviceFacts
    ) -> _CaptureRequest:
        def body(db: Session, row: SessionRow, now: dt.datetime) -> _CaptureRequest:
            plaintext = self.guard.open(db, row, envelope, "capture", now)
            parsed = validated(CapturePlaintext, plaintext)
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
            return self._capture_request(row, parsed, now)

        request: _CaptureRequest = self.guard.locked(token, facts, body)
        return request

    def _capture_request(
        self, row: SessionRow, parsed: CapturePlaintext, now: dt.datetime
    ) -> _CaptureRequest:
        liveness = LivenessMode(row.liveness)
        challenge = None
        if liveness is LivenessMode.PASSIVE and len(parsed.frames) > MAX_PASSIVE_FRAMES:
            raise Deferred(
                errors.BadRequest(
                    f"frames: passive liveness takes 1 to {MAX_PASSIVE_FRAMES} frames"
                )
            )
        if liveness is LivenessMode.ACTIVE:
            stored = row.challenge or {}
            if parsed.challengeId is None:
                raise Deferred(
                    errors.BadRequest("challengeId is required: this session uses active liveness")
                )
            if not stored or not hmac.compare_digest(
                str(stored.get("id")).encode(), parsed.challengeId.encode()
            ):
                raise Deferred(
                    errors.BadRequest(
                        "challengeId does not match the session's current challenge; load the "
                        "session again for a new one"
                    )
                )
            if now >= dt.datetime.fromisoformat(str(stored["expiresAt"])):
                raise Deferred(
                    errors.BadRequest("The liveness challenge has expired; load the session again")
                )
            challenge = Challenge(
                id=str(stored["id"]), steps=tuple(ChallengeStep(s) for s in stored["steps"])
            )
        frames = []
        for index, frame in enumerate(parsed.frames):
            try:
                frames.append(base64.b64decode(frame, validate=True))
            except (binascii.Error, ValueError):
                raise Deferred(
                    errors.BadRequest(f"frames[{index}] is not standard base64")
                ) from None
        return _CaptureRequest(
            frames=frames,
            liveness=liveness,
            challenge=challenge,
            frame_times=parsed.frameTimes,
            want_portrait=row.send_images and bool(row.callback_url),
            client_id=row.client_id,
            needs_gallery=not sm.matches_one_to_one(sm.SessionType(row.type), row.customer_id),
        )

    def _engine_down(self, token: str, facts: DeviceFacts) -> None:
        def body(db: Session, row: SessionRow, now: dt.datetime) -> None:
            self.sessions.record_code(db, row, errors.MODEL_LOAD_FAILED)

        self.guard.locked(token, facts, body)

    def _conclude(self, token: str, facts: DeviceFacts, analysis: Analysis) -> dict[str, Any]:
        def body(db: Session, row: SessionRow, now: dt.datetime) -> dict[str, Any]:
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
                    code = self.biometrics.decide(db, row, analysis.embedding, now)
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


@dataclass(frozen=True)
class _CaptureRequest:
    frames: list[bytes]
    liveness: LivenessMode
    challenge: Challenge | None
    frame_times: list[float] | None
    want_portrait: bool
    client_id: str
    needs_gallery: bool


__all__ = ["CaptureService", "DeviceFacts", "final_redirect", "portrait_aad"]
