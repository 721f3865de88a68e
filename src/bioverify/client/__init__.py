"""The integrator SDK, re-exported from the ``bioverify-client`` distribution.

The code lives in ``bioverify_client`` (``sdk/python``), which integrators install
alone; the server depends on it and keeps this import path working, submodules
included (``bioverify.client.webhooks``, ``.retry``, ``.errors``, ...). Each name
here is the very object of ``bioverify_client``, so ``isinstance`` checks and
``except`` clauses work with either import.
"""

from __future__ import annotations

from bioverify_client import *  # noqa: F403
from bioverify_client import __all__ as __all__
