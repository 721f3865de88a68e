"""The capture protocol: session load, client event reports, and frame submission.

Every call starts with the same guard (token, secret, ended, expired, desktop,
device) inside one locked transaction. A guard failure that ends the session
(-14, -8, -5, -16, -15) is committed first and raised after, so the session's end,
its webhook and its audit entry are durable before the client hears about it.
Frame analysis runs outside any transaction; its outcome is applied in a second
transaction that re-checks the session.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from bioverify import errors
from bioverify.accounts import framing
from bioverify.crypto.envelope import EnvelopeError, check_freshness, open_envelope
from bioverify.crypto.keyring import KeyRing
from bioverify.domain import device as devices
from bioverify.domain import redirect
from bioverify.domain import session as sm
from bioverify.engine.decode import check_request_pixels
from bioverify.engine.interfaces import (
    Analysis,
    Challenge,
    ChallengeStep,
    Engine,
    InvalidImage,
    LivenessMode,
    Outcome,
)
from bioverify.metrics import observe_stages
from bioverify.sessions import challenges, indicators, tokens, views
from bioverify.sessions.biometrics import Biometrics
from bioverify.sessions.capture_models import CapturePlaintext, EventsPlaintext, parse_plaintext
from bioverify.sessions.device_info import ObservedDevice, observed_dict
from bioverify.sessions.engine_share import TenantShare
from bioverify.sessions.indicators import Indicators
from bioverify.sessions.models import CaptureNonce, SessionRow
from bioverify.sessions.service import SessionService, new_puid
from bioverify.storage.database import transaction

MAX_PASSIVE_FRAMES = 5
MAX_ACTIVE_FRAMES = 24
CHALLENGE_TTL = dt.timedelta(minutes=5)
#: Wrong token secrets a live session tolerates; the one reaching it ends the session (-14).
WRONG_TOKEN_LIMIT = 5
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


@dataclass(frozen=True, slots=True)
class DeviceFacts:
    """What the request says about the device (headers, and deviceInfo when sent)."""

    user_agent: str
    device_header: str
    device_info: Mapping[str, Any] | None = None
    #: The caller's address (for aggregating security events; audited only as a hash).
    address: str = ""

    def with_info(self, info: Mapping[str, Any] | None) -> DeviceFacts:
        return DeviceFacts(
            self.user_agent, self.device_header, info or self.device_info, self.address
        )


SecurityHook = Callable[[Session, str, SessionRow | None, Mapping[str, object]], None]


class CaptureService:
    """The three capture routes' logic."""

    def __init__(
        self,
        sessions: SessionService,
        factory: sessionmaker[Session],
        *,
        keyring: KeyRing,
        engine: Engine | None,
        biometrics: Biometrics | None,
        on_security_event: SecurityHook | None = None,
        freshness_window_s: int = 300,
    ) -> None:
        self.sessions = sessions
        self._factory = factory
        self.keyring = keyring
        self.engine = engine
        self.biometrics = biometrics
        self._security = on_security_event
        self._window = freshness_window_s
        self._share = TenantShare(int(getattr(engine, "capacity", 1)))
        # Sessions this process is analysing a capture of (see ``_hold_is_live``).
        self._analysing: set[str] = set()
        bind = factory.kw.get("bind")
        self._single_writer = bind is not None and bind.dialect.name == "sqlite"

    # ------------------------------------------------------------------ guard

    def _security_event(
        self, db: Session, kind: str, row: SessionRow | None, **details: object
    ) -> None:
        if self._security is not None:
            self._security(db, kind, row, details)

    def device_hash(self, facts: DeviceFacts) -> str:
        material = devices.fingerprint_material(facts.device_header, facts.user_agent)
        return self.keyring.keyed_hash(material, "device")

    def _fail(self, db: Session, row: SessionRow, code: int) -> errors.BioverifyError:
        """End ``row`` with ``code`` (in this transaction); the error to raise after commit."""
        self.sessions.record_code(db, row, code)
        return errors.session_error(code, session_id=row.id)

    @staticmethod
    def _ended_error(row: SessionRow) -> errors.BioverifyError:
        state = views.state_of(row)
        if row.token_consumed:
            return errors.Conflict(
                "This capture link was already used; start a new session",
                codes=[errors.TOKEN_ALREADY_USED],
                session_id=row.id,
            )
        if state.outcome_code == errors.SESSION_EXPIRED:
            return errors.session_error(errors.SESSION_EXPIRED, session_id=row.id)
        return errors.Conflict(
            "This session has already ended", codes=state.error_codes, session_id=row.id
        )

    def _guard(
        self, db: Session, token: str, facts: DeviceFacts, now: dt.datetime
    ) -> tuple[SessionRow | None, errors.BioverifyError | None]:
        parsed = tokens.parse(token)
        row = None
        if parsed is not None:
            row = db.scalar(select(SessionRow).where(SessionRow.id == parsed[0]).with_for_update())
        if parsed is None or row is None:
            self._security_event(db, "capture_token_rejected", None, address=facts.address)
            return None, errors.Unauthorized(
                "This capture link is not valid", codes=[errors.UNAUTHORIZED_CALLBACK]
            )
        if not tokens.secret_matches(parsed[1], row.token_hash):
            self._security_event(db, "capture_token_rejected", row, address=facts.address)
            if views.state_of(row).ended:
                return row, errors.Unauthorized(
                    "This capture link is not valid", codes=[errors.UNAUTHORIZED_CALLBACK]
                )
            # Anyone who knows a sessionId could end it with one wrong secret; only
            # repeated attempts (counted on the locked row, so across replicas) do.
            row.wrong_token_attempts = (row.wrong_token_attempts or 0) + 1
            if row.wrong_token_attempts < WRONG_TOKEN_LIMIT:
                return row, errors.Unauthorized(
                    "This capture link is not valid", codes=[errors.UNAUTHORIZED_CALLBACK]
                )
            return row, self._fail(db, row, errors.UNAUTHORIZED_CALLBACK)
        if views.state_of(row).ended:
            return row, self._ended_error(row)
        if self.sessions.expire_if_due(db, row, now):
            return row, errors.session_error(errors.SESSION_EXPIRED, session_id=row.id)
        if not row.enable_desktop and devices.is_desktop(facts.user_agent, facts.device_info):
            return row, self._fail(db, row, errors.DESKTOP)
        fingerprint = self.device_hash(facts)
        if not row.bind_device:
            # Recorded, never enforced (API.md section 4): the link may be opened again on
            # another device; an ENROLL keeps the device its capture came from.
            row.device_hash = fingerprint
        elif row.device_hash is None:
            row.device_hash = fingerprint
        elif not hmac.compare_digest(row.device_hash, fingerprint):
            return row, self._fail(db, row, errors.DEVICE_MISMATCH)
        return row, None

    def _locked(
        self,
        token: str,
        facts: DeviceFacts,
        body: Callable[[Session, SessionRow, dt.datetime], Any],
    ) -> Any:
        """Run ``body`` under the guard; raise guard (or body) errors after commit."""
        failure: errors.BioverifyError | None = None
        result: Any = None
        with transaction(self._factory) as db:
            now = self.sessions.now()
            row, failure = self._guard(db, token, facts, now)
            if failure is None and row is not None:
                try:
                    result = body(db, row, now)
                except _Deferred as deferred:
                    failure = deferred.error
        if failure is not None:
            raise failure
        return result

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
                    raise _Deferred(self._fail(db, row, errors.DEVICE_MISMATCH))
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
            if row.liveness == LivenessMode.ACTIVE:
                # A page-load budget as well as the re-roll bound of challenges.issue:
                # loading is a write on the locked row, so it must not be unbounded.
                if (row.challenges_issued or 0) >= MAX_CHALLENGE_LOADS:
                    raise _Deferred(
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

        result: dict[str, Any] = self._locked(token, facts, body)
        return result

    @staticmethod
    def _observed(
        row: SessionRow, device: ObservedDevice | None, reported: Indicators | None
    ) -> None:
        """Keep what the capture client reported (validated) for the webhook and the risk."""
        if device is not None:
            row.client_device_info = observed_dict(device)
        if reported is not None:
            row.indicators = indicators.summary(reported)

    def _check_desktop(
        self, db: Session, row: SessionRow, device_info: Mapping[str, Any] | None
    ) -> None:
        """-5 when the (decrypted) deviceInfo says desktop and the session forbids it."""
        if not row.enable_desktop and devices.reported_desktop(device_info):
            raise _Deferred(self._fail(db, row, errors.DESKTOP))

    # ------------------------------------------------------------------ envelopes

    def _open(
        self,
        db: Session,
        row: SessionRow,
        envelope: Mapping[str, object],
        route: str,
        now: dt.datetime,
        *,
        address: str = "",
    ) -> dict[str, object]:
        """Decrypt, check freshness, and spend the nonce (a replay ends the session)."""
        try:
            plaintext = open_envelope(
                envelope,
                keyring=self.keyring,
                session_id=row.id,
                route=route,  # type: ignore[arg-type]
            )
        except EnvelopeError as exc:
            if exc.crypto_failure:
                self._security_event(db, "envelope_rejected", row, route=route, address=address)
            raise _Deferred(exc) from None
        try:
            nonce, _ = check_freshness(plaintext, now=now.timestamp(), window=self._window)
        except errors.BadRequest as exc:
            raise _Deferred(exc) from None
        # Nonces older than twice the freshness window can no longer be replayed (their
        # timestamps are refused), so they are pruned rather than kept forever.
        db.execute(
            delete(CaptureNonce).where(
                CaptureNonce.seen_at < now - dt.timedelta(seconds=2 * self._window)
            )
        )
        try:
            with db.begin_nested():
                db.add(CaptureNonce(session_id=row.id, nonce=nonce, seen_at=now))
        except IntegrityError:
            self._security_event(db, "nonce_replayed", row, route=route, address=address)
            raise _Deferred(self._fail(db, row, errors.TOKEN_ALREADY_USED)) from None
        return plaintext

    # ------------------------------------------------------------------ events

    def events(
        self, token: str, envelope: Mapping[str, object], facts: DeviceFacts
    ) -> dict[str, Any]:
        """``POST .../events``: client-side codes (fatal ends, diagnostics once)."""

        def body(db: Session, row: SessionRow, now: dt.datetime) -> dict[str, Any]:
            plaintext = self._open(db, row, envelope, "events", now, address=facts.address)
            parsed = _validated(EventsPlaintext, plaintext)
            self._observed(row, parsed.deviceInfo, parsed.indicators)
            self._check_desktop(db, row, row.client_device_info)
            codes = []
            for index, event in enumerate(parsed.events):
                try:
                    code = errors.canonical(event.code)
                except errors.UnknownErrorCode:
                    raise _Deferred(
                        errors.BadRequest(
                            f"events[{index}].code {event.code} is not a code a capture client "
                            "may report"
                        )
                    ) from None
                if code not in errors.CLIENT_REPORTABLE:
                    raise _Deferred(
                        errors.BadRequest(
                            f"events[{index}].code {event.code} is not a code a capture client "
                            "may report"
                        )
                    )
                codes.append(code)
            for code in codes:
                if self.sessions.record_code(db, row, code).ended:
                    break
            return _status_view(row)

        result: dict[str, Any] = self._locked(token, facts.with_info(None), body)
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
        request: _CaptureRequest = await run_in_threadpool(
            self._accept, token, envelope, facts, held
        )
        engine = self.engine
        try:
            if engine is None or not engine.ready():
                await run_in_threadpool(self._engine_down, token, facts)
                raise errors.ServiceUnavailable(
                    "The face models are not loaded; try again shortly",
                    codes=[errors.MODEL_LOAD_FAILED],
                    retry_after=30,
                )
            if self.biometrics is not None:
                await run_in_threadpool(
                    partial(
                        self.biometrics.prepare,
                        request.client_id,
                        request.customer_key,
                        enrolling=request.enrolling,
                    )
                )
                if request.needs_gallery:
                    # Another replica may have enrolled someone since this one last looked.
                    await run_in_threadpool(self.biometrics.sync, self._factory)
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
    ) -> _CaptureRequest:
        def body(db: Session, row: SessionRow, now: dt.datetime) -> _CaptureRequest:
            plaintext = self._open(db, row, envelope, "capture", now, address=facts.address)
            parsed = _validated(CapturePlaintext, plaintext)
            # One capture in flight per session: two at once on one link would double
            # what a single user can make the engine do.
            if row.capture_until is not None and self._hold_is_live(row, now):
                raise _Deferred(
                    errors.TooManyRequests(
                        "A capture of this session is still being analysed; wait for its answer",
                        retry_after=max(1, int((row.capture_until - now).total_seconds())),
                    )
                )
            self._observed(row, parsed.deviceInfo, parsed.indicators)
            self._check_desktop(db, row, row.client_device_info)
            # A client may capture without loading first: the session is under way now.
            self.sessions.apply(db, row, sm.load(views.state_of(row)))
            request = self._capture_request(row, parsed, now)
            row.capture_until = now + CAPTURE_HOLD
            self._analysing.add(row.id)
            held.append(row.id)
            return request

        request: _CaptureRequest = self._locked(token, facts, body)
        return request

    def _capture_request(
        self, row: SessionRow, parsed: CapturePlaintext, now: dt.datetime
    ) -> _CaptureRequest:
        liveness = LivenessMode(row.liveness)
        challenge = None
        if liveness is LivenessMode.PASSIVE and len(parsed.frames) > MAX_PASSIVE_FRAMES:
            raise _Deferred(
                errors.BadRequest(
                    f"frames: passive liveness takes 1 to {MAX_PASSIVE_FRAMES} frames"
                )
            )
        if liveness is LivenessMode.ACTIVE:
            stored = row.challenge or {}
            if parsed.challengeId is None:
                raise _Deferred(
                    errors.BadRequest("challengeId is required: this session uses active liveness")
                )
            if not stored or not hmac.compare_digest(
                str(stored.get("id")).encode(), parsed.challengeId.encode()
            ):
                raise _Deferred(
                    errors.BadRequest(
                        "challengeId does not match the session's current challenge; load the "
                        "session again for a new one"
                    )
                )
            if now >= dt.datetime.fromisoformat(str(stored["expiresAt"])):
                raise _Deferred(
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
                raise _Deferred(
                    errors.BadRequest(f"frames[{index}] is not standard base64")
                ) from None
        try:
            check_request_pixels(frames)
        except InvalidImage as exc:
            raise _Deferred(errors.BadRequest(exc.message)) from None
        enrolling = row.type == sm.SessionType.ENROLL
        # A new customer's puid is chosen now (kept on the row only if the enrolment
        # succeeds) so its data key is made before the locked transaction: on SQLite,
        # making it inside would wait on that transaction's own write lock.
        puid_if_new = new_puid() if enrolling and not (row.customer_id or row.puid) else None
        return _CaptureRequest(
            session_id=row.id,
            frames=frames,
            liveness=liveness,
            challenge=challenge,
            frame_times=parsed.frameTimes,
            want_portrait=row.send_images and bool(row.callback_url),
            client_id=row.client_id,
            needs_gallery=not sm.matches_one_to_one(sm.SessionType(row.type), row.customer_id),
            # ENROLL stores under this customer's own key; VERIFY reads with it.
            customer_key=None
            if sm.identifies(sm.SessionType(row.type), row.customer_id)
            else (row.customer_id or row.puid or puid_if_new),
            enrolling=enrolling,
            puid_if_new=puid_if_new,
        )

    def _engine_down(self, token: str, facts: DeviceFacts) -> None:
        def body(db: Session, row: SessionRow, now: dt.datetime) -> None:
            row.capture_until = None
            self.sessions.record_code(db, row, errors.MODEL_LOAD_FAILED)

        self._locked(token, facts, body)

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
                    raise _Deferred(
                        errors.SessionOutcomeError(
                            "No usable face was found and no attempts are left",
                            codes=[errors.FACE_SCAN_ERROR],
                            session_id=row.id,
                        )
                    )
                return {
                    "status": row.status,
                    "sessionId": row.id,
                    "attemptsLeft": row.attempts_left,
                    "errorCodes": [errors.FACE_SCAN_ERROR],
                    "message": errors.CATALOGUE[errors.FACE_SCAN_ERROR].remedy,
                }
            if (
                analysis.portrait_jpeg is not None
                and row.send_images
                and self.biometrics is not None
            ):
                row.portrait = self.biometrics.cipher.encrypt(
                    row.client_id, analysis.portrait_jpeg, portrait_aad(row.id)
                )
            code = _OUTCOME_CODES.get(analysis.outcome)
            if code is None:
                if self.biometrics is None or analysis.embedding is None:
                    raise _Deferred(
                        errors.ServiceUnavailable("Matching is not available", retry_after=30)
                    )
                code = self.biometrics.decide(
                    db, row, analysis.embedding, now, puid_if_new=puid_if_new
                )
            if code is not None:
                row.token_consumed = True
                raise _Deferred(self._fail(db, row, code))
            row.token_consumed = True
            self.sessions.apply(db, row, sm.succeed(views.state_of(row), now))
            # Never who matched (customerId, puid, guid): with a capture link, that would
            # be an identification oracle. Identity goes to the integrator only.
            answer: dict[str, Any] = {"status": row.status, "sessionId": row.id}
            if row.redirect_url:
                answer["redirectURL"] = final_redirect(row)
            return answer

        result: dict[str, Any] = self._locked(token, facts, body)
        return result


@dataclass(frozen=True)
class _CaptureRequest:
    session_id: str
    frames: list[bytes]
    liveness: LivenessMode
    challenge: Challenge | None
    frame_times: list[float] | None
    want_portrait: bool
    client_id: str
    needs_gallery: bool
    customer_key: str | None = None
    enrolling: bool = False
    puid_if_new: str | None = None


class _Deferred(Exception):
    """Carries an error out of a transaction body so the transaction still commits."""

    def __init__(self, error: errors.BioverifyError) -> None:
        super().__init__(error.message)
        self.error = error


def _validated(model: type[Any], plaintext: Mapping[str, object]) -> Any:
    try:
        return parse_plaintext(model, plaintext)
    except errors.BadRequest as exc:
        raise _Deferred(exc) from None


def portrait_aad(session_id: str) -> bytes:
    """What a kept portrait's ciphertext is bound to."""
    return f"portrait:{session_id}".encode()


def final_redirect(row: SessionRow) -> str | None:
    """The session's ``redirectURL`` with its outcome added, once it has ended."""
    state = views.state_of(row)
    if not row.redirect_url or not state.ended:
        return None
    return redirect.with_outcome(
        row.redirect_url,
        session_id=row.id,
        status=row.status,
        reason=redirect.reason_for(row.status, state.outcome_code),
    )


def _status_view(row: SessionRow) -> dict[str, Any]:
    view: dict[str, Any] = {
        "status": row.status,
        "sessionId": row.id,
        "attemptsLeft": row.attempts_left,
        "errorCodes": [int(c["code"]) for c in row.codes],
    }
    target = final_redirect(row)
    if target is not None:
        view["redirectURL"] = target
    return view


__all__ = ["CaptureService", "DeviceFacts", "final_redirect", "portrait_aad"]
