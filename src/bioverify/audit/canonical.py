"""Is a stored body RFC 8785 canonical JSON? Cheap for the bodies the log writes.

A body is canonical when it equals the RFC 8785 encoding of what it decodes to.
Fast path: orjson decodes and re-encodes with sorted keys in about 1.5 us; its
output is the RFC 8785 form whenever the text is ASCII (keys then sort the same
by UTF-16 unit and by byte, and both escape the same characters the same way),
has no integer beyond 2**53 (``OPT_STRICT_INTEGER`` refuses those) and no float
that orjson writes differently from ECMAScript (integral floats as ``1.0``,
exponents ``e+16`` to ``e+20``, and ``e-5``/``e-6``, which ECMAScript writes as
``0.00001...``/``0.000001...``): texts holding one of those byte patterns, and any
text the fast path does not reproduce exactly, go to the ``rfc8785`` package,
which decides. A test checks the two agree on generated JSON.

Many bodies at once (:func:`parse_canonical_many`, what ``audit verify`` uses): the
bodies are decoded by one ``map``, re-encoded by one orjson call as an array and
compared with the joined bodies, and the float patterns are looked for once in
that joined text; any doubt sends the batch to the one-by-one path.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any, Final

import orjson
import rfc8785

#: Byte patterns of the floats orjson writes differently from RFC 8785 (and of -0.0):
#: ``.0`` closing a number, and the exponents ``e+16`` to ``e+20``, ``e-5`` and ``e-6``.
#: A string holding one merely takes the slow path.
_OPTIONS: Final = orjson.OPT_SORT_KEYS | orjson.OPT_STRICT_INTEGER
#: The same patterns as two scans of a joined batch (``+`` is rare: tested first, alone).
_POINT_ZERO: Final = re.compile(rb"\.0[,}\]]").search
_SMALL_EXP: Final = re.compile(rb"e-[56]").search


def _slow(body: bytes) -> dict[str, Any] | None:
    # The standard library's decoder, not orjson: orjson reads an integer beyond 64
    # bits as a float, whose RFC 8785 form can equal the text, so such a body would
    # pass here although the log's writer (rfc8785, integers up to 2**53) refuses it.
    try:
        obj = json.loads(body)
    except ValueError:
        return None
    if type(obj) is not dict:
        return None
    try:
        return obj if rfc8785.dumps(obj) == body else None
    except (ValueError, TypeError, UnicodeError, rfc8785.CanonicalizationError):
        return None


def parse_canonical(body: bytes) -> dict[str, Any] | None:
    """The JSON object of ``body`` if ``body`` is its RFC 8785 form, else ``None``."""
    # Written out, not a loop: this runs once per entry of the log.
    if (
        not body.isascii()
        or b".0," in body
        or b".0}" in body
        or b".0]" in body
        or b"e+1" in body
        or b"e+20" in body
        or b"e-5" in body
        or b"e-6" in body
    ):
        return _slow(body)
    try:
        obj = orjson.loads(body)
        if type(obj) is not dict:
            return None
        if orjson.dumps(obj, option=_OPTIONS) == body:
            return obj
    except (orjson.JSONDecodeError, orjson.JSONEncodeError):
        pass
    return _slow(body)


def parse_canonical_many(bodies: Sequence[bytes]) -> list[dict[str, Any]] | None:
    """The objects of ``bodies`` if each is an object in RFC 8785 form; ``None`` if in doubt.

    ``None`` does not say a body is bad: only :func:`parse_canonical` of each body
    decides then (a float, a non-ASCII text, a duplicate key). A few hundred bodies
    a call keeps the decoded objects in the CPU cache.
    """
    try:
        # Each body is decoded alone, so each is one complete JSON value; re-encoded
        # together, the array equals the joined bodies only if every body equals its
        # own re-encoding (a shorter one would leave a body with text after its value).
        objs = list(map(orjson.loads, bodies))
        if set(map(type, objs)) - {dict}:
            return None
        text = b"[" + b",".join(bodies) + b"]"
        if (
            not text.isascii()
            or _POINT_ZERO(text)
            or _SMALL_EXP(text)
            or (b"+" in text and (b"e+1" in text or b"e+20" in text))
            or orjson.dumps(objs, option=_OPTIONS) != text
        ):
            return None
    except (orjson.JSONDecodeError, orjson.JSONEncodeError):
        return None
    return objs


__all__ = ["parse_canonical", "parse_canonical_many"]
