"""Geometry on dense landmarks: head pose, eye openness, planarity.

Head pose is the rotation that best maps MediaPipe's canonical 3-D face onto the
landmark model's 3-D output (478 points with depth). It is perspective-aware in that
the landmark model sees the perspective image; it is not proof against a tilted
photo: on the real clips a photo tilted 25-40 degrees and brought 1.45x closer moved
yaw by up to 15.2 degrees (``solvePnP`` on the 2-D points against the same canonical
face did no better), as much as real turns (docs/engine.md). Challenges therefore
always include an expression step. The old 2-D ratios (``pose.py``) are kept for
face size only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

import cv2
import numpy as np
import numpy.typing as npt

Points = npt.NDArray[np.float64]

# Eye contour landmarks (MediaPipe mesh indices): corners, then two upper/lower pairs.
# "Right" is the subject's right eye (the image's left in a non-mirrored frame).
_RIGHT_EYE: Final = (33, 133, (160, 144), (158, 153))
_LEFT_EYE: Final = (263, 362, (385, 380), (387, 373))
#: Every n-th mesh point enters the planarity fit (78 points spread over the face:
#: the same residual to within a few percent, at a sixth of the cost).
_PLANARITY_STRIDE: Final = 6
#: Outer eye corners, for the inter-ocular distance.
EYE_CORNERS: Final = (33, 263)


@dataclass(frozen=True)
class HeadPose:
    """Head rotation in degrees, and how well the canonical face fits (RMS residual,
    in units of the face's own size: 0 = perfect fit).

    ``yaw`` > 0: the subject turned to their own left (nose towards the image's
    right in a non-mirrored frame). ``pitch`` > 0: the head bowed (nose down).
    """

    yaw: float
    pitch: float
    roll: float
    residual: float


def head_pose(points: Points, canonical: Points) -> HeadPose:
    """Rotation of the best similarity fit of ``canonical`` onto the 3-D landmarks.

    The landmark model outputs x, y (the perspective image) and a depth z per point;
    the rotation comes from all 468 mesh points at once (Kabsch/Umeyama, SVD).
    """
    model = canonical - canonical.mean(axis=0)
    seen = points[: canonical.shape[0], :3] - points[: canonical.shape[0], :3].mean(axis=0)
    model /= max(float(np.sqrt((model**2).sum())), 1e-9)
    seen = seen / max(float(np.sqrt((seen**2).sum())), 1e-9)
    u, scale, vt = np.linalg.svd(seen.T @ model)
    sign = float(np.sign(np.linalg.det(u @ vt))) or 1.0
    rotation = u @ np.diag([1.0, 1.0, sign]) @ vt
    residual = float(np.sqrt(max(0.0, 2.0 - 2.0 * float(scale[0] + scale[1] + sign * scale[2]))))
    # The face looks along -z of its own frame (towards the camera when frontal).
    forward = rotation @ np.array([0.0, 0.0, -1.0])
    yaw = math.degrees(math.atan2(float(forward[0]), float(-forward[2])))
    pitch = math.degrees(math.atan2(float(forward[1]), float(-forward[2])))
    side = rotation @ np.array([1.0, 0.0, 0.0])
    roll = math.degrees(math.atan2(float(side[1]), float(side[0])))
    return HeadPose(yaw=yaw, pitch=pitch, roll=roll, residual=residual)


def inter_ocular(points: Points) -> float:
    """Distance between the outer eye corners (pixels)."""
    a, b = EYE_CORNERS
    return float(np.hypot(*(points[a, :2] - points[b, :2])))


def _eye_ratio(points: Points, eye: tuple[int, int, tuple[int, int], tuple[int, int]]) -> float:
    outer, inner, (up1, low1), (up2, low2) = eye
    width = float(np.hypot(*(points[outer, :2] - points[inner, :2])))
    if width < 1e-6:
        return 0.0
    opening = float(np.hypot(*(points[up1, :2] - points[low1, :2]))) + float(
        np.hypot(*(points[up2, :2] - points[low2, :2]))
    )
    return opening / (2.0 * width)


def eye_aspect_ratio(points: Points) -> float:
    """Mean eye aspect ratio of both eyes (lid opening / eye width; ~0.25-0.35 open)."""
    return (_eye_ratio(points, _RIGHT_EYE) + _eye_ratio(points, _LEFT_EYE)) / 2.0


def planarity_residual(first: Points, later: Points) -> float:
    """RMS error of the best homography from ``first``'s landmarks to ``later``'s,
    in inter-ocular distances.

    A flat picture moved, tilted or brought closer maps onto itself by a homography
    (up to landmark noise); a real head that turns or nods does not.
    """
    src = np.ascontiguousarray(first[:468:_PLANARITY_STRIDE, :2], dtype=np.float64)
    dst = np.ascontiguousarray(later[:468:_PLANARITY_STRIDE, :2], dtype=np.float64)
    homography, _ = cv2.findHomography(src, dst, 0)
    if homography is None:
        return 0.0
    mapped = cv2.perspectiveTransform(src.reshape(-1, 1, 2), homography).reshape(-1, 2)
    rms = float(np.sqrt(np.mean(np.sum((mapped - dst) ** 2, axis=1))))
    return rms / max(inter_ocular(later), 1e-6)
