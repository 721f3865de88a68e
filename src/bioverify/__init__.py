"""bioverify: a self-hosted biometric verification Session API.

The server is started with ``bioverify serve``; integrators use
:mod:`bioverify.client`, capture devices :mod:`bioverify.capture`. The one catalogue
of error codes is :mod:`bioverify.errors`.
"""

from __future__ import annotations

from bioverify.errors import CATALOGUE, BioverifyError, ErrorCode, Kind, RetryClass


def __getattr__(name: str) -> str:
    # Looked up on first use: importlib.metadata costs more than the whole CLI's
    # start-up budget, and most processes never ask for the version.
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version  # noqa: PLC0415

        try:
            return version("bioverify")
        except PackageNotFoundError:  # running from a source tree without installing
            return "0+unknown"
    raise AttributeError(f"module 'bioverify' has no attribute {name!r}")


__all__ = ["CATALOGUE", "BioverifyError", "ErrorCode", "Kind", "RetryClass", "__version__"]
