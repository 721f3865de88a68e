"""TextJSONResponse writes the very bytes Starlette's JSONResponse writes, for content
without floats (what the create route answers)."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from starlette.responses import JSONResponse

from bioverify.api.text_json import TextJSONResponse

# Lone surrogates cannot be encoded by either (both refuse: a 500, never bad bytes).
text = st.text(st.characters(exclude_categories=("Cs",)))
scalars = st.one_of(
    text, st.booleans(), st.none(), st.integers(min_value=-(2**63), max_value=2**63 - 1)
)
documents = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(text, inner, max_size=4)),
    max_leaves=12,
)


@given(documents)
def test_same_bytes_as_jsonresponse(content: Any) -> None:
    assert TextJSONResponse(content).body == JSONResponse(content).body


def test_same_headers_as_jsonresponse() -> None:
    made = {"sessionId": "s", "launchUrl": "https://h/capture/cs_x", "status": "PENDING"}
    assert TextJSONResponse(made, status_code=201).headers == JSONResponse(made, 201).headers
