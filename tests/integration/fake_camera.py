"""Fake cameras for the browser tests: Y4M videos that Chromium plays as its webcam.

Chromium's ``--use-file-for-fake-video-capture=FILE.y4m`` loops a YUV4MPEG2 file as
the camera. These helpers write such files (4:2:0, ``C420jpeg``: full-range BT.601,
what ``cv2.COLOR_BGR2YUV_I420`` produces) from a face photo, either still (a photo
held up to the camera) or with the small natural motion of a person holding a phone.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Final

import cv2
import numpy as np
import numpy.typing as npt

Image = npt.NDArray[np.uint8]

WIDTH: Final = 640
HEIGHT: Final = 480
FPS: Final = 15


def write_y4m(path: Path, frames: Iterable[Image], *, fps: int = FPS) -> Path:
    """Write BGR frames (all ``HEIGHT`` x ``WIDTH``) as a YUV4MPEG2 4:2:0 file."""
    with path.open("wb") as out:
        out.write(f"YUV4MPEG2 W{WIDTH} H{HEIGHT} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for frame in frames:
            if frame.shape != (HEIGHT, WIDTH, 3):
                raise ValueError(f"frames must be {WIDTH}x{HEIGHT} BGR, got {frame.shape}")
            out.write(b"FRAME\n")
            out.write(cv2.cvtColor(frame, cv2.COLOR_BGR2YUV_I420).tobytes())
    return path


def framed_face(
    photo: Image, box: tuple[float, float, float, float], face_share: float = 0.32
) -> Image:
    """``photo`` cropped and scaled to a 640x480 frame, the face centred and
    ``face_share`` of the frame's width (a selfie at arm's length)."""
    x, y, w, h = box
    cx, cy = x + w / 2, y + h / 2
    scale = face_share * WIDTH / w
    matrix = np.array(
        [[scale, 0.0, WIDTH / 2 - scale * cx], [0.0, scale, HEIGHT / 2 - scale * cy]], np.float64
    )
    out = cv2.warpAffine(
        photo, matrix, (WIDTH, HEIGHT), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE
    )
    return np.asarray(out, dtype=np.uint8)


def still_video(frame: Image, seconds: float = 2.0) -> list[Image]:
    """The same picture in every frame: a photo in front of the camera."""
    return [frame] * max(1, round(seconds * FPS))


def live_video(frame: Image, seconds: float = 4.0, seed: int = 0) -> list[Image]:
    """A face with the micro-motion of a hand-held phone: a slow drift of a few
    pixels, a slight sway and breathing in scale, and sensor noise."""
    rng = np.random.default_rng(seed)
    count = max(2, round(seconds * FPS))
    frames: list[Image] = []
    for i in range(count):
        phase = 2 * np.pi * i / count
        dx, dy = 4.0 * np.sin(phase), 3.0 * np.sin(2 * phase + 0.7)
        angle = 1.2 * np.sin(phase + 1.3)
        scale = 1.0 + 0.015 * np.sin(3 * phase)
        matrix = cv2.getRotationMatrix2D((WIDTH / 2, HEIGHT / 2), angle, scale)
        matrix[:, 2] += (dx, dy)
        moved = cv2.warpAffine(
            frame, matrix, (WIDTH, HEIGHT), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
        ).astype(np.float32)
        noisy = moved + rng.normal(0.0, 2.0, moved.shape)
        frames.append(np.clip(noisy, 0, 255).astype(np.uint8))
    return frames


__all__ = ["FPS", "HEIGHT", "WIDTH", "framed_face", "live_video", "still_video", "write_y4m"]
