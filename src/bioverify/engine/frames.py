"""What liveness knows about one frame with exactly one face (:class:`FrameFace`).

Built from pixels by the pipeline, or from stored measurements by the liveness
evaluation (so that both run the very same decision code).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bioverify.engine.facemesh import FaceMesh, Mesh
from bioverify.engine.interfaces import Embedding
from bioverify.engine.meshpose import HeadPose, eye_aspect_ratio, head_pose, inter_ocular
from bioverify.engine.models import Face, FaceModels, Image
from bioverify.engine.pose import Pose, estimate_pose
from bioverify.engine.quality import face_crop, grey


@dataclass(frozen=True, eq=False)
class FrameFace:
    """One frame's face: detection, template, dense landmarks and what they give."""

    index: int
    face: Face
    pose: Pose  # 5-point proxies; ``scale`` (face size) serves MOVE_CLOSER
    embedding: Embedding
    face_grey: Image  # grey face box, for the passive signals
    mesh: Mesh | None = None
    head: HeadPose | None = None
    ear: float | None = None  # eye aspect ratio from the dense landmarks
    time_ms: float | None = None

    @property
    def iod(self) -> float:
        """Inter-ocular distance in pixels (dense landmarks when present)."""
        if self.mesh is not None:
            return inter_ocular(self.mesh.points)
        eyes = self.face.landmarks[1] - self.face.landmarks[0]
        return float(np.hypot(float(eyes[0]), float(eyes[1])))


def assemble(
    index: int,
    face: Face,
    embedding: Embedding,
    *,
    face_grey: Image,
    mesh: Mesh | None,
    canonical: np.ndarray | None,
    time_ms: float | None = None,
) -> FrameFace:
    """A :class:`FrameFace` from measurements (``canonical``: the canonical face)."""
    head = ear = None
    if mesh is not None and canonical is not None:
        head = head_pose(mesh.points, canonical)
        ear = eye_aspect_ratio(mesh.points)
    return FrameFace(
        index=index,
        face=face,
        pose=estimate_pose(face),
        embedding=embedding,
        face_grey=face_grey,
        mesh=mesh,
        head=head,
        ear=ear,
        time_ms=time_ms,
    )


def measure(
    models: FaceModels,
    mesh_model: FaceMesh | None,
    index: int,
    image: Image,
    face: Face,
    *,
    time_ms: float | None = None,
) -> FrameFace:
    """Everything liveness needs from ``face`` in ``image`` (dense landmarks only when
    ``mesh_model`` is given: active liveness)."""
    aligned = models.align(image, face)
    mesh = mesh_model.run(image, face) if mesh_model is not None else None
    return assemble(
        index,
        face,
        models.embed_aligned(aligned),
        face_grey=grey(face_crop(image, face)),
        mesh=mesh,
        canonical=mesh_model.canonical if mesh_model is not None else None,
        time_ms=time_ms,
    )
