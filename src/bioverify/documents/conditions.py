"""Capture conditions applied in software to a generated document, as a phone sees it.

Each condition takes the flat document image and returns a camera frame: the card
placed on a desk-coloured background, then warped, blurred, lit or compressed. The
evaluation runs every condition; the tests pick the ones their claims are about.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Final

import cv2
import numpy as np

from bioverify.engine.models import Image, as_image

#: The camera frame the document is photographed into (landscape, 4:3).
FRAME: Final = (1280, 960)


def photograph(document: Image, *, fill: float = 0.8, seed: int = 0) -> Image:
    """The document centred on a plain desk, filling ``fill`` of the frame's width."""
    rng = np.random.default_rng(seed)
    width, height = FRAME
    desk = np.empty((height, width, 3), np.uint8)
    desk[:] = np.clip(np.array([92, 104, 118]) + rng.integers(-12, 12, 3), 0, 255)
    scale = fill * width / document.shape[1]
    card = cv2.resize(document, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    ch, cw = card.shape[:2]
    top, left = (height - ch) // 2, (width - cw) // 2
    desk[top : top + ch, left : left + cw] = card
    return desk


def perspective(frame: Image, *, strength: float = 0.08, seed: int = 0) -> Image:
    """The phone held off-axis: the frame's corners moved by up to ``strength`` of its size."""
    rng = np.random.default_rng(seed)
    height, width = frame.shape[:2]
    src = np.array([[0, 0], [width, 0], [width, height], [0, height]], np.float32)
    jitter = rng.uniform(-strength, strength, (4, 2)) * np.array([width, height])
    dst = (src + jitter).astype(np.float32)
    matrix = cv2.getPerspectiveTransform(src, dst)
    return as_image(
        cv2.warpPerspective(frame, matrix, (width, height), borderMode=cv2.BORDER_REPLICATE)
    )


def blur(frame: Image, *, sigma: float = 1.6) -> Image:
    """Defocus or hand shake: a Gaussian blur of ``sigma`` pixels."""
    return as_image(cv2.GaussianBlur(frame, (0, 0), sigma))


def glare(frame: Image, *, strength: float = 0.85, seed: int = 0) -> Image:
    """A specular highlight from a lamp on the laminate: a bright elliptical spot away
    from the MRZ band (a glare on the MRZ itself is unreadable by any engine; the page
    asks the user to tilt the document)."""
    rng = np.random.default_rng(seed)
    height, width = frame.shape[:2]
    cx = width * rng.uniform(0.3, 0.7)
    cy = height * rng.uniform(0.25, 0.45)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    spot = np.exp(-(((xx - cx) / (0.18 * width)) ** 2 + ((yy - cy) / (0.12 * height)) ** 2))
    lit = frame.astype(np.float32) + strength * 255.0 * spot[..., None]
    out: Image = np.clip(lit, 0, 255).astype(np.uint8)
    return out


def noise(frame: Image, *, sigma: float = 8.0, seed: int = 0) -> Image:
    """Sensor noise: additive Gaussian noise of ``sigma`` grey levels."""
    rng = np.random.default_rng(seed)
    out: Image = np.clip(frame.astype(np.float32) + rng.normal(0, sigma, frame.shape), 0, 255)
    return out.astype(np.uint8)


def low_light(frame: Image, *, factor: float = 0.3, seed: int = 0) -> Image:
    """A dim room: brightness scaled by ``factor`` plus the noise of a high sensor gain."""
    rng = np.random.default_rng(seed)
    dark = frame.astype(np.float32) * factor + rng.normal(0, 3.0, frame.shape)
    out: Image = np.clip(np.rint(dark), 0, 255).astype(np.uint8)
    return out


def jpeg(frame: Image, *, quality: int = 40) -> Image:
    """Upload compression: a JPEG round trip at ``quality``."""
    ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return as_image(cv2.imdecode(buf, cv2.IMREAD_COLOR))


Condition = Callable[[Image, int], Image]

#: The evaluation's conditions, each applied to a photographed document.
CONDITIONS: Final[Mapping[str, Condition]] = MappingProxyType(
    {
        "clean": lambda frame, _seed: frame,
        "perspective": lambda frame, seed: perspective(frame, seed=seed),
        "blur": lambda frame, _seed: blur(frame),
        "glare": lambda frame, seed: glare(frame, seed=seed),
        "noise": lambda frame, seed: noise(frame, seed=seed),
        "low_light": lambda frame, seed: low_light(frame, seed=seed),
        "jpeg_q40": lambda frame, _seed: jpeg(frame, quality=40),
    }
)
