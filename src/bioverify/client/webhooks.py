"""Alias of :mod:`bioverify_client.webhooks` (code in the bioverify-client distribution)."""

from __future__ import annotations

from bioverify_client.webhooks import *  # noqa: F403
from bioverify_client.webhooks import __all__ as __all__  # noqa: PLC0414 - an alias module re-exports
