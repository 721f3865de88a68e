"""Head pose proxies from YuNet's five landmarks.

All three are ratios of distances measured in the eye-line frame, so they do not
change when a flat picture is moved, rotated in plane, scaled or tilted (an affine
map keeps ratios along a line). Only a real 3-D head turning changes them: that is
what makes the active challenge resist printed and on-screen photos.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from bioverify.engine.models import Face


@dataclass(frozen=True)
class Pose:
    """Pose proxies of one face.

    ``yaw``: nose-tip offset along the eye line from the eyes' midpoint, in
    inter-ocular distances; positive = nose towards the image's right = the subject
    turned to their own left (frames as the camera sees them, not mirrored).
    ``pitch``: how far down the nose tip sits between the eye line and the mouth
    line (about 0.5 frontal; grows when the head bows).
    ``scale``: face box size in pixels (distance to the camera).
    """

    yaw: float
    pitch: float
    scale: float


def estimate_pose(face: Face) -> Pose:
    """Pose proxies of ``face`` from its landmarks."""
    marks: npt.NDArray[np.float64] = face.landmarks.astype(np.float64)
    eye_a, eye_b, nose, mouth_a, mouth_b = marks
    eye_mid = (eye_a + eye_b) / 2.0
    mouth_mid = (mouth_a + mouth_b) / 2.0
    eye_vec = eye_b - eye_a
    iod = float(np.hypot(*eye_vec))
    if iod < 1e-6:
        return Pose(0.0, 0.5, 0.0)
    along = eye_vec / iod
    across = np.array([-along[1], along[0]])
    yaw = float(np.dot(nose - eye_mid, along)) / iod
    mouth_depth = float(np.dot(mouth_mid - eye_mid, across))
    pitch = float(np.dot(nose - eye_mid, across)) / mouth_depth if abs(mouth_depth) > 1e-6 else 0.5
    _, _, w, h = face.box
    return Pose(yaw=yaw, pitch=pitch, scale=math.sqrt(max(w, 0.0) * max(h, 0.0)))
