"""The synchronous pipeline: decode, quality, detect, liveness, embed.

:class:`LocalEngine` owns one :class:`~bioverify.engine.models.FaceModels` and is not
thread-safe; :mod:`bioverify.engine.pool` runs one per worker process.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import pairwise
from typing import Final

import cv2
import numpy as np

from bioverify import errors
from bioverify.engine.decode import decode_frame
from bioverify.engine.facemesh import FaceMesh
from bioverify.engine.frames import FrameFace, measure
from bioverify.engine.interfaces import (
    Analysis,
    Challenge,
    LivenessMode,
    LivenessReport,
    Outcome,
)
from bioverify.engine.liveness import active_liveness, passive_liveness, trusted_frames
from bioverify.engine.matcher import Thresholds, load_thresholds
from bioverify.engine.models import Face, FaceModels, Image
from bioverify.engine.quality import (
    MIN_FACE_PX,
    enhance,
    face_crop,
    grey,
    mean_luma,
    sharpness,
)

MAX_FRAMES: Final = 24
MAX_PASSIVE_FRAMES: Final = 5
_PORTRAIT_MARGIN: Final = 0.4
_PORTRAIT_QUALITY: Final = 90


@dataclass(frozen=True, eq=False)
class _Detected:
    index: int
    image: Image
    faces: list[Face]


class _Timer:
    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self.ms: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = self._clock()
        try:
            yield
        finally:
            self.ms[name] = round(self.ms.get(name, 0.0) + (self._clock() - start) * 1000.0, 3)


def _check_request(
    frames: Sequence[bytes],
    liveness: LivenessMode,
    challenge: Challenge | None,
    frame_times: Sequence[float] | None,
) -> None:
    limit = MAX_FRAMES if liveness is LivenessMode.ACTIVE else MAX_PASSIVE_FRAMES
    if not 1 <= len(frames) <= limit:
        raise errors.BadRequest(
            f"frames: send 1 to {limit} frames for {liveness} liveness (got {len(frames)})"
        )
    if liveness is LivenessMode.ACTIVE and challenge is None:
        raise errors.BadRequest("challengeId is required for active liveness")
    if frame_times is not None:
        if len(frame_times) != len(frames):
            raise errors.BadRequest("frameTimes must have one value per frame")
        if any(b <= a for a, b in pairwise(frame_times)):
            raise errors.BadRequest("frameTimes must be strictly increasing")


class LocalEngine:
    """The engine in the calling thread. ``analyze_sync`` is the whole pipeline."""

    def __init__(
        self,
        models: FaceModels | None = None,
        thresholds: Thresholds | None = None,
        *,
        mesh: FaceMesh | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.models = models if models is not None else FaceModels()
        # Dense landmarks for active liveness; loaded (and checked) up front so that a
        # missing model fails start-up (-20), not the first capture.
        self.mesh = mesh if mesh is not None else FaceMesh()
        self.thresholds = (
            thresholds
            if thresholds is not None
            else load_thresholds(model_version=self.models.version)
        )
        self.model_version = self.models.version
        self._clock = clock

    def ready(self) -> bool:
        return True

    def warm_sync(self) -> None:
        """Run the detector and the embedder once: their first run allocates (slow)."""
        image = np.full((480, 640, 3), 128, np.uint8)
        self.detect(image)
        self.models.embed_aligned(np.full((112, 112, 3), 128, np.uint8))

    def detect(self, image: Image) -> list[Face]:
        """Faces in ``image`` (detection runs on a CLAHE-enhanced copy)."""
        return self.models.detect(image, enhance)

    def analyze_sync(
        self,
        frames: Sequence[bytes],
        *,
        liveness: LivenessMode,
        challenge: Challenge | None = None,
        frame_times: Sequence[float] | None = None,
        want_portrait: bool = False,
    ) -> Analysis:
        """Run the pipeline on one capture; see :class:`~bioverify.engine.interfaces.Engine`."""
        _check_request(frames, liveness, challenge, frame_times)
        timer = _Timer(self._clock)
        with timer.stage("decode"):
            images = [decode_frame(data, i) for i, data in enumerate(frames)]
        quality: dict[str, float] = {}
        with timer.stage("quality"):
            quality["frame_luma"] = round(mean_luma(images[0]), 2)
        with timer.stage("detect"):  # includes CLAHE on the detector-sized copy
            detected = [_Detected(i, image, self.detect(image)) for i, image in enumerate(images)]

        def finish(
            outcome: Outcome,
            reasons: Sequence[str],
            *,
            face_count: int = 0,
            report: LivenessReport | None = None,
            frame: FrameFace | None = None,
            image: Image | None = None,
        ) -> Analysis:
            portrait = None
            if want_portrait and outcome is Outcome.OK and frame is not None and image is not None:
                portrait = _portrait(image, frame.face)
            return Analysis(
                outcome=outcome,
                embedding=frame.embedding if outcome is Outcome.OK and frame else None,
                liveness=report,
                quality=quality,
                portrait_jpeg=portrait,
                timings_ms=dict(timer.ms),
                reasons=tuple(reasons),
                face_count=face_count,
                frame_count=len(frames),
            )

        crowded = [d for d in detected if len(d.faces) > 1]
        if crowded:
            return finish(
                Outcome.MULTIPLE_FACES,
                [f"{len(crowded[0].faces)} faces in frame {crowded[0].index}"],
                face_count=len(crowded[0].faces),
            )
        with_face = [d for d in detected if d.faces]
        if not with_face:
            if quality["frame_luma"] < self.thresholds.low_light_luma:
                return finish(
                    Outcome.LOW_LIGHT,
                    [f"frame too dark (mean luma {quality['frame_luma']:.0f}/255)"],
                )
            return finish(Outcome.NO_FACE, ["no face found"])
        lead = with_face[0]
        face = lead.faces[0]
        with timer.stage("quality"):
            face_grey = grey(face_crop(lead.image, face))
            quality["face_luma"] = round(float(face_grey.mean()), 2)
            quality["face_size"] = round(face.size, 1)
            quality["face_score"] = round(face.score, 3)
            quality["sharpness"] = round(sharpness(face_grey), 2)
        if quality["face_luma"] < self.thresholds.low_light_luma:
            return finish(
                Outcome.LOW_LIGHT,
                [f"face too dark (mean luma {quality['face_luma']:.0f}/255)"],
                face_count=1,
            )
        small = [d.index for d in with_face if d.faces[0].size < MIN_FACE_PX]
        if small:
            return finish(
                Outcome.NO_FACE,
                [f"face too small in frame {small[0]} (under {MIN_FACE_PX} px); come closer"],
                face_count=1,
            )
        active = challenge is not None and liveness is LivenessMode.ACTIVE
        with timer.stage("embed"):  # includes the dense landmarks for active liveness
            usable = [self._frame_face(d, frame_times, dense=active) for d in with_face]
        faceless = [d.index for d in detected if not d.faces]
        with timer.stage("liveness"):
            if challenge is not None and active:
                report = active_liveness(
                    usable, challenge, verify_threshold=self.thresholds.verify, faceless=faceless
                )
                # The template comes from a frame of the burst's identity.
                chosen = (trusted_frames(usable, self.thresholds.verify) or usable)[0]
            else:
                report = passive_liveness(usable)
                chosen = max(usable, key=lambda f: f.face.size * f.face.score)
        image_of = {d.index: d.image for d in detected}
        if not report.passed:
            return finish(Outcome.SPOOF, report.reasons, face_count=1, report=report)
        return finish(
            Outcome.OK,
            ("face found, live, template made",),
            face_count=1,
            report=report,
            frame=chosen,
            image=image_of[chosen.index],
        )

    def _frame_face(
        self, detected: _Detected, frame_times: Sequence[float] | None, *, dense: bool
    ) -> FrameFace:
        return measure(
            self.models,
            self.mesh if dense else None,
            detected.index,
            detected.image,
            detected.faces[0],
            time_ms=None if frame_times is None else float(frame_times[detected.index]),
        )


def _portrait(image: Image, face: Face) -> bytes | None:
    ok, buf = cv2.imencode(
        ".jpg",
        face_crop(image, face, _PORTRAIT_MARGIN),
        [cv2.IMWRITE_JPEG_QUALITY, _PORTRAIT_QUALITY],
    )
    return bytes(buf.tobytes()) if ok else None
