"""The cheap canonical-form check agrees with rfc8785 where orjson and RFC 8785 differ."""

from __future__ import annotations

import orjson
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from bioverify.audit.canonical import parse_canonical, parse_canonical_many
from bioverify.audit.events import canonical_bytes


def rfc_says(body: bytes, obj: object) -> bool:
    try:
        return rfc8785.dumps(obj) == body
    except rfc8785.CanonicalizationError:
        return False


@settings(deadline=None)  # timing is not what these test; the machine is shared
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_floats_as_orjson_writes_them_are_judged_by_rfc8785(number: float) -> None:
    # orjson writes 1.0, -0.0 and 1e+16 where RFC 8785 wants 1, 0 and 10000000000000000.
    body = orjson.dumps({"a": [number], "n": number}, option=orjson.OPT_SORT_KEYS)
    assert (parse_canonical(body) is not None) == rfc_says(body, {"a": [number], "n": number})


@settings(deadline=None)  # timing is not what these test; the machine is shared
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


plain_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | st.text(max_size=6),
    lambda inner: st.dictionaries(st.text(st.characters(max_codepoint=127), max_size=4), inner),
    max_leaves=12,
)


@settings(deadline=None)  # timing is not what these test; the machine is shared
@given(st.dictionaries(st.text(st.characters(max_codepoint=127), max_size=5), plain_values))
def test_entry_encoding_is_rfc8785(obj: dict[str, object]) -> None:
    # The fast encoder of entries (ASCII keys, no floats) writes what rfc8785 writes.
    assert canonical_bytes(obj) == rfc8785.dumps(obj)
    assert parse_canonical(canonical_bytes(obj)) == obj


@settings(deadline=None)  # timing is not what these test; the machine is shared
@given(st.dictionaries(st.text(max_size=3), st.floats(allow_nan=False) | st.text(max_size=3)))
def test_anything_else_is_encoded_by_rfc8785(obj: dict[str, object]) -> None:
    try:
        expected = rfc8785.dumps(obj)
    except rfc8785.CanonicalizationError:
        return
    assert canonical_bytes(obj) == expected


any_body = st.one_of(
    st.dictionaries(st.text(st.characters(max_codepoint=127), max_size=4), plain_values).map(
        canonical_bytes
    ),
    st.dictionaries(st.text(max_size=3), st.floats(allow_nan=False) | st.text(max_size=3)).map(
        lambda obj: orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)
    ),
    st.binary(max_size=12).map(lambda raw: b"{" + raw + b"}"),
)


@settings(deadline=None)  # timing is not what these test; the machine is shared
@given(st.lists(any_body, max_size=8))
def test_a_batch_passes_only_if_every_body_is_canonical(bodies: list[bytes]) -> None:
    objs = parse_canonical_many(bodies)
    if objs is not None:
        assert objs == [parse_canonical(body) for body in bodies]
        assert all(rfc_says(body, obj) for body, obj in zip(bodies, objs, strict=True))


# Texts as entries hold them (ids, tags, times); a text spelling a float pattern
# such as ".0}" is also judged body by body, by design.
entry_text = st.text("abcdxyzABC0123456789_:+-/ ", max_size=8)
entry_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | entry_text,
    lambda inner: st.dictionaries(entry_text, inner),
    max_leaves=12,
)


@settings(deadline=None)  # timing is not what these test; the machine is shared
@given(st.lists(st.dictionaries(entry_text, entry_values, max_size=4), max_size=8))
def test_entries_as_the_log_writes_them_pass_as_a_batch(objs: list[dict[str, object]]) -> None:
    # The fast path is taken for what the sequencer stores (ASCII, no floats, no arrays;
    # a non-ASCII text is judged body by body instead, and found canonical there).
    bodies = [canonical_bytes(obj) for obj in objs]
    assert parse_canonical_many(bodies) == objs


def test_bodies_that_only_parse_together_are_refused() -> None:
    # Joined, these three bodies read as three canonical objects, but not one body
    # is one of them: the batch must not vouch for any.
    bodies = [b'{"a":"}', b'{","b":{}}', b'{"c":1},{"d":2}']
    assert orjson.loads(b"[" + b",".join(bodies) + b"]") == [
        {"a": "},{", "b": {}},
        {"c": 1},
        {"d": 2},
    ]
    assert parse_canonical_many(bodies) is None
    assert [parse_canonical(body) for body in bodies] == [None, None, None]
