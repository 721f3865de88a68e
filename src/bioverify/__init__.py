"""bioverify: a self-hosted biometric verification Session API.

The server is started with ``bioverify serve``; integrators use
:mod:`bioverify.client`, capture devices :mod:`bioverify.capture`. The one catalogue
of error codes is :mod:`bioverify.errors`.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from bioverify.errors import CATALOGUE, BioverifyError, ErrorCode, Kind, RetryClass

try:
    __version__ = version("bioverify")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0+unknown"

__all__ = ["CATALOGUE", "BioverifyError", "ErrorCode", "Kind", "RetryClass", "__version__"]
