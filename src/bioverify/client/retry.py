"""Alias of :mod:`bioverify_client.retry` (code in the bioverify-client distribution)."""

from __future__ import annotations

from bioverify_client.retry import *  # noqa: F403
from bioverify_client.retry import __all__ as __all__  # noqa: PLC0414 - an alias module re-exports
