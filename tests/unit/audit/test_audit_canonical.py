"""The cheap canonical-form check agrees with rfc8785 where orjson and RFC 8785 differ."""

from __future__ import annotations

import orjson
import rfc8785
from hypothesis import given
from hypothesis import strategies as st

from bioverify.audit.canonical import parse_canonical


def rfc_says(body: bytes, obj: object) -> bool:
    try:
        return rfc8785.dumps(obj) == body
    except rfc8785.CanonicalizationError:
        return False


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_floats_as_orjson_writes_them_are_judged_by_rfc8785(number: float) -> None:
    # orjson writes 1.0, -0.0 and 1e+16 where RFC 8785 wants 1, 0 and 10000000000000000.
    body = orjson.dumps({"a": [number], "n": number}, option=orjson.OPT_SORT_KEYS)
    assert (parse_canonical(body) is not None) == rfc_says(body, {"a": [number], "n": number})


@given(st.dictionaries(st.text(min_size=1, max_size=3), st.integers(-5, 5), max_size=5))
def test_non_ascii_keys_follow_utf16_order(obj: dict[str, int]) -> None:
    # orjson sorts by code point; RFC 8785 by UTF-16 unit: they differ past U+FFFF.
    body = orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)
    assert (parse_canonical(body) is not None) == rfc_says(body, obj)


def test_known_differences_are_refused() -> None:
    for body in (b'{"n":1.0}', b'{"n":-0.0}', b'{"n":1e+16}', b'{"n":-0}', b'{"a":1,"a":1}'):
        assert parse_canonical(body) is None, body
    assert parse_canonical(b'{"n":1e+21}') == {"n": 1e21}
    assert parse_canonical(b'{"\\ud800":1}') is None  # a lone surrogate has no RFC 8785 form
