"""File handling for key material: atomic writes, permission checks, a directory lock.

Key files live in one directory that only the service user may enter (0700); every
file in it is 0600. Writes go to a temporary file that is fsynced and renamed over
the target, so a reader (another replica, the ``keys rotate`` CLI) never sees half a
key. Creation and rotation hold an exclusive ``flock`` on ``.lock`` so that two
processes starting at once end up with the same keys.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

from bioverify import errors

_log = logging.getLogger(__name__)

DIR_MODE = 0o700
FILE_MODE = 0o600
LOCK_NAME = ".lock"


class KeyRingError(errors.InternalError):
    """The key directory or a key file is unusable (missing, unsafe permissions, corrupt).

    The message names the file so an operator can fix it; it is meant for logs and the
    CLI, and the API answers a generic 500 for it.
    """


def ensure_dir(path: Path) -> None:
    """Create ``path`` as a 0700 directory, or tighten an existing one to 0700."""
    try:
        path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode != DIR_MODE:
            # Repair rather than refuse: a too-open directory exposes nothing by itself
            # while every file inside is 0600, and tightening it is always safe.
            _log.warning("key directory %s had mode %o; set to 0700", path, mode)
            path.chmod(DIR_MODE)
    except OSError as exc:
        raise KeyRingError(f"key directory {path} cannot be prepared: {exc.strerror}") from exc


def read_secret(path: Path) -> bytes:
    """Read a key file after checking it is a regular 0600 file.

    World-accessible files are refused (the key may already be compromised: the
    operator must look); group bits alone are removed with a warning.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError as exc:
        raise KeyRingError(f"key file {path} is missing") from exc
    except OSError as exc:
        raise KeyRingError(f"key file {path} cannot be opened: {exc.strerror}") from exc
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise KeyRingError(f"key file {path} is not a regular file")
        mode = stat.S_IMODE(info.st_mode)
        if mode & 0o007:
            raise KeyRingError(
                f"key file {path} is accessible to other users (mode {mode:o}); the key "
                f"may be exposed: check it, then run 'chmod 600 {path}' or rotate the keys"
            )
        if mode & 0o070:
            _log.warning("key file %s had mode %o; set to 0600", path, mode)
            os.fchmod(handle.fileno(), FILE_MODE)
        return handle.read()


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` (mode 0600) so readers see the old or the new file only."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, FILE_MODE)
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), FILE_MODE)  # the umask may have narrowed O_CREAT's mode
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    fsync_dir(path.parent)


def fsync_dir(path: Path) -> None:
    """Make a rename or unlink in ``path`` durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove(path: Path) -> None:
    """Delete a key file if present (destroying a retired key)."""
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


@contextlib.contextmanager
def locked(directory: Path, *, exclusive: bool) -> Iterator[None]:
    """Hold ``directory/.lock`` shared (readers) or exclusive (creation, rotation)."""
    fd = os.open(directory / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, FILE_MODE)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)  # closing releases the flock
