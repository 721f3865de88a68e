"""The strict JSON reader: a depth error names where, so a client that sent one
too-deep field learns which (as the field schemas name the fields they refuse)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bioverify import strict_json
from bioverify.errors import BadRequest


def _deep(levels: int) -> dict[str, Any]:
    node: dict[str, Any] = {"x": True}
    for _ in range(levels):
        node = {"x": node}
    return node


def test_a_too_deep_member_is_named_by_its_path() -> None:
    doc = {"deviceInfo": {"screenDimensions": {"width": 1, "depth": _deep(40)}}}
    with pytest.raises(strict_json.TooDeep) as info:
        strict_json.loads(json.dumps(doc))
    assert info.value.path == "deviceInfo.screenDimensions.depth.x\u2026"
    assert info.value.message.startswith("deviceInfo.screenDimensions.depth.x\u2026: ")
    assert "nested deeper than 32 levels" in info.value.message


def test_array_indexes_and_long_keys_are_shown_short() -> None:
    with pytest.raises(strict_json.TooDeep) as info:
        strict_json.loads(json.dumps({"k" * 500: [[_deep(40)]]}))
    assert info.value.path == "k" * 32 + "[0][0].x\u2026"


def test_the_documented_shapes_fit_and_the_limit_is_exact() -> None:
    strict_json.loads(json.dumps(_deep(strict_json.MAX_DEPTH - 1)))  # 32 objects
    with pytest.raises(BadRequest):
        strict_json.loads(json.dumps(_deep(strict_json.MAX_DEPTH)))
