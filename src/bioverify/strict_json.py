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


class TooDeep(BadRequest):
    """Nesting beyond the limit; ``path`` names where (``deviceInfo.screen.x…``), so
    a client that sent a too-deep field learns which one, as a schema error would say."""

    def __init__(self, message: str, path: str) -> None:
        super().__init__(message)
        self.path = path


#: Path components shown in a depth error (the rest is elided).
_PATH_SHOWN: Final = 4

_Link = tuple[str, "_Link"] | None


def _path_text(link: _Link) -> str:
    parts: list[str] = []
    while link is not None:
        parts.append(link[0])
        link = link[1]
    parts.reverse()
    text = ""
    for part in parts[:_PATH_SHOWN]:
        text += part if part.startswith("[") or not text else "." + part
    return text + ("…" if len(parts) > _PATH_SHOWN else "")


def _check_shape(doc: Any, max_depth: int, max_values: int) -> None:
    """Iteratively (no recursion), bound nesting depth and the number of values."""
    stack: list[tuple[Any, int, _Link]] = [(doc, 1, None)]
    values = 0
    while stack:
        node, depth, link = stack.pop()
        if not isinstance(node, (dict, list)):
            continue
        if depth > max_depth:
            path = _path_text(link)
            where = f"{path}: " if path else ""
            raise TooDeep(
                f"{where}the JSON document is nested deeper than {max_depth} levels", path
            )
        values += len(node)
        if values > max_values:
            raise BadRequest(f"The JSON document holds more than {max_values} values")
        if isinstance(node, dict):
            # A key is echoed back only clipped: an error message stays short.
            stack.extend((child, depth + 1, (key[:32], link)) for key, child in node.items())
        else:
            stack.extend((child, depth + 1, (f"[{i}]", link)) for i, child in enumerate(node))


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


__all__ = ["MAX_DEPTH", "MAX_VALUES", "TooDeep", "loads"]
