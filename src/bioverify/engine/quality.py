"""Frame quality: brightness of frame and face, contrast enhancement, sharpness."""

from __future__ import annotations

from typing import Final

import cv2

from bioverify.engine.models import Face, Image, as_image

#: Faces smaller than this (shorter box side, pixels) are refused as NO_FACE: SFace
#: works on 112-px crops, and below ~64 px the crop is mostly upsampling blur.
MIN_FACE_PX: Final = 64

_CLAHE_CLIP: Final = 2.0
_CLAHE_GRID: Final = (8, 8)


def grey(image: Image) -> Image:
    """Luma (BT.601) of a BGR image."""
    return as_image(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY))


def mean_luma(image: Image) -> float:
    """Mean luma in [0, 255]."""
    if not image.size:
        return 0.0
    luma = grey(image)
    # OpenCV's sum is exact (integers), then one division: np.mean's very value, 30x
    # faster on a whole frame (every capture pays it once per frame).
    return float(cv2.sumElems(luma)[0]) / luma.size


def face_crop(image: Image, face: Face, margin: float = 0.0) -> Image:
    """The face box (optionally grown by ``margin`` of its size), clipped to the image."""
    x, y, w, h = face.box
    height, width = image.shape[:2]
    x0 = int(max(0.0, x - w * margin))
    y0 = int(max(0.0, y - h * margin))
    x1 = int(min(float(width), x + w * (1 + margin)))
    y1 = int(min(float(height), y + h * (1 + margin)))
    crop: Image = image[y0 : max(y0 + 1, y1), x0 : max(x0 + 1, x1)]
    return crop


def enhance(image: Image) -> Image:
    """CLAHE on the luma channel: helps YuNet find faces in dim, flat frames."""
    ycrcb = cv2.cvtColor(image, cv2.COLOR_BGR2YCrCb)
    clahe = cv2.createCLAHE(clipLimit=_CLAHE_CLIP, tileGridSize=_CLAHE_GRID)
    ycrcb[:, :, 0] = clahe.apply(ycrcb[:, :, 0])
    return as_image(cv2.cvtColor(ycrcb, cv2.COLOR_YCrCb2BGR))


def sharpness(grey_crop: Image, size: int = 128) -> float:
    """Variance of the Laplacian of a crop resized to ``size`` px (scale-independent)."""
    if grey_crop.size == 0:
        return 0.0
    resized = cv2.resize(grey_crop, (size, size), interpolation=cv2.INTER_AREA)
    return float(cv2.Laplacian(resized, cv2.CV_64F).var())
