"""A face capture's request, checked inside the guarded transaction (:func:`capture_request`)."""

from __future__ import annotations

import datetime as dt
import hmac
from dataclasses import dataclass

from bioverify import errors
from bioverify.crypto._b64 import decode_validated
from bioverify.domain import session as sm
from bioverify.engine.decode import check_request_pixels
from bioverify.engine.interfaces import Challenge, ChallengeStep, InvalidImage, LivenessMode
from bioverify.sessions.capture_guard import Deferred
from bioverify.sessions.capture_models import CapturePlaintext
from bioverify.sessions.models import SessionRow
from bioverify.sessions.service import new_puid

MAX_PASSIVE_FRAMES = 5


@dataclass(frozen=True)
class CaptureRequest:
    """A capture accepted by the guard, to be analysed outside any transaction."""

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


def capture_request(row: SessionRow, parsed: CapturePlaintext, now: dt.datetime) -> CaptureRequest:
    """What a face capture asks of the engine, checked on the locked row: the frame
    count for the liveness mode, the current challenge, base64 and declared pixels."""
    liveness = LivenessMode(row.liveness)
    challenge = None
    if liveness is LivenessMode.PASSIVE and len(parsed.frames) > MAX_PASSIVE_FRAMES:
        raise Deferred(
            errors.BadRequest(f"frames: passive liveness takes 1 to {MAX_PASSIVE_FRAMES} frames")
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
            frames.append(decode_validated(frame))
        except ValueError:
            raise Deferred(errors.BadRequest(f"frames[{index}] is not standard base64")) from None
    try:
        check_request_pixels(frames)
    except InvalidImage as exc:
        raise Deferred(errors.BadRequest(exc.message)) from None
    enrolling = row.type == sm.SessionType.ENROLL
    # A new customer's puid is chosen now (kept on the row only if the enrolment
    # succeeds) so its data key is made before the locked transaction: on SQLite,
    # making it inside would wait on that transaction's own write lock.
    puid_if_new = new_puid() if enrolling and not (row.customer_id or row.puid) else None
    return CaptureRequest(
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


__all__ = ["MAX_PASSIVE_FRAMES", "CaptureRequest", "capture_request"]
