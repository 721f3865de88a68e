"""Key rotation for the ``bioverify keys rotate`` command.

Works on the key directory directly (no master key needed) under the ring's
exclusive lock, so it is safe while servers run: they pick the new keys up through
:meth:`bioverify.crypto.keyring.KeyRing.reload_if_changed`.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Literal

from bioverify.crypto import _files, _manifest

Which = Literal["capture", "signing", "all"]


def rotate_keys(
    keys_dir: Path, *, which: Which, grace: dt.timedelta, now: dt.datetime | None = None
) -> dict[str, dict[str, str]]:
    """Rotate the capture and/or signing key; return ``{kind: {"retired", "current"}}``.

    The retired key keeps working (decrypting, or listed in the JWKS) for ``grace``.
    Raises :class:`bioverify.crypto.keyring.KeyRingError` if ``keys_dir`` holds no ring.
    """
    kinds: tuple[_manifest.Kind, ...] = ("capture", "signing") if which == "all" else (which,)
    when = now or dt.datetime.now(dt.UTC)
    if not (keys_dir / _manifest.MANIFEST_NAME).exists():
        raise _files.KeyRingError(
            f"no key ring in {keys_dir}: start the service once to "
            "create it, or check BIOVERIFY_DATA_DIR"
        )
    out: dict[str, dict[str, str]] = {}
    with _files.locked(keys_dir, exclusive=True):
        for kind in kinds:
            old, new = _manifest.rotate(keys_dir, kind, grace=grace, now=when)
            out[kind] = {"retired": old, "current": new}
    return out


__all__ = ["Which", "rotate_keys"]
