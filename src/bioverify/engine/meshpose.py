"""Geometry on dense landmarks: head pose, eye openness, foreshortening, planarity.

Head pose is the rotation that best maps MediaPipe's canonical 3-D face onto the
landmark model's 3-D output (478 points with depth). The landmark model reads a
perspective image but has a face prior: on a flat photo tilted 25-40 degrees and
brought closer it bends the landmarks as if the head had turned (up to 15.2 degrees
of yaw; ``solvePnP`` of the 2-D points against the canonical face with a pinhole
camera did worse, 18.9; the nose's parallax against the face plane barely better, 14.1;
docs/engine.md). What the prior does not undo is **foreshortening**: a picture
tilted by 30 degrees shrinks the face across the tilt axis to ~0.87 of its size,
while a head that turns by 15 degrees shrinks its near-planar landmarks (eye
corners, brows, forehead, cheekbones) only as its 3-D shape predicts (~0.96).
:func:`flat_tilt` is the tilt that the extra foreshortening implies; a head
movement counts only when it is small (``liveness.FLAT_TILT_DEG``). The old 2-D
ratios (``pose.py``) are kept for face size only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Final

import cv2
import numpy as np
import numpy.typing as npt

Points = npt.NDArray[np.float64]

# Eye contour landmarks (MediaPipe mesh indices): corners, then two upper/lower pairs.
# "Right" is the subject's right eye (the image's left in a non-mirrored frame).
_RIGHT_EYE: Final = (33, 133, (160, 144), (158, 153))
_LEFT_EYE: Final = (263, 362, (385, 380), (387, 373))
#: Near-planar, rigid landmarks: eye corners (first the outer right, then inner
#: right, inner left, outer left), brows, forehead, cheekbones. Neither the mouth
#: nor the lids (they move when talking, smiling, blinking) nor the face contour
#: (which the model guesses on a turned face).
PLANE_POINTS: Final = (
    33,
    133,
    362,
    263,
    9,
    151,
    108,
    337,
    50,
    280,
    116,
    345,
    123,
    352,
    70,
    300,
    105,
    334,
)
#: The nose, which stands 4-5 cm in front of that plane: its parallax is what a
#: turning head shows and a flat picture cannot.
NOSE_POINTS: Final = (1, 4, 5, 195, 197, 2, 98, 327, 168, 6)
RIGID_POINTS: Final = PLANE_POINTS + NOSE_POINTS
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
    #: The canonical face's :data:`PLANE_POINTS` turned by this pose, seen along the
    #: optical axis (2-D, unitless): the shape a head at this pose should show.
    plane: Points | None = field(default=None, compare=False, repr=False)


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
    return HeadPose(
        yaw=yaw, pitch=pitch, roll=roll, residual=residual, plane=_plane_at(model, yaw, pitch)
    )


def _plane_at(model: Points, yaw: float, pitch: float) -> Points:
    """:data:`PLANE_POINTS` of the (centred) canonical face turned by ``yaw`` then
    ``pitch``, seen along the optical axis. Roll is left out: it turns the face in the
    image plane, which :func:`foreshortening` does not see anyway."""
    a, b = math.radians(yaw), math.radians(pitch)
    turn = np.array(
        [[math.cos(a), 0.0, -math.sin(a)], [0.0, 1.0, 0.0], [math.sin(a), 0.0, math.cos(a)]]
    )
    nod = np.array(
        [[1.0, 0.0, 0.0], [0.0, math.cos(b), -math.sin(b)], [0.0, math.sin(b), math.cos(b)]]
    )
    plane: Points = (model[list(PLANE_POINTS)] @ (nod @ turn).T)[:, :2]
    return plane


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


def foreshortening(before: Points, after: Points) -> float:
    """How much a set of :data:`PLANE_POINTS` (2-D rows, in that order) narrowed across
    the eye line relative to along it, from ``before`` to ``after``: the width/height
    ratio of the best linear map between them, in the face's own axes (so roll and
    distance do not count). 1 = no change; a picture tilted by t about the vertical
    axis gives ~cos t; about the horizontal axis ~1/cos t."""
    a = before[:, :2] - before[:, :2].mean(axis=0)
    b = after[:, :2] - after[:, :2].mean(axis=0)
    linear = np.linalg.lstsq(a, b, rcond=None)[0].T
    across = before[3, :2] - before[0, :2]  # outer right -> outer left eye corner
    across = across / max(float(np.hypot(*across)), 1e-9)
    along = np.array([-across[1], across[0]])
    height = float(np.hypot(*(linear @ along)))
    return float(np.hypot(*(linear @ across))) / max(height, 1e-9)


def flat_tilt(base: Points, base_head: HeadPose, points: Points, head: HeadPose) -> float:
    """Degrees of tilt of a flat picture that the landmarks' foreshortening implies
    between ``base`` and ``points``, beyond what the head's 3-D rotation explains.

    Small for a real head (measured in the clips' turns: at most 15.8; the test set's
    posed photos 18.7); 23-35 for a photo tilted 25-40 degrees whose raw 3-D pose
    imitated a turn of 10 degrees or more. Nods are predicted less well than turns.
    """
    if base_head.plane is None or head.plane is None:
        return 0.0
    rows = list(PLANE_POINTS)
    seen = foreshortening(base[rows], points[rows])
    expected = foreshortening(base_head.plane, head.plane)
    excess = seen / max(expected, 1e-9)
    return math.degrees(math.acos(min(excess, 1.0 / max(excess, 1e-9), 1.0)))


def planarity_residual(first: Points, later: Points) -> float:
    """RMS error of the best homography from ``first``'s rigid landmarks
    (:data:`RIGID_POINTS`) to ``later``'s, in inter-ocular distances.

    A flat picture moved, tilted or brought closer maps onto itself by a homography
    (up to landmark noise and the model's face prior, which bends a strongly tilted
    face's landmarks by 0.02-0.05 IOD); a real head that turns or nods does not:
    its nose moves against the face plane (0.03-0.06 IOD for the clips' turns).
    Mouth, lids and contour stay out: they move when talking or are guessed.
    """
    rows = list(RIGID_POINTS)
    src = np.ascontiguousarray(first[rows, :2], dtype=np.float64)
    dst = np.ascontiguousarray(later[rows, :2], dtype=np.float64)
    homography, _ = cv2.findHomography(src, dst, 0)
    if homography is None:
        return 0.0
    mapped = cv2.perspectiveTransform(src.reshape(-1, 1, 2), homography).reshape(-1, 2)
    rms = float(np.sqrt(np.mean(np.sum((mapped - dst) ** 2, axis=1))))
    return rms / max(inter_ocular(later), 1e-6)
