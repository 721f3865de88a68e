"""Route templates for logs, metrics and audit details, below the HTTP layer.

The worker and the metrics module label by route without importing ``api/``.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any


def route_template(scope: MutableMapping[str, Any]) -> str:
    """The matched route's template (``/v2/verification-session/{token}``), never the raw
    path: paths carry capture tokens and customer ids, which logs must not hold."""
    route = scope.get("route")
    return getattr(route, "path", None) or "unmatched"


__all__ = ["route_template"]
