"""``TextJSONResponse``: Starlette's ``JSONResponse`` bytes, encoded by orjson.

For content of text, integers (64-bit), booleans, null, lists and objects with text
keys, orjson writes exactly what ``JSONResponse`` writes (compact separators, UTF-8,
no ASCII escaping; a test holds them equal) in a fraction of the time; the create
route's answer is only that. Anything else (floats, which the two format
differently; non-text keys) must stay with ``JSONResponse``.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import JSONResponse


class TextJSONResponse(JSONResponse):
    """A ``JSONResponse`` rendered by orjson; for content without floats."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


__all__ = ["TextJSONResponse"]
