"""The one JSON reader for untrusted bodies: strict, and bounded in depth and size.

Python's ``json`` accepts what JSON does not (``NaN``, ``Infinity``, duplicate keys,
the last one silently winning) and recurses once per nesting level, so a deep
document ends in ``RecursionError``. Every request body and decrypted capture
plaintext is read here; each problem is a :class:`BadRequest` (400) that says what
to fix.
"""

from __future__ import annotations

import json
from typing import Any, Final, NoReturn

from bioverify.errors import BadRequest

#: Deepest nesting of arrays/objects accepted (the documented bodies need 4).
MAX_DEPTH: Final = 32
#: Most values (members of all arrays and objects together) in one document.
MAX_VALUES: Final = 20_000


class _Duplicate(ValueError):
    pass


class _Constant(ValueError):
    pass


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _Duplicate(key)
        out[key] = value
    return out


def _reject_constant(name: str) -> NoReturn:
    raise _Constant(name)


def _check_shape(doc: Any, max_depth: int, max_values: int) -> None:
    """Iteratively (no recursion), bound nesting depth and the number of values."""
    stack: list[tuple[Any, int]] = [(doc, 1)]
    values = 0
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, dict) else node
        if not isinstance(node, (dict, list)):
            continue
        if depth > max_depth:
            raise BadRequest(f"The JSON document is nested deeper than {max_depth} levels")
        values += len(node)
        if values > max_values:
            raise BadRequest(f"The JSON document holds more than {max_values} values")
        stack.extend((child, depth + 1) for child in children)


def loads(data: bytes | str, *, what: str = "The request body", max_depth: int = MAX_DEPTH) -> Any:
    """Parse ``data``; 400 on invalid JSON, duplicate keys, NaN/Infinity, depth or size."""
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        doc = json.loads(
            text, object_pairs_hook=_reject_duplicates, parse_constant=_reject_constant
        )
    except _Duplicate as exc:
        raise BadRequest(f"{what} repeats the key {str(exc)[:64]!r}; send each key once") from None
    except _Constant as exc:
        raise BadRequest(f"{what} contains {exc}, which is not a JSON number") from None
    except RecursionError:
        raise BadRequest(f"{what} is nested deeper than {max_depth} levels") from None
    except (UnicodeDecodeError, ValueError):
        raise BadRequest(f"{what} is not valid JSON (UTF-8)") from None
    _check_shape(doc, max_depth, MAX_VALUES)
    return doc


__all__ = ["MAX_DEPTH", "MAX_VALUES", "loads"]
